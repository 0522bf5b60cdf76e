// KNIT_METRICS against a real knit (dist/main.js) in a throwaway netns: scraped on 127.0.0.1 and on a unix socket
// while real plugin calls change the kernel, each counter checked for the exact amount it moved; without
// KNIT_METRICS nothing listens but the resolver.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isResolver, listening, socketsOf } from '../faults/support/sockets.js';
import { dockerId, post } from '../support/client.js';
import { NODE_DAEMON, noUpstreamsFile } from '../support/knit.js';
import { repoRoot } from '../support/layout.js';
import { families, value } from '../support/prom-text.js';
import { GiveUp, run, spawnLogged, type Spawned, waitFor } from '../support/proc.js';
import { assertThrowawayNetns } from './guard.js';

const PORT = 19464;
/** 127.0.0.1:19464 as /proc/net/tcp shows it (address little-endian hex, port big-endian hex). */
const METRICS_LOCAL = `0100007F:${PORT.toString(16).toUpperCase().padStart(4, '0')}`;
const SUBNET = '10.93.0.0/24';

let dir: string;
let socket: string;
let knit: Spawned | undefined;

interface Scrape { status: number; type?: string; allow?: string; text: string }

function scrape(target: { port: number } | { socketPath: string }, method = 'GET', path = '/metrics'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : target;
    const req = request({ ...where, method, path, timeout: 10_000 }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], allow: res.headers.allow, text }));
    });
    req.on('timeout', () => req.destroy(new Error('the scrape timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function start(env: Record<string, string>): Promise<Spawned> {
  const proc = spawnLogged([...NODE_DAEMON, join(repoRoot, 'dist/main.js')], {
    logFile: join(dir, 'knit.log'),
    capture: true,
    env: {
      KNIT_SOCKET: socket, KNIT_STATE_DIR: join(dir, 'state'), KNIT_LOG_LEVEL: 'debug', KNIT_LOG_FORMAT: 'json',
      KNIT_RESOLV_CONF: await noUpstreamsFile(dir), KNIT_DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`, ...env,
    },
  });
  await waitFor('knit to answer on its socket', async () => {
    if (!proc.running()) throw new GiveUp(`knit exited: ${proc.stderr.slice(-2000)}`);
    const r = await post(socket, '/Plugin.Activate', '', 2_000).catch(() => undefined);
    return r?.status === 200;
  }, { timeoutMs: 20_000, intervalMs: 100 });
  // The resolver and the first sweep come after the socket answers; "knit ready" is logged once they are done.
  await waitFor('knit to be ready', async () => proc.stdout.includes('"message":"knit ready"'), { timeoutMs: 20_000, intervalMs: 100 });
  return proc;
}

async function stop(): Promise<void> {
  await knit?.stop(10_000);
  knit = undefined;
}

/** knit's own debug line for every batch process it ran, since `from` characters of its output. */
const batchLines = (from: number, tool: string): number => (knit?.stdout ?? '').slice(from).split('\n')
  .filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { message?: string; event?: string; tool?: string })
  .filter((l) => l.message === 'kernel' && l.event === 'batch' && l.tool === tool).length;

/** Listening sockets of knit: those on 127.0.0.1:PORT, the resolver's, and anything else. */
async function listeners(pid: number): Promise<{ metrics: string[]; resolver: string[]; other: string[] }> {
  const open = (await socketsOf(pid)).filter(listening);
  return {
    metrics: open.filter((s) => s.local === METRICS_LOCAL).map((s) => s.table),
    resolver: open.filter(isResolver).map((s) => s.table).sort(),
    other: open.filter((s) => s.local !== METRICS_LOCAL && !isResolver(s)).map((s) => `${s.table} ${s.local}`),
  };
}

beforeAll(async () => {
  assertThrowawayNetns();
  dir = await mkdtemp(join(tmpdir(), 'knit-metrics-'));
  socket = join(dir, 'knit.sock');
});

afterAll(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});

const nid = dockerId();
const eids = [dockerId(), dockerId()];
let poolId = '';
const addrs: string[] = [];

/** An endpoint on the test's network, created and joined as dockerd does it. */
async function endpoint(eid: string): Promise<void> {
  const addr = await post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  expect(addr.status).toBe(200);
  addrs.push(addr.body.Address);
  expect((await post(socket, '/NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: addr.body.Address, AddressIPv6: '', MacAddress: '' }, Options: {} })).status).toBe(200);
  expect((await post(socket, '/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: {} })).status).toBe(200);
}

describe('KNIT_METRICS=127.0.0.1:PORT', () => {
  let before = '';
  let after = '';
  let outFrom = 0;
  const delta = (name: string, labels: Record<string, string> = {}) => (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);

  beforeAll(async () => {
    knit = await start({ KNIT_METRICS: `127.0.0.1:${PORT}` });
    before = (await scrape({ port: PORT })).text;
    outFrom = knit.stdout.length;
    const pool = await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: SUBNET, SubPool: '', Options: {}, V6: false });
    expect(pool.status).toBe(200);
    poolId = pool.body.PoolID;
    const gw = await post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
    expect(gw.body.Address).toBe('10.93.0.1/24');
    const net = await post(socket, '/NetworkDriver.CreateNetwork', { NetworkID: nid, Options: {}, IPv4Data: [{ AddressSpace: 'knit-local', Pool: SUBNET, Gateway: gw.body.Address }], IPv6Data: [] });
    expect(net.status).toBe(200);
    await endpoint(eids[0]);
    // One call that fails: an endpoint knit does not know.
    expect((await post(socket, '/NetworkDriver.Join', { NetworkID: nid, EndpointID: dockerId(), SandboxKey: '/x', Options: {} })).status).toBe(500);
    // One query to knit's resolver (no upstreams: whatever it answers, it is one query).
    const asked = await run(['node', join(repoRoot, 'spec/support/dns-client.mjs'), JSON.stringify({ mode: 'udp', server: '169.254.53.53', queries: [{ name: 'metrics.test' }], timeoutMs: 3000 })]);
    expect(JSON.parse(asked.stdout)).toHaveLength(1);
    after = (await scrape({ port: PORT })).text;
  });

  test('GET /metrics is Prometheus text; every family is knit_, process metrics included', async () => {
    const r = await scrape({ port: PORT });
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const names = families(r.text);
    expect(names.length).toBeGreaterThan(30);
    expect(names.filter((n) => !n.startsWith('knit_'))).toEqual([]);
    expect(value(r.text, 'knit_process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(value(r.text, 'knit_info', { store: 'local' })).toBe(1);
  });

  test('only GET /metrics: another path is 404, another method 405', async () => {
    expect((await scrape({ port: PORT }, 'GET', '/')).status).toBe(404);
    expect((await scrape({ port: PORT }, 'POST', '/NetworkDriver.Join')).status).toBe(404);
    expect(await scrape({ port: PORT }, 'POST', '/metrics')).toMatchObject({ status: 405, allow: 'GET' });
  });

  test('plugin calls moved by exactly the calls made, by path and outcome', () => {
    expect(delta('knit_plugin_calls_total', { path: '/IpamDriver.RequestPool', outcome: 'ok' })).toBe(1);
    expect(delta('knit_plugin_calls_total', { path: '/IpamDriver.RequestAddress', outcome: 'ok' })).toBe(2);
    expect(delta('knit_plugin_calls_total', { path: '/NetworkDriver.CreateNetwork', outcome: 'ok' })).toBe(1);
    expect(delta('knit_plugin_calls_total', { path: '/NetworkDriver.CreateEndpoint', outcome: 'ok' })).toBe(1);
    expect(delta('knit_plugin_calls_total', { path: '/NetworkDriver.Join', outcome: 'ok' })).toBe(1);
    expect(delta('knit_plugin_calls_total', { path: '/NetworkDriver.Join', outcome: 'not-found' })).toBe(1);
    expect(delta('knit_plugin_call_duration_seconds_count', { path: '/NetworkDriver.Join' })).toBe(2);
    expect(delta('knit_plugin_call_duration_seconds_sum', { path: '/NetworkDriver.CreateNetwork' })).toBeGreaterThan(0);
  });

  test('kernel batches moved by exactly the batch processes knit logged; none failed', () => {
    const ip = batchLines(outFrom, 'ip');
    expect(ip).toBeGreaterThan(0);
    expect(delta('knit_kernel_batches_total', { tool: 'ip', result: 'ok' })).toBe(ip);
    expect(delta('knit_kernel_batches_total', { tool: 'bridge', result: 'ok' })).toBe(batchLines(outFrom, 'bridge'));
    expect(delta('knit_kernel_batches_total', { tool: 'ip', result: 'failed' })).toBe(0);
    expect(delta('knit_kernel_failures_total', { op: 'apply' })).toBe(0);
    expect(delta('knit_kernel_batch_duration_seconds_count', { tool: 'ip' })).toBe(ip);
    expect(delta('knit_processes_spawned_total', { tool: 'ip' })).toBeGreaterThanOrEqual(ip);
  });

  test('store calls: the records written are commits on the local store, none failed', () => {
    // The pool, two addresses, the network and the endpoint are at least five commits.
    expect(delta('knit_store_calls_total', { store: 'local', op: 'commit', outcome: 'ok' })).toBeGreaterThanOrEqual(5);
    expect(delta('knit_store_calls_total', { store: 'local', op: 'commit', outcome: 'error' })).toBe(0);
    expect(delta('knit_store_call_duration_seconds_count', { store: 'local', op: 'get' })).toBeGreaterThan(0);
  });

  test('IPAM: one pool, the gateway and the endpoint\'s address in use, both this host\'s', () => {
    expect(value(after, 'knit_ipam_pools')).toBe(1);
    expect(value(after, 'knit_ipam_pools_held')).toBe(1);
    expect(value(after, 'knit_ipam_addresses_in_use', { pool: SUBNET })).toBe(2);
    expect(value(after, 'knit_ipam_addresses_held', { pool: SUBNET })).toBe(2);
    expect(value(after, 'knit_ipam_addresses_quarantined', { pool: SUBNET })).toBe(0);
    expect(value(before, 'knit_ipam_addresses_in_use', { pool: SUBNET })).toBeUndefined();
  });

  test('the resolver\'s counters: one query', () => {
    expect(delta('knit_dns_queries_total')).toBe(1);
  });

  test('knit listens on 127.0.0.1:PORT and on its resolver\'s address, nothing else', async () => {
    expect(await listeners(knit!.pid)).toEqual({ metrics: ['tcp'], resolver: ['tcp', 'udp'], other: [] });
  });

  test('knit status names the address', async () => {
    const doc = JSON.parse((await run(['node', join(repoRoot, 'dist/main.js'), 'status', '--json', '--socket', socket])).stdout);
    expect(doc.metrics).toEqual({ address: `127.0.0.1:${PORT}`, listening: true });
    const text = (await run(['node', join(repoRoot, 'dist/main.js'), 'status', '--socket', socket])).stdout;
    expect(text).toContain(`Metrics:   http://127.0.0.1:${PORT}/metrics\n`);
  });
});

describe('KNIT_METRICS=unix:///PATH', () => {
  let path = '';

  beforeAll(async () => {
    await stop();
    path = join(dir, 'run', 'metrics.sock');
    knit = await start({ KNIT_METRICS: `unix://${path}` });
  });

  test('the socket is root-only; a second endpoint moves CreateEndpoint and Join by one each', async () => {
    const st = await stat(path);
    expect({ mode: st.mode & 0o777, uid: st.uid, socket: st.isSocket() }).toEqual({ mode: 0o600, uid: 0, socket: true });
    const before = await scrape({ socketPath: path });
    expect(before.status).toBe(200);
    await endpoint(eids[1]);
    const after = (await scrape({ socketPath: path })).text;
    for (const call of ['/NetworkDriver.CreateEndpoint', '/NetworkDriver.Join']) {
      expect((value(after, 'knit_plugin_calls_total', { path: call, outcome: 'ok' }) ?? 0) - (value(before.text, 'knit_plugin_calls_total', { path: call, outcome: 'ok' }) ?? 0)).toBe(1);
    }
    expect(value(after, 'knit_ipam_addresses_in_use', { pool: SUBNET })).toBe(3);
    expect(await scrape({ socketPath: path }, 'PUT')).toMatchObject({ status: 405 });
  });

  test('no TCP or UDP listener but the resolver\'s (the probe sees the resolver: positive control)', async () => {
    expect(await listeners(knit!.pid)).toEqual({ metrics: [], resolver: ['tcp', 'udp'], other: [] });
  });

  test('knit status names the socket; a clean stop removes it', async () => {
    const doc = JSON.parse((await run(['node', join(repoRoot, 'dist/main.js'), 'status', '--json', '--socket', socket])).stdout);
    expect(doc.metrics).toEqual({ address: `unix://${path}`, listening: true });
    await stop();
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('without KNIT_METRICS', () => {
  beforeAll(async () => {
    await stop();
    knit = await start({});
  });

  afterAll(async () => {
    // Leave the namespace as the test found it (other kernel files share it).
    for (const eid of eids) {
      await post(socket, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid });
      await post(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid });
    }
    for (const a of [...addrs, '10.93.0.1']) await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: a.split('/')[0] });
    await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid });
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: poolId });
  });

  test('nothing listens but the resolver (positive control: its two sockets are seen), and nothing answers on the port', async () => {
    expect(await listeners(knit!.pid)).toEqual({ metrics: [], resolver: ['tcp', 'udp'], other: [] });
    await expect(scrape({ port: PORT })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // Control: knit itself answers.
    expect((await post(socket, '/Plugin.Activate')).status).toBe(200);
  });

  test('knit status has no metrics part', async () => {
    const doc = JSON.parse((await run(['node', join(repoRoot, 'dist/main.js'), 'status', '--json', '--socket', socket])).stdout);
    expect(doc.metrics).toBeUndefined();
    expect(doc.networks).toHaveLength(1);
  });
});
