// The cluster benchmark's phases on one bed of N hosts: overlays everywhere, a fill of E endpoints per host, an
// idle window (background store load and CPU), then probes: one endpoint at a time started on one host and
// stopped again, each timed until every other host's kernel has (and then no longer has) its entries.
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../spec/support/proc.js';
import { inParallel, inTime, type BenchContext } from './bed.js';
import { activate, call, createOverlay, dynamicAddress, releaseAddress, startEndpoint, stopEndpoint, type Endpoint, type OverlayNet } from './cluster-calls.js';
import type { ClusterBed, ClusterHost } from './cluster-bed.js';
import type { StoreDiagnostics } from './cluster-store.js';
import { delta, lessBackground, divide, sumDeltas, type Counters } from './etcd-metrics.js';
import { KernelWatch } from './kernel-watch.js';
import { sampleAll, type ProcSample } from './proc-stats.js';

/**
 * KNIT_BENCH_OVERLAYS=1 keeps one overlay: on Consul each host holds a blocking query per other host and shared
 * overlay, and at 100 hosts two overlays' 19,800 would take every file descriptor this machine lets the benchmark's
 * process (where the Consul test server runs) open.
 */
export const OVERLAY_SUBNETS = ['10.80.0.0/16', '10.81.0.0/16'].slice(0, overlayCount());

function overlayCount(): number {
  const raw = process.env.KNIT_BENCH_OVERLAYS || '2';
  if (raw !== '1' && raw !== '2') throw new Error(`KNIT_BENCH_OVERLAYS "${raw}" must be 1 or 2`);
  return Number(raw);
}
/** Endpoints each host starts in the fill, spread over the overlays. */
export const ENDPOINTS_PER_HOST = 4;
const FILL_PARALLEL = 8;
/**
 * A whole number of every idle period (each host's 30 s sweep, the once-a-minute liveness check of the hosts that
 * do not lead), so that each lands in the window as often as its rate says; a shorter window caught sweeps unevenly
 * and per-change figures came out negative after the subtraction. Consul's blocking queries run out after 5 min,
 * and the window starts seconds after the fill woke them all: only a window of 10 min (IDLE=600, KNIT_BENCH_IDLE_S)
 * sees their re-answers at their steady rate; the default 60 s sees few of them.
 */
const IDLE_MS = idleSeconds() * 1000;
/** What a longer idle window adds to the benchmark's time budget. */
export const IDLE_EXTRA_MS = IDLE_MS - 60_000;

function idleSeconds(): number {
  const raw = process.env.KNIT_BENCH_IDLE_S || '60';
  if (!/^\d+$/.test(raw) || Number(raw) < 60 || Number(raw) % 60) throw new Error(`KNIT_BENCH_IDLE_S "${raw}" must be a whole number of minutes in seconds (60, 120, … 600)`);
  return Number(raw);
}
const SETTLE_MS = 5_000;
const CONVERGE_TIMEOUT_MS = 30_000;
const FILL_TIMEOUT_MS = 300_000;

export interface ProbeTimes {
  /** Per probe: until the last other host; per (probe, host): each host. ms. */
  all: number[];
  perHost: number[];
}

export interface ClusterResult {
  n: number;
  startMs: number;
  overlaysMs: number;
  afterStart: ProcSample[];
  atEnd: ProcSample[];
  fill: { ms: number; endpoints: number; store: Counters };
  idle: { ms: number; store: Counters; cpuMs: number };
  created: ProbeTimes;
  removed: ProbeTimes;
  startCallMs: number[];
  probeFailures: string[];
  /** Dynamic RequestAddress on every host at once: how many, the store transactions they took, IPAM's refusals. */
  dynamic: { requests: number; txn: number; failures: string[] };
  /** Per change (less the idle rate over the probes' time); `changes` of each kind. */
  perCreate: Counters;
  perRemove: Counters;
  changes: number;
  probeCpuMs: number;
  probeMs: number;
  storeEnd: Counters;
  kernelCheck: string;
  watch: { lines: number; errors: string };
}

const cpuOf = (s: ProcSample[]): number => s.reduce((sum, x) => sum + x.cpuMs + x.childMs, 0);

/** Every host activates knit and creates every overlay, as `docker network create` on each host would. */
async function createOverlays(ctx: BenchContext, bed: ClusterBed): Promise<OverlayNet[][]> {
  const nets: OverlayNet[][] = [];
  await inParallel({ ...ctx, deadline: Infinity }, bed.hosts, 4, async (h) => {
    const space = await activate(h.conn);
    const mine: OverlayNet[] = [];
    for (const subnet of OVERLAY_SUBNETS) mine.push(await createOverlay(h.conn, space, subnet));
    nets[h.index] = mine;
  });
  if (nets.filter(Boolean).length !== bed.hosts.length) throw new Error('not every host created its overlays');
  return nets;
}

interface Ctx {
  ctx: BenchContext;
  bed: ClusterBed;
  watch: KernelWatch;
  ids: Map<string, number>;
  nets: OverlayNet[][];
}

/**
 * `docker run --ip`: each host's endpoints get addresses of their own (10.8x.HOST.FROM+slot), so that the figures
 * are the overlay's; dynamic allocation in a pool shared by every host is measured on its own (dynamicPhase).
 */
function staticAddress(h: ClusterHost, slot: number, from: number): string {
  const subnet = OVERLAY_SUBNETS[slot % OVERLAY_SUBNETS.length];
  const [a, b] = subnet.split('.');
  return `${a}.${b}.${h.index + 1}.${from + slot}`;
}

const othersOf = (c: Ctx, h: ClusterHost): number[] => c.bed.hosts.filter((x) => x !== h).map((x) => c.ids.get(x.netns)!);

/** Every host starts ENDPOINTS_PER_HOST endpoints (FILL_PARALLEL hosts at a time); until every other host has each. */
async function fill(c: Ctx): Promise<{ ms: number; endpoints: number }> {
  const started = Date.now();
  const waits: Array<Promise<unknown>> = [];
  await inParallel({ ...c.ctx, deadline: Infinity }, c.bed.hosts, FILL_PARALLEL, async (h) => {
    for (let e = 0; e < ENDPOINTS_PER_HOST; e++) {
      const ep = await startEndpoint(h.conn, c.nets[h.index][e % OVERLAY_SUBNETS.length], { address: staticAddress(h, e, 10) });
      const wait = c.watch.expect({ mac: ep.mac, ip: ep.ip, vtep: h.vtep, hosts: othersOf(c, h), deleted: false }, FILL_TIMEOUT_MS)
        .catch(async (err: Error & { missing?: number[] }) => {
          throw new Error(`${err.message}; ${await kernelHas(c, err.missing ?? [], ep)}${c.watch.errors ? `; ip monitor said: ${c.watch.errors.trim().slice(0, 300)}` : ''}`);
        });
      // Awaited below, after every start: one that times out before then must not end the process unhandled
      // (at 100 hosts on Consul it did, and the bed's namespaces were left behind).
      wait.catch(() => undefined);
      waits.push(wait);
    }
  });
  await Promise.all(waits);
  return { ms: Date.now() - started, endpoints: waits.length };
}

/** Whether the hosts the monitor did not see an endpoint's entries on have them (knit late, or the monitor blind). */
async function kernelHas(c: Ctx, nsids: number[], ep: { mac: string; ip: string }): Promise<string> {
  const byId = new Map([...c.ids].map(([netns, id]) => [id, netns]));
  let has = 0;
  for (const netns of nsids.map((id) => byId.get(id)!).slice(0, 5)) {
    const fdb = (await run(['bridge', '-n', netns, 'fdb', 'show'])).stdout.includes(ep.mac);
    const neigh = (await run(['ip', '-n', netns, 'neigh', 'show', ep.ip])).stdout.includes(ep.mac);
    if (fdb && neigh) has++;
  }
  return `reading the kernel now, ${has} of the first ${Math.min(5, nsids.length)} of those hosts have them`;
}

/** The kernel's own listing on a few hosts against what the fill must have left there (a positive control of the monitor). */
async function checkKernel(c: Ctx): Promise<string> {
  const n = c.bed.hosts.length;
  const want = (n - 1) * ENDPOINTS_PER_HOST;
  const picks = [...new Set([0, Math.floor(n / 2), n - 1])].map((i) => c.bed.hosts[i]);
  const found: string[] = [];
  for (const h of picks) {
    const fdb = (await run(['bridge', '-n', h.netns, 'fdb', 'show'])).stdout.split('\n').filter((l) => / dev knv\d+ dst /.test(l) && !l.startsWith('00:00:00:00:00:00'));
    const neigh = (await run(['ip', '-n', h.netns, 'neigh', 'show', 'nud', 'permanent'])).stdout.split('\n').filter((l) => / dev knv\d+ /.test(l));
    if (fdb.length !== want || neigh.length !== want) throw new Error(`after the fill ${h.netns} has ${fdb.length} FDB and ${neigh.length} neighbour entries for other hosts' endpoints, not ${want}`);
    // Names: every endpoint's (dockerd 29's endpoint name, published at Join), this host's own included.
    const names = await nameRecords(h, n * ENDPOINTS_PER_HOST);
    found.push(`${h.netns}: ${fdb.length} FDB / ${neigh.length} neighbour entries, ${names} names`);
    if (names !== n * ENDPOINTS_PER_HOST) throw new Error(`after the fill ${h.netns} answers ${names} names, not ${n * ENDPOINTS_PER_HOST}`);
  }
  return `${found.join('; ')} (${want} entries and ${n * ENDPOINTS_PER_HOST} names expected each)`;
}

/** The name records a host answers from (`knit status`), once it has `want` or after 10 s. */
async function nameRecords(h: ClusterHost, want: number): Promise<number> {
  let records = 0;
  for (const until = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const status = await call(h.conn, '/knit.Status', {});
    records = Number((status.names as { records?: number } | undefined)?.records ?? -1);
    if (records === want || Date.now() > until) return records;
  }
}

interface ProbeOut {
  created: ProbeTimes;
  removed: ProbeTimes;
  startCallMs: number[];
  createDeltas: Counters[];
  removeDeltas: Counters[];
  createMs: number;
  removeMs: number;
  failures: string[];
}

async function probeOnce(c: Ctx, h: ClusterHost, probe: number, out: ProbeOut): Promise<void> {
  const net = c.nets[h.index][probe % OVERLAY_SUBNETS.length];
  const hosts = othersOf(c, h);
  const before = await c.bed.store.counters();
  const t0 = Date.now();
  let tCreate = 0;
  const ep: Endpoint = await startEndpoint(h.conn, net, { onCreate: () => (tCreate = Date.now()), address: staticAddress(h, probe, 100) });
  try {
    out.startCallMs.push(Date.now() - t0);
    const created = await c.watch.expect({ mac: ep.mac, ip: ep.ip, vtep: h.vtep, hosts, deleted: false }, CONVERGE_TIMEOUT_MS);
    const mid = await c.bed.store.counters();
    const t1 = Date.now();
    let tDelete = 0;
    await stopEndpoint(h.conn, ep, () => (tDelete = Date.now()));
    const removed = await c.watch.expect({ mac: ep.mac, ip: ep.ip, vtep: h.vtep, hosts, deleted: true }, CONVERGE_TIMEOUT_MS);
    const after = await c.bed.store.counters();
    for (const [times, start, into] of [[created, tCreate, out.created], [removed, tDelete, out.removed]] as const) {
      const each = [...times.values()].map((t) => t - start);
      into.perHost.push(...each);
      into.all.push(Math.max(...each));
    }
    out.createDeltas.push(delta(before, mid));
    out.removeDeltas.push(delta(mid, after));
    out.createMs += t1 - t0;
    out.removeMs += Date.now() - t1;
  } finally {
    // Its address may be handed out again: an old deletion of it must not count for a later probe.
    c.watch.forget(ep.mac, ep.ip);
  }
}

async function probes(c: Ctx, count: number, deadline: number): Promise<ProbeOut> {
  const out: ProbeOut = { created: { all: [], perHost: [] }, removed: { all: [], perHost: [] }, startCallMs: [], createDeltas: [], removeDeltas: [], createMs: 0, removeMs: 0, failures: [] };
  const n = c.bed.hosts.length;
  // A stride coprime with n walks every host before it repeats one.
  const stride = [7, 11, 13, 3, 1].find((s) => n % s !== 0) ?? 1;
  for (let i = 0; i < count && Date.now() < deadline && inTime(c.ctx); i++) {
    const h = c.bed.hosts[(i * stride) % n];
    try {
      await probeOnce(c, h, i, out);
    } catch (err) {
      out.failures.push((err as Error).message.slice(0, 300));
    }
    if ((i + 1) % 10 === 0) c.ctx.progress(`cluster ${n}: ${i + 1} probes`);
  }
  return out;
}

/** Dynamic addresses each host asks for after the probes, FILL_PARALLEL hosts at a time, as in the fill. */
const DYNAMIC_PER_HOST = 2;

/**
 * Without --ip, every host allocates from the same shared pool through the store: every host asks for
 * DYNAMIC_PER_HOST addresses (kept until all have asked, then released); the store transactions that took and
 * the requests IPAM refused.
 */
async function dynamicPhase(c: Ctx): Promise<ClusterResult['dynamic']> {
  const before = await c.bed.store.counters();
  const held: Array<{ h: ClusterHost; ip: string }> = [];
  const failures: string[] = [];
  await inParallel({ ...c.ctx, deadline: Infinity }, c.bed.hosts, FILL_PARALLEL, async (h) => {
    for (let i = 0; i < DYNAMIC_PER_HOST; i++) {
      const r = await dynamicAddress(h.conn, c.nets[h.index][0]);
      if ('error' in r) failures.push(r.error.slice(0, 200));
      else held.push({ h, ip: r.ip });
    }
  });
  const txn = delta(before, await c.bed.store.counters()).txn;
  for (const { h, ip } of held) await releaseAddress(h.conn, c.nets[h.index][0], ip);
  return { requests: c.bed.hosts.length * DYNAMIC_PER_HOST, txn, failures };
}

/** Consul: the KV read bytes by key area since `from`, largest first, and the server's own diagnostics, for the log. */
async function areaNote(bed: ClusterBed, from: StoreDiagnostics | undefined): Promise<{ now?: StoreDiagnostics; note: string }> {
  const now = await bed.store.diagnostics?.();
  if (!now) return { note: '' };
  const since = (k: Exclude<keyof StoreDiagnostics, 'kvOut'>) => now[k] - (from?.[k] ?? 0);
  const rows = Object.entries(now.kvOut).map(([k, v]) => [k, v - (from?.kvOut[k] ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  const areas = rows.slice(0, 6).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(1)} MiB`).join(', ');
  return {
    now,
    note: `${areas || 'none'}; ${since('slowReplies')} requests answered after more than 1 s, ${since('unanswered')} never; ` +
      `${since('connections')} new connections; server thread stalled ${since('loopStalls')} times over 1 s (longest yet ${now.loopMaxMs} ms)`,
  };
}

export async function measureCluster(ctx: BenchContext, bed: ClusterBed, probeCount: number, probeBudgetMs: number): Promise<ClusterResult> {
  const n = bed.hosts.length;
  const ids = await KernelWatch.nsids(bed.hosts.map((h) => h.netns));
  const watch = await KernelWatch.start();
  let areas = await areaNote(bed, undefined);
  const logAreas = async (phase: string) => {
    areas = await areaNote(bed, areas.now);
    if (areas.note) ctx.progress(`cluster ${n}: KV read bytes by area, ${phase}: ${areas.note}`);
  };
  if (areas.note) ctx.progress(`cluster ${n}: KV read bytes by area, hosts' start: ${areas.note}`);
  try {
    const afterStart = await sampleAll(bed);
    let t = Date.now();
    const nets = await createOverlays(ctx, bed).finally(() => logAreas('overlays'));
    const overlaysMs = Date.now() - t;
    const c: Ctx = { ctx, bed, watch, ids, nets };
    ctx.progress(`cluster ${n}: overlays made in ${Math.round(overlaysMs / 1000)} s; filling ${ENDPOINTS_PER_HOST} endpoints per host`);
    const f0 = await c.bed.store.counters();
    const filled = await fill(c).finally(() => logAreas('fill'));
    const fillStore = delta(f0, await c.bed.store.counters());
    const kernelCheck = await checkKernel(c);
    ctx.progress(`cluster ${n}: fill converged in ${Math.round(filled.ms / 1000)} s; ${kernelCheck}`);
    await sleep(SETTLE_MS);
    const [i0, c0] = [await c.bed.store.counters(), await sampleAll(bed)];
    t = Date.now();
    await sleep(IDLE_MS);
    await logAreas('idle window');
    const [i1, c1] = [await c.bed.store.counters(), await sampleAll(bed)];
    const idle = { ms: Date.now() - t, store: delta(i0, i1), cpuMs: cpuOf(c1) - cpuOf(c0) };
    const rate = divide(idle.store, idle.ms);
    t = Date.now();
    const p = await probes(c, probeCount, Date.now() + probeBudgetMs);
    const probeMs = Date.now() - t;
    await logAreas('probes');
    const atEnd = await sampleAll(bed);
    const dynamic = await dynamicPhase(c);
    const changes = p.created.all.length;
    const per = (ds: Counters[], ms: number) => divide(lessBackground(sumDeltas(ds), rate, ms), changes);
    return {
      n, startMs: bed.startMs, overlaysMs, afterStart, atEnd,
      fill: { ...filled, store: fillStore }, idle,
      created: p.created, removed: p.removed, startCallMs: p.startCallMs, probeFailures: p.failures, dynamic,
      perCreate: per(p.createDeltas, p.createMs), perRemove: per(p.removeDeltas, p.removeMs), changes,
      probeCpuMs: cpuOf(atEnd) - cpuOf(c1) - (idle.cpuMs / idle.ms) * probeMs, probeMs,
      storeEnd: await c.bed.store.counters(), kernelCheck,
      watch: { lines: watch.lines, errors: watch.errors.trim() },
    };
  } finally {
    await watch.stop();
  }
}
