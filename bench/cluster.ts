// Cluster scale (issue 17): N simulated hosts, each a knit process in its own namespace on one underlay, all on one
// etcd (or the Consul test server: KNIT_BENCH_STORE=consul), driven with dockerd's calls; as N grows: convergence,
// store cost per change, watch events, memory, CPU.
import { inTime, type BenchContext } from './bed.js';
import { withCluster } from './cluster-bed.js';
import { storeKind } from './cluster-store.js';
import { ENDPOINTS_PER_HOST, measureCluster, OVERLAY_SUBNETS, type ClusterResult } from './cluster-measure.js';
import type { ProcSample } from './proc-stats.js';
import { divide, requests, type Counters } from './etcd-metrics.js';
import type { Figures, Row } from './report.js';
import { fixed, median, mib, quantile, sig } from './stats.js';

/** KNIT_BENCH_HOSTS=10,30,100 (at most three counts: one column each). */
export function hostCounts(quick: boolean): number[] {
  const raw = process.env.KNIT_BENCH_HOSTS || (quick ? '5,10' : '10,30,100');
  const counts = raw.split(',').map(Number);
  if (counts.length > 3 || counts.some((n) => !Number.isInteger(n) || n < 2 || n > 200)) {
    throw new Error(`KNIT_BENCH_HOSTS "${raw}" must be one to three host counts between 2 and 200, e.g. 10,30,100`);
  }
  return counts;
}

const s = (ms: number): string => `${fixed(ms / 1000, 2)} s`;
const pq = (xs: number[]): string => (xs.length ? `${s(median(xs))} / ${s(quantile(xs, 0.99))} / ${s(quantile(xs, 1))}` : 'n/a');
const mem = (xs: ProcSample[], pick: (p: ProcSample) => number) => `${mib(median(xs.map(pick)))} / ${mib(Math.max(...xs.map(pick)))}`;
const kinds = (c: Counters) =>
  [['txn', 'Txn'], ['range', 'Range'], ['put', 'Put'], ['deleteRange', 'Delete'], ['leaseGrant', 'LeaseGrant'], ['keepAlive', 'KeepAlive'], ['watchRequests', 'Watch']]
    .filter(([k]) => Math.abs(c[k] ?? 0) >= 0.05)
    .map(([k, label]) => `${label} ${fixed(c[k], 1)}`)
    .join(', ');
const kb = (bytes: number): string => `${sig(bytes / 1024)} KiB`;
/** A figure the store does not count (the Consul test server has no watch-event counter) reads n/a. */
const known = (...xs: Array<number | undefined>): boolean => xs.every((x) => x !== undefined && Number.isFinite(x));

type Result = ClusterResult & { storeEndText: string };

function rows(rs: Result[]): Row[] {
  const row = (metric: string, f: (r: Result) => string, target = ''): Row => ({ metric, knit: '', values: rs.map(f), target });
  const perChange = (c: Counters) => `${fixed(requests(c), 1)} (${kinds(c)})`;
  const idleRate = (r: ClusterResult) => divide(r.idle.store, r.idle.ms / 1000);
  return [
    row('convergence, endpoint started until every other host programmed it: p50 / p99 / max', (r) => pq(r.created.all), 'p99 < 2 s at 100 hosts'),
    row('the same, each (endpoint, host) pair: p50 / p99', (r) => `${s(median(r.created.perHost))} / ${s(quantile(r.created.perHost, 0.99))}`),
    row('endpoint stopped until every other host removed it: p50 / p99 / max', (r) => pq(r.removed.all)),
    row('probes (endpoints started and stopped one at a time); failed', (r) => `${r.created.all.length}; ${r.probeFailures.length}`, '0 failed'),
    row("a container start's calls (RequestAddress … EndpointOperInfo), p50 / p99", (r) => `${s(median(r.startCallMs))} / ${s(quantile(r.startCallMs, 0.99))}`),
    row('store requests per endpoint start (by kind)', (r) => perChange(r.perCreate), 'independent of N'),
    row('store requests per endpoint stop (by kind)', (r) => perChange(r.perRemove), 'independent of N'),
    row('bytes to the store per start / stop', (r) => `${kb(r.perCreate.bytesIn)} / ${kb(r.perRemove.bytesIn)}`, 'independent of N'),
    row('bytes from the store per start / stop (all hosts\' watches included)', (r) => `${kb(r.perCreate.bytesOut)} / ${kb(r.perRemove.bytesOut)}`),
    row('watch events per host per start / stop', (r) => (known(r.perCreate.events, r.perRemove.events) ? `${fixed(r.perCreate.events / r.n, 2)} / ${fixed(r.perRemove.events / r.n, 2)}` : 'n/a')),
    row('Consul: bytes of the blocking reads a start / stop woke, per other host', (r) => (known(r.perCreate.wokenBytes, r.perRemove.wokenBytes) ? `${kb(r.perCreate.wokenBytes / (r.n - 1))} / ${kb(r.perRemove.wokenBytes / (r.n - 1))}` : 'n/a'), 'independent of N'),
    row('dynamic addresses (`docker run` without --ip), 2 per host, 8 hosts at a time: store Txn per request; refused', (r) => `${fixed(r.dynamic.txn / r.dynamic.requests, 1)}; ${r.dynamic.failures.length} of ${r.dynamic.requests}`, '0 refused'),
    row('idle cluster: store requests/s, all hosts (per host)', (r) => `${fixed(requests(idleRate(r)), 1)} (${fixed(requests(idleRate(r)) / r.n, 2)})`),
    row('idle cluster: bytes/s to / from the store, all hosts', (r) => `${kb(idleRate(r).bytesIn)} / ${kb(idleRate(r).bytesOut)}`),
    row('knit CPU per host: idle (% of one core)', (r) => `${fixed((100 * r.idle.cpuMs) / r.idle.ms / r.n, 2)}%`),
    row('knit CPU per endpoint change, per other host (incl. its ip/bridge)', (r) => `${fixed(r.probeCpuMs / (2 * r.changes) / (r.n - 1), 1)} ms`),
    row('knit RSS per host after start: median / max', (r) => mem(r.afterStart, (p) => p.rss)),
    row('knit RSS per host at the end: median / max (peak VmHWM: median / max)', (r) => `${mem(r.atEnd, (p) => p.rss)} (${mem(r.atEnd, (p) => p.hwm)})`, '< 150 MiB'),
    row('start every knit until each answers (4 at a time)', (r) => s(r.startMs)),
    row(`fill: ${ENDPOINTS_PER_HOST} endpoints per host, 8 hosts at a time, until every host has all`, (r) => `${s(r.fill.ms)} (${r.fill.endpoints} endpoints)`),
    row('fill: store requests per endpoint (idle load included)', (r) => fixed(requests(r.fill.store) / r.fill.endpoints, 1)),
    row(storeKind() === 'etcd' ? "etcd at the end: database size (in use), keys, etcd's RSS" : 'the store at the end', (r) => r.storeEndText),
  ];
}

function notes(rs: Result[]): string[] {
  const each = (f: (r: Result) => string) => rs.map((r) => `${r.n} hosts: ${f(r)}`).join('; ');
  return [
    `Hosts: network namespaces knt-benchk001… on one underlay bridge (veth, MTU 1500), ${storeKind() === 'etcd' ? "etcd 3.4 in the underlay's namespace" : 'the Consul test server of spec/support (a double of Consul\'s HTTP API, one Node worker thread) in the benchmark\'s process, reached over a veth from the root namespace'}; in each a knit (dist/main.js) with KNIT_STORE=${storeKind()}://…, KNIT_ADVERTISE=ul0, info logs, its resolver on (KNIT_DNS_ADDRESS default; no engine, so names come from the endpoint names below). No dockerd: the benchmark posts dockerd 20.10's calls (docs/protocol.md §2), with dockerd 29's endpoint name in RequestAddress, to each knit's socket.`,
    `Overlay${OVERLAY_SUBNETS.length > 1 ? 's' : ''}: ${OVERLAY_SUBNETS.join(' and ')}, created on every host (RequestPool, gateway RequestAddress, CreateNetwork with knit.mode=overlay; each host's own network ID), 4 hosts at a time. Fill: each host starts ${ENDPOINTS_PER_HOST} endpoints (RequestAddress, CreateEndpoint, Join, ProgramExternalConnectivity, EndpointOperInfo ×2), ${OVERLAY_SUBNETS.length > 1 ? 'half on each overlay' : 'all on it'}. Fill and probes ask for addresses as \`docker run --ip\` does (10.8x.HOST.N, each host its own): dynamic allocation in one pool shared by every host is measured on its own, after the probes (see that row).`,
    'Convergence: one `ip -ts monitor all-nsid neigh` in the root namespace gets the kernel\'s notification of every FDB and neighbour entry in every host namespace, stamped as ip reads it; an endpoint is programmed on a host once its MAC→VTEP FDB entry and its IP→MAC neighbour entry are both there (removed: both gone). Clock from just before CreateEndpoint (DeleteEndpoint) is sent. Positive control after the fill, `bridge fdb show` and `ip neigh show` on three hosts, and the name records each answers from (`knit status`; every RequestAddress carries dockerd 29\'s endpoint name, so each endpoint\'s name is published at its Join): ' + each((r) => r.kernelCheck) + '.',
    'Probes: one endpoint at a time, on hosts in turn, started, waited for on every other host, stopped, waited for again; nothing else changes meanwhile.',
    (storeKind() === 'etcd'
      ? "Store figures from etcd's own /metrics (gRPC messages received by method, client gRPC bytes in/out, mvcc events sent to watchers, DB size)"
      : "Store figures from the Consul test server's request counters (KV reads as Range, blocking KV reads as Watch, KV writes and transactions as Txn, session create/renew/destroy as LeaseGrant/KeepAlive/LeaseRevoke; HTTP bodies in and out as bytes); it counts no watch events, and a blocking read is counted when it arrives, not when it returns") +
      ' read before and after each probe step; the idle rate of a 60 s window with no changes (leases, liveness checks, sweeps) times the probes\' duration is subtracted.',
    `Idle window per host count: ${each((r) => `${s(r.idle.ms)}, requests/s by kind ${kinds(divide(r.idle.store, r.idle.ms / 1000))}`)}.`,
    `CPU: /proc/PID/stat of each knit (user+system, its own and its children's: the reaped ones, ip, bridge, iptables-restore, and the live ones, the long-lived ip and bridge that program overlay entries), summed over hosts; per change = over the probes less the idle rate, divided by changes (a start and a stop each) and by the other hosts. Memory: VmRSS and VmHWM.`,
    `Kernel notifications parsed: ${each((r) => `${r.watch.lines}${r.watch.errors ? ` (ip said: ${r.watch.errors.slice(0, 200)})` : ''}`)}.`,
    ...rs.filter((r) => r.dynamic.failures.length).map((r) => `${r.n} hosts: IPAM refused a dynamic address: ${r.dynamic.failures[0]}`),
    ...rs.filter((r) => r.probeFailures.length).map((r) => `${r.n} hosts: failed probes: ${r.probeFailures.slice(0, 3).join(' | ')}`),
  ];
}

export async function cluster(ctx: BenchContext): Promise<Figures> {
  const counts = hostCounts(ctx.quick);
  const results: Result[] = [];
  for (const n of counts) {
    if (!inTime(ctx)) break;
    const probes = ctx.quick ? 10 : 30;
    results.push(await withCluster(ctx, n, async (bed) => {
      const r = await measureCluster(ctx, bed, probes, ctx.quick ? 30_000 : 90_000);
      return { ...r, storeEndText: bed.store.endNote(r.storeEnd, kb, mib) };
    }));
  }
  return {
    id: 'cluster',
    columns: results.map((r) => `${r.n} hosts`),
    rows: rows(results),
    notes: [...notes(results), ...(results.length < counts.length ? [`The time budget ran out before ${counts.slice(results.length).join(', ')} hosts.`] : [])],
  };
}

