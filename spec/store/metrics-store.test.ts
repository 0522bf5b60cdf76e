// The store decorator that counts store calls: it keeps the store contract (whatever it wraps), and each call
// moves exactly its own counter.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KnitMetrics } from '../../src/metrics/registry.js';
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
