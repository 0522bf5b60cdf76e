// The Consul backend against the Consul test server: the shared contract, plus leases and outages.
import { KnitError } from '../../src/errors.js';
import { openConsulStore } from '../../src/store/consul.js';
import { put, type Store, type WatchEvent } from '../../src/store/types.js';
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
    await new Promise((resolve) => setTimeout(resolve, 4_500 - (Date.now() - cut)));
    await srv.resume();
    expect(await store.get('hosts/b')).toBeUndefined();
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
