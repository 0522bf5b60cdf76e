// 10. Macvlan: container lifecycle and TCP throughput to a machine on the LAN, a knit macvlan network against Docker's
// own macvlan driver, both on the same parent of one host. The LAN is a veth from the host (lan0, the parent) to a
// namespace of the benchmark's own standing in for another machine.
import { deleteNetns } from '../spec/support/reap.js';
import { run } from '../spec/support/testbed.js';
import { alternate, IMAGE, stoppedEarly, timed, withBed, type Bed, type BenchContext, type Driver } from './bed.js';
import { gbit, iperfBetween, netnsOfPid } from './iperf.js';
import type { Figures } from './report.js';
import { median, quantile, ratio, seconds, spreadSeconds, times } from './stats.js';

/** RFC 2544's range again, a /24 no test suite uses. */
const LAN = '198.18.78';
const PEER_IP = `${LAN}.2`;
const WARMUP = 2;

/** Both networks on parent lan0, in the LAN's subnet, with disjoint ranges (two IPAMs that do not know each other). */
async function makeLan(bed: Bed): Promise<string> {
  const peer = `knt-${bed.host.name}p`;
  await run(['ip', 'netns', 'add', peer]);
  bed.host.attachments.push({ what: `LAN peer ${peer}`, remove: () => deleteNetns(peer) });
  await run(['ip', '-n', peer, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', bed.host.netns]);
  await run(['ip', '-n', peer, 'addr', 'add', `${PEER_IP}/24`, 'dev', 'eth0']);
  for (const dev of ['lo', 'eth0']) await run(['ip', '-n', peer, 'link', 'set', dev, 'up']);
  await bed.host.exec(['ip', 'addr', 'add', `${LAN}.1/24`, 'dev', 'lan0']);
  await bed.host.exec(['ip', 'link', 'set', 'lan0', 'up']);
  const common = ['-o', 'parent=lan0', '--subnet', `${LAN}.0/24`, '--gateway', `${LAN}.254`];
  await bed.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=macvlan', ...common, '--ip-range', `${LAN}.64/26`, 'mv-knit']);
  await bed.docker(['network', 'create', '-d', 'macvlan', ...common, '--ip-range', `${LAN}.128/26`, 'mv-builtin']);
  return `/run/netns/${peer}`;
}

async function lifecycleRows(ctx: BenchContext, bed: Bed): Promise<{ k: number[]; b: number[] }> {
  const runs = ctx.quick ? 6 : 20;
  const once = async (d: Driver) => (await timed(() => bed.docker(['run', '--rm', '--network', `mv-${d}`, IMAGE, 'true']))).ms;
  for (let i = 0; i < WARMUP; i++) for (const d of ['knit', 'builtin'] as const) await once(d);
  const s = await alternate(ctx, runs, (d) => once(d));
  return { k: s.knit, b: s.builtin };
}

async function iperfRows(ctx: BenchContext, bed: Bed, peer: string): Promise<{ k: number[]; b: number[] }> {
  const rounds = ctx.quick ? 2 : 5;
  const pids = {} as Record<Driver, number>;
  for (const d of ['knit', 'builtin'] as const) {
    await bed.docker(['run', '-d', '--name', `mv-${d}-c`, '--network', `mv-${d}`, IMAGE, 'sleep', '3600']);
    pids[d] = Number((await bed.docker(['inspect', '-f', '{{.State.Pid}}', `mv-${d}-c`])).stdout.trim());
  }
  const s = await alternate(ctx, rounds, async (d, i) => {
    const bps = await iperfBetween({ server: peer, client: netnsOfPid(pids[d]), serverIp: PEER_IP, seconds: ctx.quick ? 2 : 3, logDir: bed.host.logsDir });
    ctx.progress(`macvlan iperf3 ${d} round ${i + 1}/${rounds}: ${gbit(bps)}`);
    return bps;
  });
  return { k: s.knit, b: s.builtin };
}

export async function macvlan(ctx: BenchContext): Promise<Figures> {
  return withBed('benchmv', async (bed) => {
    const peer = await makeLan(bed);
    const lc = await lifecycleRows(ctx, bed);
    const tp = await iperfRows(ctx, bed, peer);
    const spread = (s: number[]) => `min ${gbit(quantile(s, 0))}, max ${gbit(quantile(s, 1))}`;
    return {
      id: 'macvlan',
      labels: { builtin: 'Docker macvlan', ratio: 'knit/Docker' },
      rows: [
        { metric: '`docker run --rm --network N busybox true`, median', knit: seconds(median(lc.k)), builtin: seconds(median(lc.b)), ratio: times(ratio(median(lc.k), median(lc.b))), target: '≤ 1.05×' },
        { metric: 'TCP throughput container → machine on the LAN, iperf3, median', knit: gbit(median(tp.k)), builtin: gbit(median(tp.b)), ratio: times(ratio(median(tp.k), median(tp.b))), target: '≥ 0.95×' },
      ],
      notes: [
        'One host; both networks on the same parent (lan0, a veth to a namespace standing in for another machine on the LAN), bridge mode, the same /24 with disjoint --ip-range: `-d knit --ipam-driver knit -o knit.mode=macvlan` against `-d macvlan` with default IPAM.',
        `Lifecycle: ${lc.k.length} runs per driver after ${WARMUP} warm-up runs each, alternated. knit: ${spreadSeconds(lc.k)}; Docker: ${spreadSeconds(lc.b)}.`,
        `iperf3: one stream from a container to the LAN machine, ${tp.k.length} rounds per driver, alternated. knit: ${spread(tp.k)}; Docker: ${spread(tp.b)}.`,
        ...stoppedEarly(lc.k.length, ctx.quick ? 6 : 20),
      ],
    };
  });
}
