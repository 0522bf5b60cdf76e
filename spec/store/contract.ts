// The store contract: every backend (local LMDB, etcd, Consul) must pass these same tests.
//
// Tests use only the Store interface and keys under a random prefix, so they can share a real
// server. Watches start from a known revision where order matters, so a backend whose watch is
// set up asynchronously is not penalised for a race the interface does not promise to win.
// Prefixes are plain string prefixes: list('a/b') includes 'a/bc'; callers end a directory
// prefix with '/'.
import { randomUUID } from 'node:crypto';
import { put, remove, type Store, type WatchEvent } from '../../src/store/types.js';

const WAIT_MS = 10_000;
const SLOW_TEST_MS = 60_000;

/** Polls `probe` until it returns true, failing with `what` after a bounded wait. */
export async function until(what: string, probe: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A collecting watch: the events it has received so far, and how to stop it. */
function record(store: Store, prefix: string, after?: number): { events: WatchEvent[]; close(): void } {
  const events: WatchEvent[] = [];
  const watch = store.watch(prefix, (e) => events.push(e), after);
  return { events, close: () => watch.close() };
}

const brief = (e: WatchEvent): string => `${e.type} ${e.key}${e.type === 'put' ? `=${e.value}` : ''}`;

async function increment(store: Store, key: string): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const entry = await store.get(key);
    const next = String(Number(entry?.value ?? '0') + 1);
    if ((await put(store, key, next, entry?.revision ?? 0)) !== null) return;
  }
  throw new Error(`incrementing ${key} lost 1000 compare-and-set races in a row`);
}

export function storeContract(name: string, open: () => Promise<Store>, cleanup?: () => Promise<void>): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let ns: string;
    const rev = async (key: string): Promise<number> => (await store.get(key))?.revision ?? 0;

    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });
    beforeEach(() => {
      ns = `knit-contract/${randomUUID()}/`;
    });

    test('names its kind', () => {
      expect(typeof store.kind).toBe('string');
      expect(store.kind.length).toBeGreaterThan(0);
    });

    test('get of an absent key is undefined', async () => {
      expect(await store.get(`${ns}absent`)).toBeUndefined();
    });

    test('put then get returns the value and the revision of the commit', async () => {
      for (const value of ['plain', '', '{"json":[1,2]}', 'ünïcødé ✓ 🚀', 'line\nbreak']) {
        const revision = await put(store, `${ns}k`, value);
        expect(await store.get(`${ns}k`)).toEqual({ key: `${ns}k`, value, revision });
      }
    });

    test('revisions increase with every commit and mark only the keys written', async () => {
      const r1 = (await put(store, `${ns}a`, '1'))!;
      const r2 = (await put(store, `${ns}b`, '2'))!;
      const r3 = (await put(store, `${ns}a`, '3'))!;
      expect(r1).toBeGreaterThan(0);
      expect(r2).toBeGreaterThan(r1);
      expect(r3).toBeGreaterThan(r2);
      expect(await rev(`${ns}a`)).toBe(r3);
      expect(await rev(`${ns}b`)).toBe(r2);
    });

    test('expect 0 creates only if absent', async () => {
      expect(await put(store, `${ns}k`, 'first', 0)).not.toBeNull();
      expect(await put(store, `${ns}k`, 'second', 0)).toBeNull();
      expect((await store.get(`${ns}k`))?.value).toBe('first');
    });

    test('a stale expected revision fails and writes nothing; the current one succeeds', async () => {
      const r1 = (await put(store, `${ns}k`, 'v1'))!;
      const r2 = (await put(store, `${ns}k`, 'v2'))!;
      expect(await put(store, `${ns}k`, 'v3', r1)).toBeNull();
      expect(await store.get(`${ns}k`)).toEqual({ key: `${ns}k`, value: 'v2', revision: r2 });
      const r4 = await put(store, `${ns}k`, 'v4', r2);
      expect(await store.get(`${ns}k`)).toEqual({ key: `${ns}k`, value: 'v4', revision: r4 });
    });

    test('a multi-key commit is all or nothing', async () => {
      await put(store, `${ns}taken`, 'x');
      const failed = await store.commit([
        { key: `${ns}new`, value: 'n', expect: 0 },
        { key: `${ns}other`, value: 'o' },
        { key: `${ns}taken`, value: 'y', expect: 0 },
      ]);
      expect(failed).toBeNull();
      expect(await store.list(ns)).toEqual([expect.objectContaining({ key: `${ns}taken`, value: 'x' })]);
      const ok = await store.commit([
        { key: `${ns}new`, value: 'n', expect: 0 },
        { key: `${ns}taken`, value: null, expect: await rev(`${ns}taken`) },
        { key: `${ns}other`, value: 'o' },
      ]);
      expect(await store.list(ns)).toEqual([
        { key: `${ns}new`, value: 'n', revision: ok },
        { key: `${ns}other`, value: 'o', revision: ok },
      ]);
    });

    test('checks guard a commit without writing', async () => {
      const guard = (await put(store, `${ns}guard`, 'g'))!;
      expect(await store.commit([{ key: `${ns}k`, value: 'v' }], [{ key: `${ns}guard`, expect: 0 }])).toBeNull();
      expect(await store.commit([{ key: `${ns}k`, value: 'v' }], [{ key: `${ns}absent`, expect: guard }])).toBeNull();
      expect(await store.get(`${ns}k`)).toBeUndefined();
      const ok = await store.commit([{ key: `${ns}k`, value: 'v' }], [
        { key: `${ns}guard`, expect: guard },
        { key: `${ns}absent`, expect: 0 },
      ]);
      expect(ok).toBeGreaterThan(guard);
      expect(await store.get(`${ns}guard`)).toEqual({ key: `${ns}guard`, value: 'g', revision: guard });
      expect(await store.commit([], [{ key: `${ns}guard`, expect: guard }])).toEqual(expect.any(Number));
      expect(await store.commit([], [{ key: `${ns}guard`, expect: guard + 1000 }])).toBeNull();
    });

    test('delete removes a key; deleting an absent key succeeds; a guarded delete obeys its guard', async () => {
      const r = (await put(store, `${ns}k`, 'v'))!;
      expect(await remove(store, `${ns}k`, r + 1000)).toBe(false);
      expect((await store.get(`${ns}k`))?.value).toBe('v');
      expect(await remove(store, `${ns}k`, r)).toBe(true);
      expect(await store.get(`${ns}k`)).toBeUndefined();
      expect(await remove(store, `${ns}k`)).toBe(true);
      expect(await remove(store, `${ns}k`, 0)).toBe(true);
      expect(await put(store, `${ns}k`, 'again', 0)).not.toBeNull();
    });

    test('list matches a plain string prefix, in key order', async () => {
      for (const k of ['b/x', 'bc', 'a', 'b', 'b/', 'c', 'B', 'b/a/z', 'b0']) await put(store, `${ns}${k}`, k);
      const keys = async (p: string): Promise<string[]> => (await store.list(`${ns}${p}`)).map((e) => e.key.slice(ns.length));
      expect(await keys('')).toEqual(['B', 'a', 'b', 'b/', 'b/a/z', 'b/x', 'b0', 'bc', 'c']);
      expect(await keys('b')).toEqual(['b', 'b/', 'b/a/z', 'b/x', 'b0', 'bc']);
      expect(await keys('b/')).toEqual(['b/', 'b/a/z', 'b/x']);
      expect(await keys('d')).toEqual([]);
      const entries = await store.list(`${ns}b/`);
      for (const e of entries) expect(e).toEqual({ key: e.key, value: e.key.slice(ns.length), revision: await rev(e.key) });
    });

    test('watch reports puts and deletes below its prefix, in revision order', async () => {
      const start = (await put(store, `${ns}start`, 's'))!;
      const w = record(store, `${ns}w/`, start);
      const r1 = await put(store, `${ns}w/a`, '1');
      await put(store, `${ns}wx`, 'sibling');
      const r2 = await store.commit([{ key: `${ns}w/b`, value: '2' }, { key: `${ns}elsewhere`, value: '-' }]);
      const r3 = await store.commit([{ key: `${ns}w/a`, value: null }, { key: `${ns}w/c`, value: '3' }]);
      await until('4 watch events', () => w.events.length >= 4);
      w.close();
      expect(w.events.map(brief)).toEqual([`put ${ns}w/a=1`, `put ${ns}w/b=2`, `delete ${ns}w/a`, `put ${ns}w/c=3`]);
      expect(w.events.map((e) => e.revision)).toEqual([r1, r2, r3, r3]);
    }, SLOW_TEST_MS);

    test('watch without a start revision reports changes made after it', async () => {
      await put(store, `${ns}before`, 'old');
      const w = record(store, ns);
      for (let i = 0; w.events.length === 0; i++) {
        if (i === 100) throw new Error('a new watch saw none of 100 puts made over 10 s');
        await put(store, `${ns}tick`, String(i));
        await until('a tick event', () => w.events.length > 0, 100).catch(() => undefined);
      }
      w.close();
      expect(w.events.every((e) => e.key === `${ns}tick`)).toBe(true);
    }, SLOW_TEST_MS);

    test('watch after a revision replays the later changes, then continues live', async () => {
      const r1 = (await put(store, `${ns}a`, '1'))!;
      await put(store, `${ns}b`, '2');
      await remove(store, `${ns}a`);
      const w = record(store, ns, r1);
      await until('2 replayed events', () => w.events.length >= 2);
      await put(store, `${ns}c`, '3');
      await until('the live event', () => w.events.length >= 3);
      w.close();
      expect(w.events.map(brief)).toEqual([`put ${ns}b=2`, `delete ${ns}a`, `put ${ns}c=3`]);
    }, SLOW_TEST_MS);

    test('a closed watch receives nothing more', async () => {
      const start = (await put(store, `${ns}start`, 's'))!;
      const closing = record(store, `${ns}k`, start);
      const staying = record(store, `${ns}k`, start);
      await put(store, `${ns}k1`, 'x');
      await until('the first event on both watches', () => closing.events.length === 1 && staying.events.length === 1);
      closing.close();
      await put(store, `${ns}k2`, 'y');
      await until('the second event on the open watch', () => staying.events.length === 2);
      staying.close();
      expect(closing.events.map(brief)).toEqual([`put ${ns}k1=x`]);
    }, SLOW_TEST_MS);

    test('revoking a lease deletes the keys attached to it', async () => {
      const lease = await store.grantLease(30);
      expect(lease.id).toEqual(expect.any(String));
      expect(lease.ttlSeconds).toBe(30);
      const start = (await put(store, `${ns}plain`, 'stays'))!;
      await store.commit([{ key: `${ns}leased/a`, value: 'a', lease }, { key: `${ns}leased/b`, value: 'b', lease }]);
      expect((await store.list(`${ns}leased/`)).length).toBe(2);
      const w = record(store, ns, start);
      await lease.revoke();
      expect(await store.list(`${ns}leased/`)).toEqual([]);
      expect((await store.get(`${ns}plain`))?.value).toBe('stays');
      await until('the revoke deletes', () => w.events.filter((e) => e.type === 'delete').length === 2);
      w.close();
    }, SLOW_TEST_MS);

    test('of 50 concurrent create-if-absent commits on one key, exactly one wins', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => put(store, `${ns}k`, `c${i}`, 0)));
      const winners = results.flatMap((r, i) => (r === null ? [] : [i]));
      expect(winners).toHaveLength(1);
      expect(await store.get(`${ns}k`)).toEqual({ key: `${ns}k`, value: `c${winners[0]}`, revision: results[winners[0]] });
    }, SLOW_TEST_MS);

    test('200 concurrent compare-and-set increments all count', async () => {
      await Promise.all(Array.from({ length: 200 }, () => increment(store, `${ns}counter`)));
      expect((await store.get(`${ns}counter`))?.value).toBe('200');
    }, SLOW_TEST_MS);
  });
}
