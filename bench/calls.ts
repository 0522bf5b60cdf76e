// 3. Plugin call cost: each call's time as knit served it (/knit.Status), and the processes knit spawns per lifecycle.
import { createNetwork, IMAGE, inTime, withBed, type Bed, type BenchContext, type KnitStatus } from './bed.js';
import type { Figures, Row } from './report.js';
import { fixed, millis } from './stats.js';

const WARMUP = 2;
/** dockerd's calls; knit's own (/knit.Status, which the benchmark itself posts) are left out. */
const PLUGIN_CALL = /^\/(NetworkDriver|IpamDriver)\./;

/** What changed between two snapshots, per tool and per call path, divided by the number of operations. */
function perOp(before: KnitStatus, after: KnitStatus, ops: number) {
  const spawned = Object.entries(after.spawned)
    .map(([tool, n]) => [tool, (n - (before.spawned[tool] ?? 0)) / ops] as const)
    .filter(([, n]) => n > 0);
  const calls = Object.entries(after.calls)
    .filter(([path]) => PLUGIN_CALL.test(path))
    .map(([path, s]) => [path.replace(PLUGIN_CALL, ''), (s.count - (before.calls[path]?.count ?? 0)) / ops] as const)
    .filter(([, n]) => n > 0);
  return { spawned, calls, requests: calls.reduce((sum, [, n]) => sum + n, 0) };
}

async function repeat(ctx: BenchContext, count: number, step: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  while (done < count && inTime(ctx)) await step(done++);
  return done;
}

function spawnRows(what: string, d: ReturnType<typeof perOp>): Row[] {
  const tools = d.spawned.map(([tool, n]) => `${tool} ${fixed(n, 2)}`).join(', ') || 'none';
  return [{ metric: `processes spawned per ${what}`, knit: tools, target: '≤ 1 per tool per request' }];
}

const describeCalls = (what: string, d: ReturnType<typeof perOp>) =>
  `Plugin requests per ${what}: ${fixed(d.requests, 1)} (${d.calls.map(([p, n]) => `${p} ${fixed(n, 1)}`).join(', ')}).`;

export async function calls(ctx: BenchContext): Promise<Figures> {
  const lifecycles = ctx.quick ? 5 : 20;
  const networks = ctx.quick ? 3 : 10;
  return withBed('benchcc', async (bed: Bed) => {
    await createNetwork(bed, 'knit', 'cc-knit');
    const runRm = (extra: string[]) => bed.docker(['run', '--rm', '--network', 'cc-knit', ...extra, IMAGE, 'true']);
    for (let i = 0; i < WARMUP; i++) await runRm([]);
    const s0 = await bed.status();
    const plain = await repeat(ctx, lifecycles, () => runRm([]));
    const s1 = await bed.status();
    const published = await repeat(ctx, Math.ceil(lifecycles / 2), () => runRm(['-p', '80']));
    const s2 = await bed.status();
    const nets = await repeat(ctx, networks, async (i) => {
      await createNetwork(bed, 'knit', `cc-n${i}`);
      await bed.docker(['network', 'rm', `cc-n${i}`]);
    });
    const s3 = await bed.status();
    ctx.progress(`calls: ${plain} lifecycles, ${published} with -p, ${nets} networks`);
    const d = { plain: perOp(s0, s1, plain), published: perOp(s1, s2, published), network: perOp(s2, s3, nets) };
    const callRows: Row[] = Object.entries(s3.calls)
      .filter(([path]) => PLUGIN_CALL.test(path))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([path, s]) => ({
        metric: path.slice(1),
        knit: `p50 ${millis(s.p50)}, p99 ${millis(s.p99)}, max ${millis(s.max)} (n=${s.count}${s.errors ? `, ${s.errors} errors` : ''})`,
      }));
    return {
      id: 'calls',
      rows: [
        ...callRows,
        ...spawnRows('lifecycle (`docker run --rm ... true`)', d.plain),
        ...spawnRows('lifecycle with `-p 80`', d.published),
        ...spawnRows('network create + rm', d.network),
      ],
      notes: [
        `Call times are knit's own (from POST /knit.Status, time from request to reply inside knit) over everything this host did: ${WARMUP} warm-up lifecycles, ${plain} lifecycles, ${published} lifecycles publishing a port, ${nets} networks created and removed (subnet chosen by knit).`,
        'Processes: the difference in knit\'s per-tool spawn counters before and after the lifecycles, divided by their number. knit\'s periodic sweep (every 30 s) may add to them.',
        describeCalls('lifecycle', d.plain),
        describeCalls('lifecycle with -p', d.published),
        describeCalls('network create + rm', d.network),
        "The built-in bridge runs inside dockerd and has no such counters, so there is no built-in column here.",
      ],
    };
  });
}
