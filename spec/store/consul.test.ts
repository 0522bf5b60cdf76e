// The Consul backend against the Consul test server: the shared contract, plus leases and outages.
import { KnitError } from '../../src/errors.js';
import { openConsulStore } from '../../src/store/consul.js';
import type { Fact } from '../../src/store/consul-journal.js';
import { merge, type Reported } from '../../src/store/consul-merge.js';
import { planCommit, rejected } from '../../src/store/consul-txn.js';
import { put, type Lease, type Store, type WatchEvent } from '../../src/store/types.js';
import { startConsulServer, type ConsulTestServer } from '../support/consul-server.js';
import { storeContract, until } from './contract.js';

let contractServer: ConsulTestServer;
storeContract(
  'consul',
  async () => {
    contractServer = await startConsulServer({ token: 'contract-token' });
    return openConsulStore({ host: contractServer.host, port: contractServer.port, token: 'contract-token' });
  },
  async () => contractServer.close(),
);

const OUTAGE_TEST_MS = 30_000;

/** Runs `op`, expecting it to fail; returns the error and how long failing took. */
async function failure(op: () => Promise<unknown>): Promise<{ err: KnitError; ms: number }> {
  const started = Date.now();
  const err = await op().then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  if (!(err instanceof KnitError)) throw err;
  return { err, ms: Date.now() - started };
}

describe('consul store', () => {
  let srv: ConsulTestServer;
  let store: Store;
  beforeEach(async () => {
    // A 1 s TTL floor (Consul's session_ttl_min is configurable) keeps lease expiry tests short.
    srv = await startConsulServer({ sessionTtlMinSeconds: 1 });
    store = await openConsulStore({ host: srv.host, port: srv.port });
  });
  afterEach(async () => {
    await store.close();
    await srv.close();
  });

  test('a session Consul drops takes its keys with it, and the lease reports the loss', async () => {
    const lease = await store.grantLease(3);
    let lost = 0;
    lease.onLost(() => lost++);
    await store.commit([{ key: 'hosts/a', value: 'up', lease }]);
    await srv.expireSession(lease.id);
    expect(await store.get('hosts/a')).toBeUndefined();
    await until('onLost after the next renewal is refused', () => lost === 1, 5_000);
    const err = await failure(() => store.commit([{ key: 'hosts/a', value: 'again', lease }]));
    expect(err.err.kind).toBe('unavailable');
    expect(err.err.message).toMatch(/lease expired or was revoked/);
  });

  test('cut off from Consul, a lease is lost within its TTL; Consul then expires it and deletes its keys', async () => {
    const lease = await store.grantLease(2);
    let lostAt = 0;
    lease.onLost(() => (lostAt = Date.now()));
    await store.commit([{ key: 'hosts/b', value: 'up', lease }]);
    const cut = Date.now();
    await srv.pause();
    await until('onLost', () => lostAt > 0, 5_000);
    expect(lostAt - cut).toBeLessThan(2_500);
    // Consul itself waits up to 2 x TTL after the last renewal it received.
    await new Promise((resolve) => setTimeout(resolve, 4_000 - (Date.now() - cut)));
    await srv.resume();
    let gone = false;
    for (let i = 0; i < 25 && !gone; i++) {
      gone = (await store.get('hosts/b')) === undefined;
      if (!gone) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(gone).toBe(true);
  }, OUTAGE_TEST_MS);

  test('a write without a lease detaches the key from the lease it had', async () => {
    const lease = await store.grantLease(30);
    await store.commit([{ key: 'k', value: 'leased', lease }]);
    await put(store, 'k', 'plain');
    await lease.revoke();
    expect((await store.get('k'))?.value).toBe('plain');
  });

  test('with Consul stopped, every operation fails within 5 s as unavailable, naming the store', async () => {
    await srv.stop();
    const results = await Promise.all([
      failure(() => store.get('x')),
      failure(() => store.list('')),
      failure(() => store.commit([{ key: 'x', value: '1' }])),
      failure(() => store.grantLease(10)),
      failure(() => openConsulStore({ host: srv.host, port: srv.port })),
    ]);
    for (const { err, ms } of results) {
      expect(err.kind).toBe('unavailable');
      expect(err.message).toContain(`the consul store at ${srv.address} is unreachable`);
      expect(ms).toBeLessThan(5_000);
    }
  }, OUTAGE_TEST_MS);

  test('with Consul hung (accepting, never answering), an operation fails within 5 s as unavailable', async () => {
    await srv.pause();
    const { err, ms } = await failure(() => store.get('x'));
    await srv.resume();
    expect(err.kind).toBe('unavailable');
    expect(ms).toBeLessThan(5_000);
  }, OUTAGE_TEST_MS);

  test('after Consul restarts, the same store works and a watch resumes where it was', async () => {
    const start = (await put(store, 'w/before', '1'))!;
    const events: WatchEvent[] = [];
    const watch = store.watch('w/', (e) => events.push(e), start);
    await put(store, 'w/a', '1');
    await until('the first event', () => events.length === 1);
    await srv.stop();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await srv.start();
    await put(store, 'w/b', '2');
    await until('the event after the restart', () => events.length === 2, 10_000);
    watch.close();
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(['put w/a', 'put w/b']);
  }, OUTAGE_TEST_MS);

  test('a Consul that comes back empty (a new cluster) is reported as deletes, and the watch carries on', async () => {
    await put(store, 'n/a', '1');
    const events: WatchEvent[] = [];
    const watch = store.watch('n/', (e) => events.push(e));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await srv.stop();
    await srv.start({ wipe: true });
    await until('the delete', () => events.length === 1, 10_000);
    await put(store, 'n/b', '2');
    await until('the next put', () => events.length === 2, 10_000);
    watch.close();
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(['delete n/a', 'put n/b']);
  }, OUTAGE_TEST_MS);

  test('a commit needing more than 64 Consul operations is refused before it is sent', async () => {
    const writes = Array.from({ length: 33 }, (_, i) => ({ key: `many/${i}`, value: 'v' }));
    await expect(store.commit(writes)).rejects.toThrow(/at most 64 operations.*needs 66/);
    expect(await store.list('many/')).toEqual([]);
    expect(await store.commit(writes.slice(0, 32))).toEqual(expect.any(Number));
  });
});

describe('consul store with an ACL token', () => {
  let srv: ConsulTestServer;
  beforeAll(async () => {
    srv = await startConsulServer({ token: 'right' });
  });
  afterAll(async () => srv.close());

  test('a wrong token is reported as such', async () => {
    const store = await openConsulStore({ host: srv.host, port: srv.port, token: 'wrong' });
    const { err } = await failure(() => store.get('x'));
    await store.close();
    expect(err.message).toMatch(/permission denied; check KNIT_CONSUL_TOKEN/);
  });
});

describe('consul commit plan', () => {
  const lease = { id: 'S' } as Lease;
  const verbs = (...writes: Parameters<typeof planCommit>[0]['writes']): string[] =>
    planCommit({ root: 'r/', writes, checks: [] }).ops.map((o) => [o.KV.Verb, o.KV.Index, o.KV.Session].filter((x) => x !== undefined).join(' '));

  test('each kind of write becomes the Consul verbs that give the interface its meaning', () => {
    expect(verbs({ key: 'k', value: 'v', expect: 0 })).toEqual(['cas 0']);
    expect(verbs({ key: 'k', value: 'v' })).toEqual(['delete', 'set']);
    expect(verbs({ key: 'k', value: 'v', expect: 7 })).toEqual(['check-index 7', 'delete', 'set']);
    expect(verbs({ key: 'k', value: 'v', expect: 0, lease })).toEqual(['check-not-exists', 'lock S']);
    expect(verbs({ key: 'k', value: 'v', lease })).toEqual(['delete', 'lock S']);
    expect(verbs({ key: 'k', value: null })).toEqual(['delete']);
    expect(verbs({ key: 'k', value: null, expect: 0 })).toEqual(['check-not-exists']);
    expect(verbs({ key: 'k', value: null, expect: 7 })).toEqual(['check-index 7', 'delete']);
    const plan = planCommit({ root: 'r/', writes: [{ key: 'k', value: 'ü' }], checks: [{ key: 'c', expect: 0 }] });
    expect(plan.ops.map((o) => o.KV.Key)).toEqual(['r/k', 'r/k', 'r/c']);
    expect(plan.ops[1].KV.Value).toBe(Buffer.from('ü').toString('base64'));
    expect(plan.guards).toEqual([false, false, true]);
  });

  test('a 409 is null when only guards failed, and an error otherwise', () => {
    const plan = planCommit({ root: '', writes: [{ key: 'k', value: 'v', expect: 3, lease }], checks: [] });
    const answer = (...failed: number[]) => ({ Results: null, Errors: failed.map((OpIndex) => ({ OpIndex, What: `op ${OpIndex} failed` })) });
    expect(rejected({ plan, response: answer(0), where: 'here' })).toBeNull();
    expect(() => rejected({ plan, response: answer(0, 2), where: 'here' })).toThrow(/lease expired or was revoked \(op 2 failed\)/);
    expect(() => rejected({ plan, response: answer(1), where: 'here' })).toThrow('here refused the commit: op 1 failed');
  });
});

describe('consul watch merge', () => {
  const state = (entries: Record<string, number>) => new Map(Object.entries(entries).map(([key, revision]) => [key, { value: `v${revision}`, revision }]));
  const brief = (events: WatchEvent[]): string[] => events.map((e) => `${e.type} ${e.key}@${e.revision}`);
  const facts = (entries: Record<string, [number, string | null][]>): Map<string, Fact[]> =>
    new Map(Object.entries(entries).map(([key, list]) => [key, list.map(([revision, value]) => ({ revision, value }))]));

  test("this process's put and delete inside one answer are both reported, in order", () => {
    const reported = new Map<string, Reported>();
    const events = merge({ answer: { index: 9, state: state({ b: 8 }) }, since: 5, first: true, reported, facts: facts({ a: [[6, 'x'], [9, null]], b: [[8, 'v8']] }) });
    expect(brief(events)).toEqual(['put a@6', 'put b@8', 'delete a@9']);
  });

  test('a fact learned after the answer already showed it is not reported twice', () => {
    const reported = new Map<string, Reported>();
    expect(brief(merge({ answer: { index: 6, state: state({ a: 6 }) }, since: 5, first: true, reported, facts: new Map() }))).toEqual(['put a@6']);
    expect(brief(merge({ answer: { index: 7, state: state({ a: 6 }) }, since: 6, first: false, reported, facts: facts({ a: [[6, 'v6']] }) }))).toEqual([]);
  });

  test('a key known before the watch started and gone by its first answer is reported deleted, once', () => {
    const reported = new Map<string, Reported>();
    const known = facts({ a: [[3, 'old']] });
    expect(brief(merge({ answer: { index: 8, state: state({}) }, since: 5, first: true, reported, facts: known }))).toEqual(['delete a@8']);
    expect(brief(merge({ answer: { index: 9, state: state({}) }, since: 8, first: false, reported, facts: facts({ a: [[3, 'old'], [9, null]] }) }))).toEqual([]);
  });
});
