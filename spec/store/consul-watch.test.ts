// knit's Consul watch on an empty prefix: Consul answers such a blocking query early on any write anywhere (an empty
// 404 with the cluster-wide index, docs/store.md), and the watch must take each of those as "still empty".
import { openConsulStore } from '../../src/store/consul.js';
import { Mirror } from '../../src/names/mirror.js';
import { put, remove, type Store, type WatchEvent } from '../../src/store/types.js';
import { startConsulServer, type ConsulTestServer } from '../support/consul-server.js';
import { until } from './contract.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const brief = (events: WatchEvent[]): string[] => events.map((e) => `${e.type} ${e.key}`);
const WRITES = 30;

describe('consul watch on an empty prefix', () => {
  let srv: ConsulTestServer;
  let store: Store;
  beforeEach(async () => {
    // Tombstones reaped after 500 ms: an emptied prefix then reports the cluster-wide index too.
    srv = await startConsulServer({ tombstoneTtlMs: 500 });
    store = await openConsulStore({ host: srv.host, port: srv.port });
  });
  afterEach(async () => {
    await store.close();
    await srv.close();
  });

  /** Writes outside the watched prefix, paced so that each one can wake the watch on its own. */
  async function writeElsewhere(tag: string): Promise<void> {
    for (let i = 0; i < WRITES; i++) {
      await put(store, `elsewhere/${tag}${i}`, String(i));
      await sleep(20);
    }
  }

  test('writes elsewhere report nothing; each early answer is followed by one read that blocks at the new index', async () => {
    const events: WatchEvent[] = [];
    const watch = store.watch('quiet/', (e) => events.push(e));
    await sleep(300);
    const before = await srv.kvReads();
    await writeElsewhere('a');
    await sleep(300);
    const after = await srv.kvReads();
    await sleep(1_500);
    const idle = await srv.kvReads();
    // Positive control: the same watch does report a write under its prefix.
    await put(store, 'quiet/k', 'v');
    await until('the put under the watched prefix', () => events.length > 0);
    watch.close();
    // Woken by the writes (the double does what Consul does), but at most once per write, not a loop...
    expect(after - before).toBeGreaterThanOrEqual(WRITES / 2);
    expect(after - before).toBeLessThanOrEqual(WRITES + 2);
    // ...and blocked again once the writes stop: an index that did not move on would return at once, again and again.
    expect(idle - after).toBeLessThanOrEqual(1);
    expect(brief(events)).toEqual(['put quiet/k']);
  });

  test('a prefix emptied by a delete stays silent through writes elsewhere, before and after its tombstone is reaped', async () => {
    const events: WatchEvent[] = [];
    const watch = store.watch('gone/', (e) => events.push(e));
    await sleep(300);
    await put(store, 'gone/k', 'v');
    await remove(store, 'gone/k');
    await until('the put and the delete', () => events.length === 2);
    await writeElsewhere('b');
    await sleep(700);
    await writeElsewhere('c');
    await sleep(300);
    const settled = await srv.kvReads();
    await sleep(1_500);
    const idle = await srv.kvReads();
    await put(store, 'gone/k', 'again');
    await until('the put after the writes elsewhere', () => events.length > 2);
    watch.close();
    expect(idle - settled).toBeLessThanOrEqual(1);
    expect(brief(events)).toEqual(['put gone/k', 'delete gone/k', 'put gone/k']);
  });

  test('a names mirror on an empty prefix marks it, and writes elsewhere then wake it no more; the marker is no entry', async () => {
    const seen: string[] = [];
    const mirror = new Mirror(store, 'names/', (k) => seen.push(k));
    await mirror.start();
    await sleep(300);
    const before = await srv.kvReads();
    await writeElsewhere('d');
    await sleep(300);
    const after = await srv.kvReads();
    // Positive control: a record under the prefix still arrives.
    await put(store, 'names/n/h/e1', '{"v":1}');
    await until('the name record in the mirror', () => mirror.entries.has('names/n/h/e1'));
    mirror.close();
    expect(await store.get('names/')).toBeDefined();
    expect(after - before).toBeLessThanOrEqual(1);
    expect([...mirror.entries.keys()]).toEqual(['names/n/h/e1']);
    expect(seen).toEqual(['names/n/h/e1']);
  });
});

describe('consul watch with settleMs', () => {
  let srv: ConsulTestServer;
  let store: Store;
  beforeEach(async () => {
    srv = await startConsulServer();
    store = await openConsulStore({ host: srv.host, port: srv.port });
  });
  afterEach(async () => {
    await store.close();
    await srv.close();
  });

  /** 20 writes under the prefix, 50 ms apart; the reads the watch made meanwhile, and when each event came. */
  async function burst(settleMs: number | undefined): Promise<{ reads: number; events: Array<{ key: string; ms: number }>; firstWriteMs: number }> {
    const events: Array<{ key: string; ms: number }> = [];
    const start = Date.now();
    await put(store, `burst${settleMs}/marker`, '{"v":1}');
    const watch = store.watch(`burst${settleMs}/`, (e) => events.push({ key: e.key, ms: Date.now() - start }), undefined, { settleMs });
    await sleep(300);
    const before = await srv.kvReads();
    const firstWriteMs = Date.now() - start;
    for (let i = 0; i < 20; i++) {
      await put(store, `burst${settleMs}/k${String(i).padStart(2, '0')}`, String(i));
      await sleep(50);
    }
    await until('every write of the burst reported', () => events.length === 20, 10_000);
    const reads = (await srv.kvReads()) - before;
    watch.close();
    return { reads, events, firstWriteMs };
  }

  test('changes within the settle time are read together; the first after a quiet spell at once; nothing is lost', async () => {
    const paced = await burst(700);
    // Control: without it, the same burst wakes the watch about once per write.
    const eager = await burst(undefined);
    expect(eager.reads).toBeGreaterThanOrEqual(15);
    // About 1 s of writes read at most every 700 ms: the first at once, then two or three reads more.
    expect(paced.reads).toBeLessThanOrEqual(5);
    expect(paced.events.map((e) => e.key)).toEqual(eager.events.map((e) => e.key.replace('burstundefined', 'burst700')));
    // The first write was reported as it happened (the query was waiting), the next ones a settle time later.
    expect(paced.events[0].ms - paced.firstWriteMs).toBeLessThan(400);
    expect(paced.events[1].ms - paced.events[0].ms).toBeGreaterThanOrEqual(500);
  });
});
