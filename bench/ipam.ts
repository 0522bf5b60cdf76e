// 4. IPAM throughput and scale: RequestAddress+ReleaseAddress pairs per second through knit's socket, and the
// per-call time as one /16 pool fills to 30,000 addresses. The embedded store always; etcd when knit can use it.
import { post } from '../spec/support/client.js';
import { knitStatus, timed, withBed, type Bed, type BenchContext } from './bed.js';
import { ipamOnEtcd } from './ipam-etcd.js';
import { fillTo, openPool, pairRate, probePairs } from './ipam-load.js';
import type { Figures, Row } from './report.js';
import { fixed, median, millis } from './stats.js';

const CHECKPOINTS = [10, 1_000, 10_000, 30_000];
const CONCURRENCY = 16;
/** Pairs before the timed ones, so that a cold JIT does not count. */
const WARMUP_SECONDS = 1;

/** Issue 6 for the embedded store; issue 17 for etcd (blocks of addresses claimed through the store). */
const TARGETS: Record<string, Record<number, string>> = {
  'embedded store': { 1: '≥ 2,000/s', [CONCURRENCY]: '≥ 2,000/s' },
  etcd: { 1: '≤ 3 ms a pair', [CONCURRENCY]: '≥ 1,000/s' },
};

interface RateOptions {
  seconds: number;
  maxPairs: number;
}

/** What knit itself spent per call (request in, reply out), over the calls so far on this knit. */
async function servedRow(socket: string, label: string): Promise<Row> {
  const calls = (await knitStatus(socket)).calls;
  const p50 = (name: string) => millis(calls[`/IpamDriver.${name}`]?.p50 ?? Number.NaN);
  return { metric: `time inside knit per call, 1 client, p50 (${label})`, knit: `RequestAddress ${p50('RequestAddress')}, ReleaseAddress ${p50('ReleaseAddress')}` };
}

/** Rows for the pair rate with one client and with CONCURRENCY clients on a fresh /16 pool. */
async function rateRows(socket: string, pool: string, label: string, opts: RateOptions): Promise<Row[]> {
  const poolId = await openPool(socket, pool);
  await pairRate(socket, poolId, { clients: 1, seconds: WARMUP_SECONDS, maxPairs: opts.maxPairs });
  const rows: Row[] = [];
  for (const clients of [1, CONCURRENCY]) {
    const r = await pairRate(socket, poolId, { clients, ...opts });
    const perPair = clients === 1 ? `, ${millis(1000 / r.perSecond)} a pair` : '';
    rows.push({
      metric: `Request+Release pairs/s, ${clients} client${clients > 1 ? 's' : ''} (${label})`,
      knit: `${fixed(r.perSecond, 0)}/s${perPair}${r.errors ? ` (${r.errors} errors)` : ''}`,
      target: TARGETS[label]?.[clients] ?? '',
    });
    if (clients === 1) rows.push(await servedRow(socket, label));
  }
  return rows;
}

/** The round trip of a call that does nothing: the floor under every IPAM call through this socket. */
async function emptyCallRow(socket: string): Promise<Row> {
  const empty: number[] = [];
  for (let i = 0; i < 200; i++) empty.push((await timed(() => post(socket, '/IpamDriver.GetCapabilities', {}))).ms);
  return { metric: 'round trip of a call that does nothing (IpamDriver.GetCapabilities), median', knit: millis(median(empty)) };
}

async function fillRows(ctx: BenchContext, bed: Bed, probes: number): Promise<{ rows: Row[]; notes: string[] }> {
  const poolId = await openPool(bed.knit.socket, '10.97.0.0/16');
  const rows: Row[] = [];
  const notes: string[] = [];
  let held = 0;
  for (const level of CHECKPOINTS) {
    if (Date.now() >= ctx.deadline) {
      notes.push(`Fill stopped by the time budget before ${level} addresses.`);
      break;
    }
    const fill = await fillTo(bed.knit.socket, poolId, { from: held, to: level, clients: 8, deadline: ctx.deadline });
    held = fill.held;
    if (held < level) {
      notes.push(`Fill stopped at ${held} addresses (time budget or errors: ${fill.errors}).`);
      break;
    }
    const p = await probePairs(bed.knit.socket, poolId, probes);
    ctx.progress(`ipam: ${level} addresses in use, fill at ${fixed(fill.perSecond, 0)}/s`);
    rows.push({
      metric: `per call with ${level.toLocaleString('en-US')} addresses in use`,
      knit: `RequestAddress ${millis(median(p.request))}, ReleaseAddress ${millis(median(p.release))}`,
      target: 'flat',
    });
  }
  return { rows, notes };
}

export async function ipam(ctx: BenchContext): Promise<Figures> {
  const rate: RateOptions = ctx.quick ? { seconds: 1.5, maxPairs: 20_000 } : { seconds: 4, maxPairs: 100_000 };
  const probes = ctx.quick ? 50 : 200;
  return withBed('benchip', async (bed) => {
    const embedded = await rateRows(bed.knit.socket, '10.96.0.0/16', 'embedded store', rate);
    const floor = await emptyCallRow(bed.knit.socket);
    ctx.progress('ipam: embedded pair rate done');
    const fill = await fillRows(ctx, bed, probes);
    const etcd = await ipamOnEtcd(bed, (socket) => rateRows(socket, '10.95.0.0/16', 'etcd', rate));
    return {
      id: 'ipam',
      rows: [...embedded, floor, ...etcd.rows, ...fill.rows],
      notes: [
        `Pairs: RequestAddress then ReleaseAddress of the address it got, posted to knit's socket as dockerd does (HTTP/1.1, keep-alive), for ${rate.seconds} s or ${rate.maxPairs} pairs; with ${CONCURRENCY} clients each runs its own loop. Times include the HTTP round trip.`,
        `Fill: one /16 pool is filled with RequestAddress (8 clients), and at each level ${probes} Request+Release pairs are timed one at a time; the medians are shown.`,
        ...fill.notes,
        ...etcd.notes,
        'No built-in column: Docker\'s default IPAM runs inside dockerd and has no socket to drive it by.',
      ],
    };
  });
}
