// 5. Datapath (bridge half): TCP throughput between two containers of one network, knit against the built-in
// bridge. iperf3 is the host's binary, run inside each container's network namespace with nsenter.
import { alternate, createNetwork, DRIVERS, IMAGE, stoppedEarly, withBed, type Bed, type BenchContext, type Driver } from './bed.js';
import { gbit, iperfBetween, netnsOfPid } from './iperf.js';
import type { Figures } from './report.js';
import { median, quantile, ratio, times } from './stats.js';

interface Pair {
  serverPid: number;
  clientPid: number;
  serverIp: string;
  mtu: string;
}

async function startPair(bed: Bed, driver: Driver): Promise<Pair> {
  const network = `dp-${driver}`;
  await createNetwork(bed, driver, network);
  const pids: number[] = [];
  for (const role of ['s', 'c']) {
    const name = `dp-${driver}-${role}`;
    await bed.docker(['run', '-d', '--name', name, '--network', network, IMAGE, 'sleep', '3600']);
    pids.push(Number((await bed.docker(['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim()));
  }
  const ip = (await bed.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, `dp-${driver}-s`])).stdout.trim();
  const link = (await bed.docker(['exec', `dp-${driver}-s`, 'cat', '/sys/class/net/eth0/mtu'])).stdout.trim();
  return { serverPid: pids[0], clientPid: pids[1], serverIp: ip, mtu: link };
}

export async function datapath(ctx: BenchContext): Promise<Figures> {
  const rounds = ctx.quick ? 2 : 6;
  const seconds = ctx.quick ? 2 : 3;
  return withBed('benchdp', async (bed) => {
    const pairs = {} as Record<Driver, Pair>;
    for (const d of DRIVERS) pairs[d] = await startPair(bed, d);
    const samples = await alternate(ctx, rounds, async (d, i) => {
      const p = pairs[d];
      const bps = await iperfBetween({ server: netnsOfPid(p.serverPid), client: netnsOfPid(p.clientPid), serverIp: p.serverIp, seconds, logDir: bed.host.logsDir });
      ctx.progress(`datapath ${d} round ${i + 1}/${rounds}: ${gbit(bps)}`);
      return bps;
    });
    const k = median(samples.knit);
    const b = median(samples.builtin);
    const spread = (s: number[]) => `min ${gbit(quantile(s, 0))}, max ${gbit(quantile(s, 1))}`;
    return {
      id: 'datapath',
      rows: [{ metric: 'TCP throughput container → container, same network, median', knit: gbit(k), builtin: gbit(b), ratio: times(ratio(k, b)), target: '≥ 0.95×' }],
      notes: [
        `iperf3 (one stream, ${seconds} s after 1 s left out), ${samples.knit.length} rounds per driver, alternated. The host's iperf3 runs in the containers' network namespaces (nsenter --net=/proc/PID/ns/net), so the image needs no change.`,
        `knit: ${spread(samples.knit)}; built-in: ${spread(samples.builtin)}. MTU of eth0: knit ${pairs.knit.mtu}, built-in ${pairs.builtin.mtu}.`,
        'Both ends share the same 2 CPUs, so this is CPU-bound and sensitive to other load on the machine.',
        ...stoppedEarly(samples.knit.length, rounds),
      ],
    };
  });
}
