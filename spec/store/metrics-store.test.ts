// The store decorator that counts store calls: it keeps the store contract (whatever it wraps), and each call
// moves exactly its own counter. And the overlay's views metrics read: the lease's state, peers per segment.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Op } from '../../src/datapath/ops.js';
import { createLogger } from '../../src/log.js';
import { KnitMetrics } from '../../src/metrics/registry.js';
import type { Datapath } from '../../src/network/datapath.js';
import { K } from '../../src/network/overlay/keys.js';
import { HostLease } from '../../src/network/overlay/lease.js';
import { Peers } from '../../src/network/overlay/peers.js';
import { endpointValue } from '../../src/network/overlay/publication.js';
import { observedStore } from '../../src/metrics/store.js';
import { openLocalStore } from '../../src/store/local.js';
import type { Store, WatchEvent } from '../../src/store/types.js';
import { value } from '../support/prom-text.js';
import { storeContract, until } from './contract.js';

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-metrics-store-'));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

const contractMetrics = new KnitMetrics();
storeContract('local, observed for metrics', async () => observedStore(await openLocalStore(await tempDir()), contractMetrics));

describe('observedStore', () => {
  let store: Store;
  let metrics: KnitMetrics;
  const count = async (op: string, outcome: string) => value(await metrics.registry.metrics(), 'knit_store_calls_total', { store: 'local', op, outcome }) ?? 0;

  beforeAll(async () => {
    metrics = new KnitMetrics();
    store = observedStore(await openLocalStore(await tempDir()), metrics);
  });
  afterAll(async () => store.close());

  test('get, list and commit are counted by outcome: a guard that does not hold is a conflict, a refused write an error', async () => {
    const events: WatchEvent[] = [];
    const watch = store.watch('m/', (e) => events.push(e));
    expect(await store.commit([{ key: 'm/a', value: '1', expect: 0 }])).not.toBeNull();
    expect(await store.commit([{ key: 'm/a', value: '2', expect: 0 }])).toBeNull();
    await expect(store.commit([{ key: 'm/b', value: '1', expect: -1 }])).rejects.toThrow(/expected revision/);
    expect((await store.get('m/a'))?.value).toBe('1');
    expect(await store.list('m/')).toHaveLength(1);
    await until('the watch event', () => events.length === 1);
    watch.close();
    expect(await count('commit', 'ok')).toBe(1);
    expect(await count('commit', 'conflict')).toBe(1);
    expect(await count('commit', 'error')).toBe(1);
    expect(await count('get', 'ok')).toBe(1);
    expect(await count('list', 'ok')).toBe(1);
    const text = await metrics.registry.metrics();
    expect(value(text, 'knit_store_call_duration_seconds_count', { store: 'local', op: 'commit' })).toBe(3);
    expect(value(text, 'knit_store_watch_events_total', { store: 'local' })).toBe(1);
  });

  test('a lease passes through unchanged and its grant is counted', async () => {
    const lease = await store.grantLease(5);
    expect(lease.ttlSeconds).toBe(5);
    expect(await store.commit([{ key: 'm/leased', value: 'x', lease }])).not.toBeNull();
    await lease.revoke();
    expect(await store.get('m/leased')).toBeUndefined();
    expect(await count('grantLease', 'ok')).toBe(1);
  });
});

describe('what metrics read from the overlay: HostLease.stats() and Peers.stats()', () => {
  const log = createLogger('error');

  test('a lease held, its records, a loss and the re-grant after it', async () => {
    const inner = await openLocalStore(await tempDir());
    // The embedded store's leases never expire: this one can be made to, as a cluster store's does.
    const lose: Array<() => void> = [];
    const cluster: Store = {
      kind: inner.kind, watchRereadsPrefix: false, get: (k) => inner.get(k), list: (p) => inner.list(p), commit: (w, c) => inner.commit(w, c), watch: (p, f, a, o) => inner.watch(p, f, a, o), close: () => inner.close(),
      grantLease: async (ttl) => ({ ...(await inner.grantLease(ttl)), onLost: (cb: () => void) => void lose.push(cb) }),
    };
    const lease = new HostLease({ cluster, hostId: 'me', log, ttlSeconds: 10 });
    expect(lease.stats()).toEqual({ held: false, records: 0, grants: 0, losses: 0 });
    await lease.start();
    await lease.put('overlay/endpoints/10.50.0.0_24/me/e1', 'x');
    expect(lease.stats()).toEqual({ held: true, records: 1, grants: 1, losses: 0 });
    lose.shift()!();
    expect(lease.stats()).toEqual({ held: false, records: 1, grants: 1, losses: 1 });
    // knit connects again a second later, with its records.
    await until('the lease to be granted again', () => lease.stats().held, 5_000);
    expect(lease.stats()).toEqual({ held: true, records: 1, grants: 2, losses: 1 });
    expect((await inner.get('overlay/endpoints/10.50.0.0_24/me/e1'))?.value).toBe('x');
    await lease.stop();
    await inner.close();
  });

  test('per segment: peers, their endpoints, and the entries programmed (none known before the first programming)', async () => {
    const applied: Op[] = [];
    const kernel: Datapath = {
      apply: async (ops) => void applied.push(...ops), remove: async () => undefined, links: async () => [],
      vxlanEntries: async () => ({ fdb: new Set(), neigh: new Map() }), flushConntrack: async () => undefined, setSysctl: async () => undefined,
    };
    const peers = new Peers({ kernel, log });
    const remote = (sk: string, host: string, id: string, mac: string, ip: string) => ({ key: K.endpoint(sk, host, id), value: endpointValue(`198.18.0.${host.length}`, { mac, address: `${ip}/24` }), revision: 1 });
    peers.adopt('10.50.0.0_24', 'knv4096');
    expect(peers.stats()).toEqual([{ segment: '10.50.0.0_24', device: 'knv4096', hosts: 0, endpoints: 0 }]);
    await peers.reset([
      remote('10.50.0.0_24', 'b', 'e1', '02:00:00:00:00:01', '10.50.0.2'),
      remote('10.50.0.0_24', 'b', 'e2', '02:00:00:00:00:02', '10.50.0.3'),
      remote('10.50.0.0_24', 'cc', 'e3', '02:00:00:00:00:03', '10.50.0.4'),
      remote('10.60.0.0_24', 'b', 'e4', '02:00:00:00:00:04', '10.60.0.2'),
    ]);
    // Three MACs and one flood entry per peer host; three neighbours. The segment without a local device is not shown.
    expect(peers.stats()).toEqual([{ segment: '10.50.0.0_24', device: 'knv4096', hosts: 2, endpoints: 3, fdb: 5, neigh: 3 }]);
    expect(applied.filter((op) => op.op === 'fdb-add')).toHaveLength(5);
  });
});
