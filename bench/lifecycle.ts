// 1. Container lifecycle: the wall time of `docker run --rm --network N busybox true`, knit against the built-in bridge.
import { alternate, createNetwork, DRIVERS, IMAGE, inTime, stoppedEarly, timed, withBed, type BenchContext } from './bed.js';
import type { Figures } from './report.js';
import { median, ratio, seconds, spreadSeconds, times } from './stats.js';

const WARMUP = 2;

export async function lifecycle(ctx: BenchContext): Promise<Figures> {
  const runs = ctx.quick ? 6 : 24;
  return withBed('benchlc', async (bed) => {
    const net = { knit: 'lc-knit', builtin: 'lc-builtin' };
    for (const d of DRIVERS) await createNetwork(bed, d, net[d]);
    const once = async (d: 'knit' | 'builtin') =>
      (await timed(() => bed.docker(['run', '--rm', '--network', net[d], IMAGE, 'true']))).ms;
    for (let i = 0; i < WARMUP && inTime(ctx); i++) for (const d of DRIVERS) await once(d);
    const samples = await alternate(ctx, runs, async (d, i) => {
      const ms = await once(d);
      if (d === 'builtin' && (i + 1) % 6 === 0) ctx.progress(`lifecycle ${i + 1}/${runs}`);
      return ms;
    });
    const k = median(samples.knit);
    const b = median(samples.builtin);
    return {
      id: 'lifecycle',
      rows: [{ metric: '`docker run --rm --network N busybox true`, median', knit: seconds(k), builtin: seconds(b), ratio: times(ratio(k, b)), target: '≤ 1.05×' }],
      notes: [
        `${samples.knit.length} runs per driver after ${WARMUP} warm-up runs each, alternated; wall time of the docker CLI, client to exit.`,
        `knit: ${spreadSeconds(samples.knit)}; built-in: ${spreadSeconds(samples.builtin)}.`,
        'Both networks are user-defined on one engine: `-d knit --ipam-driver knit` against `-d bridge` with default IPAM.',
        ...stoppedEarly(samples.knit.length, runs),
      ],
    };
  });
}
