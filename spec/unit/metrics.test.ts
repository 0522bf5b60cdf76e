// The metrics registry, the gauges read from other parts at each scrape, and the listener's one route.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolverStats } from '../../src/dns/names.js';
import { summarizeUsage } from '../../src/ipam/usage.js';
import { encode } from '../../src/store/records.js';
import { handler, listenMetrics } from '../../src/metrics/listener.js';
import { KnitMetrics } from '../../src/metrics/registry.js';
import { type MetricSources, SourceMetrics } from '../../src/metrics/sources.js';
import { families, value } from '../support/prom-text.js';

const dns: ResolverStats = { queries: 9, answered: 4, forwarded: 3, refused: 1, dropped: 1, servfail: 0, formerr: 0, notimp: 0, inflight: 2, tcpConnections: 1 };
const entry = (key: string, record: object) => ({ key, value: encode(record), revision: 1 });
const usage = summarizeUsage({
  hostId: 'me',
  pools: [entry('ipam/pools/10.1.0.0_24', { subnet: '10.1.0.0/24', family: 4, hosts: ['me', 'gone'] }), entry('ipam/pools/10.2.0.0_24', { subnet: '10.2.0.0/24', family: 4, hosts: ['other'] })],
  addrs: [
    entry('ipam/addrs/10.1.0.0_24/10.1.0.1', { host: 'me', kind: 'gateway' }),
    entry('ipam/addrs/10.1.0.0_24/10.1.0.2', { host: 'me', kind: 'dynamic' }),
    entry('ipam/addrs/10.1.0.0_24/10.1.0.3', { host: 'gone', kind: 'dynamic' }),
    entry('ipam/addrs/10.1.0.0_24/10.1.0.4', { host: 'gone', kind: 'static' }),
    entry('ipam/addrs/10.2.0.0_24/10.2.0.9', { host: 'other', kind: 'dynamic' }),
    entry('ipam/addrs/10.9.0.0_24/10.9.0.9', { host: 'me', kind: 'dynamic' }),
  ],
  blocks: [
    entry('ipam/blocks/10.1.0.0_24/10.1.0.240', { host: 'me', block: '10.1.0.240/28' }),
    entry('ipam/blocks/10.1.0.0_24/10.1.0.224', { host: 'gone', block: '10.1.0.224/28' }),
    entry('ipam/blocks/10.1.0.0_24/10.1.0.208', { host: 'other', block: '10.1.0.208/28' }),
    entry('ipam/blocks/10.9.0.0_24/10.9.0.240', { host: 'me', block: '10.9.0.240/28' }),
  ],
  ledger: [entry('ipam/ledger/10.1.0.0_24/10.1.0.240', {}), entry('ipam/ledger/10.1.0.0_24/10.1.0.241', {})],
  lost: [entry('ipam/lost/gone', { since: '2026-12-03T00:00:00Z' })],
});

describe('IPAM usage (pure)', () => {
  test('per pool: taken by anyone, by this host (records and its ledger), by quarantined hosts; blocks alike; records without a pool record are left out', () => {
    expect(usage).toEqual({
      pools: [
        { subnet: '10.1.0.0/24', held: true, inUse: 6, mine: 4, quarantined: 2, blocks: 3, blocksMine: 1, blocksQuarantined: 1 },
        { subnet: '10.2.0.0/24', held: false, inUse: 1, mine: 0, quarantined: 0, blocks: 0, blocksMine: 0, blocksQuarantined: 0 },
      ],
      quarantinedHosts: 1,
    });
  });
});

describe('KnitMetrics', () => {
  const m = new KnitMetrics();
  m.setInfo({ hostId: '3f2a9c1e0b7d4a55', store: 'etcd' });
  m.record('/NetworkDriver.Join', 1.5, 'ok');
  m.record('/NetworkDriver.Join', 30, 'ok');
  m.record('/NetworkDriver.Join', 2, 'unavailable');
  m.batch({ tool: 'ip', force: false, lines: 5, calls: 3, durationMs: 4, exitCode: 0 });
  m.batch({ tool: 'bridge', force: true, lines: 2, durationMs: 2, exitCode: 1 });
  m.failed('apply');
  m.storeCall('etcd', 'commit', 0.003, 'ok');
  m.storeCall('etcd', 'commit', 0.002, 'conflict');
  m.storeEvent('etcd');
  let text = '';
  beforeAll(async () => {
    text = await m.registry.metrics();
  });

  test('plugin calls by path and outcome, latency in seconds by path', () => {
    expect(value(text, 'knit_plugin_calls_total', { path: '/NetworkDriver.Join', outcome: 'ok' })).toBe(2);
    expect(value(text, 'knit_plugin_calls_total', { path: '/NetworkDriver.Join', outcome: 'unavailable' })).toBe(1);
    expect(value(text, 'knit_plugin_call_duration_seconds_count', { path: '/NetworkDriver.Join' })).toBe(3);
    expect(value(text, 'knit_plugin_call_duration_seconds_bucket', { path: '/NetworkDriver.Join', le: '0.0025' })).toBe(2);
    expect(value(text, 'knit_plugin_call_duration_seconds_sum', { path: '/NetworkDriver.Join' })).toBeCloseTo(0.0335, 6);
  });

  test('kernel batches by tool and result, lines, calls per shared batch, failed changes', () => {
    expect(value(text, 'knit_kernel_batches_total', { tool: 'ip', result: 'ok' })).toBe(1);
    expect(value(text, 'knit_kernel_batches_total', { tool: 'bridge', result: 'failed' })).toBe(1);
    expect(value(text, 'knit_kernel_batch_lines_total', { tool: 'ip' })).toBe(5);
    // Only a shared batch (calls given) counts there: the bridge batch did not.
    expect(value(text, 'knit_kernel_shared_batch_calls_count')).toBe(1);
    expect(value(text, 'knit_kernel_shared_batch_calls_sum')).toBe(3);
    expect(value(text, 'knit_kernel_failures_total', { op: 'apply' })).toBe(1);
  });

  test('store calls by store, op and outcome; watch events; knit_info', () => {
    expect(value(text, 'knit_store_calls_total', { store: 'etcd', op: 'commit', outcome: 'ok' })).toBe(1);
    expect(value(text, 'knit_store_calls_total', { store: 'etcd', op: 'commit', outcome: 'conflict' })).toBe(1);
    expect(value(text, 'knit_store_call_duration_seconds_count', { store: 'etcd', op: 'commit' })).toBe(2);
    expect(value(text, 'knit_store_watch_events_total', { store: 'etcd' })).toBe(1);
    expect(value(text, 'knit_info', { host: '3f2a9c1e0b7d4a55', store: 'etcd' })).toBe(1);
  });

  test('every family is prefixed knit_, the process\'s default metrics included', () => {
    const names = families(text);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('knit_'))).toEqual([]);
    expect(names).toEqual(expect.arrayContaining(['knit_process_cpu_seconds_total', 'knit_process_resident_memory_bytes', 'knit_nodejs_eventloop_lag_seconds']));
  });
});

describe('SourceMetrics: what other parts hold, read at each scrape', () => {
  const sources = (over: Partial<MetricSources> = {}): MetricSources => ({
    spawned: () => ({ ip: 7, bridge: 2 }),
    lease: () => ({ held: true, records: 3, grants: 2, losses: 1 }),
    segments: () => [
      { segment: '10.50.0.0_24', device: 'knv4096', hosts: 2, endpoints: 5, fdb: 7, neigh: 5 },
      { segment: '10.60.0.0_24', device: 'knv4097', hosts: 0, endpoints: 0 },
    ],
    ipam: async () => usage,
    dns: () => dns,
    ...over,
  });
  const scrape = async (s: MetricSources, errors: string[] = []) => {
    const m = new KnitMetrics();
    await new SourceMetrics(m.registry, s, (source) => errors.push(source)).refresh();
    return m.registry.metrics();
  };

  test('spawned processes, lease, overlay per segment, IPAM per pool and the resolver\'s counters', async () => {
    const text = await scrape(sources());
    expect(value(text, 'knit_processes_spawned_total', { tool: 'ip' })).toBe(7);
    expect(value(text, 'knit_lease_held')).toBe(1);
    expect(value(text, 'knit_lease_records')).toBe(3);
    expect(value(text, 'knit_lease_grants_total')).toBe(2);
    expect(value(text, 'knit_lease_losses_total')).toBe(1);
    expect(value(text, 'knit_overlay_peers', { segment: '10.50.0.0_24' })).toBe(2);
    expect(value(text, 'knit_overlay_remote_endpoints', { segment: '10.50.0.0_24' })).toBe(5);
    expect(value(text, 'knit_overlay_fdb_entries', { segment: '10.50.0.0_24' })).toBe(7);
    expect(value(text, 'knit_overlay_neighbour_entries', { segment: '10.50.0.0_24' })).toBe(5);
    // Entries not known (never programmed, or a failure): no sample rather than a made-up 0.
    expect(value(text, 'knit_overlay_peers', { segment: '10.60.0.0_24' })).toBe(0);
    expect(value(text, 'knit_overlay_fdb_entries', { segment: '10.60.0.0_24' })).toBeUndefined();
    expect(value(text, 'knit_ipam_pools')).toBe(2);
    expect(value(text, 'knit_ipam_pools_held')).toBe(1);
    expect(value(text, 'knit_ipam_addresses_in_use', { pool: '10.1.0.0/24' })).toBe(6);
    expect(value(text, 'knit_ipam_addresses_held', { pool: '10.1.0.0/24' })).toBe(4);
    expect(value(text, 'knit_ipam_addresses_quarantined', { pool: '10.1.0.0/24' })).toBe(2);
    expect(value(text, 'knit_ipam_quarantined_hosts')).toBe(1);
    expect(value(text, 'knit_ipam_blocks', { pool: '10.1.0.0/24' })).toBe(3);
    expect(value(text, 'knit_ipam_blocks_held', { pool: '10.1.0.0/24' })).toBe(1);
    expect(value(text, 'knit_ipam_blocks_quarantined', { pool: '10.1.0.0/24' })).toBe(1);
    expect(value(text, 'knit_ipam_blocks', { pool: '10.2.0.0/24' })).toBe(0);
    expect(value(text, 'knit_dns_queries_total')).toBe(9);
    expect(value(text, 'knit_dns_outcomes_total', { outcome: 'forwarded' })).toBe(3);
    expect(value(text, 'knit_dns_forwards_inflight')).toBe(2);
    expect(value(text, 'knit_metrics_source_errors_total', { source: 'ipam' })).toBeUndefined();
  });

  test('parts this knit does not have show no metrics at all', async () => {
    const text = await scrape(sources({ lease: undefined, segments: undefined, dns: () => undefined }));
    const names = families(text);
    expect(names).toContain('knit_ipam_pools');
    expect(names.filter((n) => /^knit_(lease|overlay|dns)_/.test(n))).toEqual([]);
  });

  test('an IPAM read that fails leaves IPAM out of that scrape (not 0) and is counted; the rest is served; the next read brings it back', async () => {
    const errors: string[] = [];
    let fail = false;
    const m = new KnitMetrics();
    const s = new SourceMetrics(m.registry, sources({ ipam: async () => (fail ? Promise.reject(new Error('etcd did not answer')) : usage) }), (source) => errors.push(source));
    await s.refresh();
    expect(value(await m.registry.metrics(), 'knit_ipam_pools')).toBe(2);
    fail = true;
    await s.refresh();
    const text = await m.registry.metrics();
    expect(errors).toEqual(['ipam']);
    expect(value(text, 'knit_metrics_source_errors_total', { source: 'ipam' })).toBe(1);
    expect(families(text).filter((n) => n.startsWith('knit_ipam_'))).toEqual([]);
    expect(value(text, 'knit_lease_held')).toBe(1);
    fail = false;
    await s.refresh();
    expect(value(await m.registry.metrics(), 'knit_ipam_addresses_in_use', { pool: '10.1.0.0/24' })).toBe(6);
  });

  test('a segment that went away disappears at the next scrape', async () => {
    let list = sources().segments!();
    const m = new KnitMetrics();
    const s = new SourceMetrics(m.registry, sources({ segments: () => list }), () => undefined);
    await s.refresh();
    list = list.slice(1);
    await s.refresh();
    const text = await m.registry.metrics();
    expect(value(text, 'knit_overlay_peers', { segment: '10.50.0.0_24' })).toBeUndefined();
    expect(value(text, 'knit_overlay_peers', { segment: '10.60.0.0_24' })).toBe(0);
  });
});

describe('the listener: only GET /metrics', () => {
  let dir: string;
  let server: Server;
  let path: string;
  const get = (method: string, url: string) => new Promise<{ status: number; type?: string; allow?: string; body: string }>((resolve, reject) => {
    const req = request({ socketPath: path, method, path: url, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], allow: res.headers.allow, body }));
    });
    req.on('error', reject);
    req.end();
  });
  const exposition = { contentType: 'text/plain; version=0.0.4; charset=utf-8', metrics: async () => 'knit_up 1\n' };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'knit-metrics-'));
    path = join(dir, 'sub', 'metrics.sock');
    server = await listenMetrics({ kind: 'unix', path }, handler(exposition, () => undefined));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('GET /metrics answers the text with Prometheus\'s content type; the unix socket is 0600', async () => {
    expect(await get('GET', '/metrics')).toEqual({ status: 200, type: exposition.contentType, allow: undefined, body: 'knit_up 1\n' });
    expect(await get('GET', '/metrics?name=x')).toMatchObject({ status: 200 });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  test('another path is 404, another method on /metrics is 405 naming GET', async () => {
    expect(await get('GET', '/')).toMatchObject({ status: 404, body: expect.stringContaining('only GET /metrics') });
    expect(await get('GET', '/metrics/')).toMatchObject({ status: 404 });
    expect(await get('POST', '/NetworkDriver.Join')).toMatchObject({ status: 404 });
    expect(await get('POST', '/metrics')).toMatchObject({ status: 405, allow: 'GET' });
    expect(await get('DELETE', '/metrics')).toMatchObject({ status: 405, allow: 'GET' });
  });

  test('a scrape whose collection fails is a 500 with the reason, and the listener goes on', async () => {
    const errors: unknown[] = [];
    const failing = { ...exposition, metrics: async () => Promise.reject(new Error('boom')) };
    const p2 = join(dir, 'failing.sock');
    const s2 = await listenMetrics({ kind: 'unix', path: p2 }, handler(failing, (err) => errors.push(err)));
    const saved = path;
    path = p2;
    try {
      expect(await get('GET', '/metrics')).toMatchObject({ status: 500, body: 'collecting metrics failed: boom\n' });
      expect(await get('GET', '/')).toMatchObject({ status: 404 });
    } finally {
      path = saved;
      await new Promise((resolve) => s2.close(resolve));
    }
    expect(errors).toHaveLength(1);
  });

  test('a live socket is never replaced; a TCP port in use is a clear error naming KNIT_METRICS', async () => {
    await expect(listenMetrics({ kind: 'unix', path }, handler(exposition, () => undefined))).rejects.toThrow(`KNIT_METRICS unix://${path}: cannot listen`);
    // Control: the first listener still answers.
    expect((await get('GET', '/metrics')).status).toBe(200);
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      await expect(listenMetrics({ kind: 'tcp', host: '127.0.0.1', port }, handler(exposition, () => undefined))).rejects.toThrow(`KNIT_METRICS 127.0.0.1:${port}: cannot listen: EADDRINUSE`);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});
