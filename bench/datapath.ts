// 5. Datapath (bridge half): TCP throughput between two containers of one network, knit against the built-in
// bridge. iperf3 is the host's binary, run inside each container's network namespace with nsenter.
import { join } from 'node:path';
import { run, spawnLogged, waitFor } from '../spec/support/proc.js';
import { alternate, createNetwork, DRIVERS, IMAGE, stoppedEarly, withBed, type Bed, type BenchContext, type Driver } from './bed.js';
import type { Section } from './report.js';
import { fixed, median, quantile, ratio, times } from './stats.js';

const PORT = '5201';

interface Pair {
  serverPid: number;
  clientPid: number;
  serverIp: string;
  mtu: string;
}

const inNetnsOf = (pid: number) => ['nsenter', `--net=/proc/${pid}/ns/net`, '--'];

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

/** One iperf3 test (one-off server, client for `seconds` after a 1 s warm-up that is left out); bits per second. */
async function iperf(bed: Bed, pair: Pair, seconds: number): Promise<number> {
  const server = spawnLogged([...inNetnsOf(pair.serverPid), 'iperf3', '-s', '-1', '-p', PORT], {
    logFile: join(bed.host.logsDir, 'iperf3-server.log'),
    capture: true,
  });
  try {
    await waitFor('the iperf3 server to listen', async () => {
      const r = await run([...inNetnsOf(pair.serverPid), 'ss', '-Hltn', `sport = :${PORT}`], { reject: false, timeoutMs: 5_000 });
      return r.stdout.includes(PORT);
    }, { timeoutMs: 10_000, intervalMs: 50 });
    const client = await run([...inNetnsOf(pair.clientPid), 'iperf3', '-c', pair.serverIp, '-p', PORT, '-t', String(seconds), '-O', '1', '-J'], {
      timeoutMs: (seconds + 20) * 1000,
    });
    const bps = JSON.parse(client.stdout)?.end?.sum_received?.bits_per_second;
    if (typeof bps !== 'number') throw new Error(`iperf3 gave no throughput: ${client.stdout.slice(0, 300)}`);
    return bps;
  } finally {
    await server.stop(3_000);
  }
}

const gbit = (bps: number) => `${fixed(bps / 1e9, 2)} Gbit/s`;

export async function datapath(ctx: BenchContext): Promise<Section> {
  const rounds = ctx.quick ? 2 : 6;
  const seconds = ctx.quick ? 2 : 3;
  return withBed('benchdp', async (bed) => {
    const pairs = {} as Record<Driver, Pair>;
    for (const d of DRIVERS) pairs[d] = await startPair(bed, d);
    const samples = await alternate(ctx, rounds, async (d, i) => {
      const bps = await iperf(bed, pairs[d], seconds);
      ctx.progress(`datapath ${d} round ${i + 1}/${rounds}: ${gbit(bps)}`);
      return bps;
    });
    const k = median(samples.knit);
    const b = median(samples.builtin);
    const spread = (s: number[]) => `min ${gbit(quantile(s, 0))}, max ${gbit(quantile(s, 1))}`;
    return {
      id: 'datapath',
      title: '5. Datapath (bridge)',
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
