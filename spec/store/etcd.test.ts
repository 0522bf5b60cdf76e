// The etcd backend against a real etcd: what only a cluster store has (leases that expire, outages, recovery, compaction).
import { createServer, type Socket } from 'node:net';
import { jest } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { KnitError } from '../../src/errors.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import type { Store, WatchEvent } from '../../src/store/types.js';
import { startEtcd, startRelay, type EtcdServer } from '../support/etcd.js';
import { waitFor } from '../support/proc.js';
import { storeContract } from './contract.js';

jest.setTimeout(60_000);

let etcd: EtcdServer;
const opened: Store[] = [];
let roots = 0;

beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);

afterAll(async () => {
  try {
    await Promise.all(opened.map((s) => s.close()));
  } finally {
    await etcd?.dispose();
  }
}, 30_000);

const freshRoot = (): string => `/knit-test-${++roots}/`;

/** Each store gets its own root unless told to share one, so tests start from an empty keyspace; afterAll closes them all. */
async function open(opts: { endpoint?: string; root?: string } = {}): Promise<Store> {
  const store = await openEtcdStore({ endpoints: [opts.endpoint ?? etcd.endpoint], prefix: opts.root ?? freshRoot() });
  opened.push(store);
  return store;
}

storeContract('etcd', () => open());

function collect(store: Store, prefix: string, afterRevision?: number): WatchEvent[] {
  const events: WatchEvent[] = [];
  store.watch(prefix, (e) => events.push(e), afterRevision);
  return events;
}

const seen = (events: WatchEvent[], n: number, what: string): Promise<true> =>
  waitFor(what, async () => events.length >= n, { timeoutMs: 20_000, intervalMs: 50 });

/** The error `op` rejects with, and how long it took. */
async function failure(op: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await op();
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
  throw new Error('expected the operation to fail');
}

function expectUnreachable(err: unknown, endpoint: string): void {
  expect(err).toBeInstanceOf(KnitError);
  expect((err as KnitError).kind).toBe('unavailable');
  expect((err as KnitError).message).toContain(`etcd store at ${endpoint} is unreachable`);
}

describe('etcd: outages', () => {
  test('an endpoint that accepts connections but never answers fails within 5 s as unavailable', async () => {
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const endpoint = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const { err, ms } = await failure(() => openEtcdStore({ endpoints: [endpoint] }));
      expectUnreachable(err, endpoint);
      expect(ms).toBeLessThan(5_000);
    } finally {
      // gRPC keeps a half-open connection until its own connect timeout: end it here so jest can exit.
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  test('with etcd stopped, every operation fails within 5 s as unavailable, naming the endpoint', async () => {
    const store = await open();
    await etcd.stop();
    try {
      const ops: [string, () => Promise<unknown>][] = [
        ['get', () => store.get('k')],
        ['list', () => store.list('')],
        ['commit', () => store.commit([{ key: 'k', value: 'v' }])],
        ['grantLease', () => store.grantLease(5)],
        ['openEtcdStore', () => openEtcdStore({ endpoints: [etcd.endpoint] })],
      ];
      for (const [name, op] of ops) {
        const { err, ms } = await failure(op);
        expectUnreachable(err, etcd.endpoint);
        expect([name, ms < 5_000]).toEqual([name, true]);
      }
    } finally {
      await etcd.restart();
    }
  });

  test('after etcd crashes and restarts, the same store works again and an existing watch delivers new events', async () => {
    const store = await open();
    const events = collect(store, 'w/');
    await store.commit([{ key: 'w/before', value: '1' }]);
    await seen(events, 1, 'the event before the outage');
    await etcd.kill();
    await etcd.restart();
    const revision = await waitFor('a commit after the restart', () => store.commit([{ key: 'w/after', value: '2' }]).catch(() => null), {
      timeoutMs: 15_000,
    });
    await seen(events, 2, 'the event after the restart');
    expect(events[1]).toEqual({ type: 'put', key: 'w/after', value: '2', revision });
    expect(await store.get('w/after')).toMatchObject({ value: '2', revision });
  });
});

describe('etcd: leases', () => {
  test('keys of a lease no longer kept alive vanish once its TTL runs out', async () => {
    const root = freshRoot();
    const [holder, observer] = [await open({ root }), await open({ root })];
    const lease = await holder.grantLease(2);
    await holder.commit([{ key: 'hosts/a', value: 'a', lease }]);
    // List, then watch from there, as a host does when it starts following another's records.
    expect(await observer.list('hosts/')).toEqual([expect.objectContaining({ key: 'hosts/a' })]);
    const events = collect(observer, 'hosts/');
    const closedAt = Date.now();
    await holder.close(); // stops the keepalives without revoking
    await seen(events, 1, 'the leased key to expire');
    expect(events[0]).toMatchObject({ type: 'delete', key: 'hosts/a' });
    expect(Date.now() - closedAt).toBeGreaterThan(1_000);
    expect(await observer.get('hosts/a')).toBeUndefined();
  });

  test('onLost fires when etcd revokes the lease, and its keys go', async () => {
    const store = await open();
    const lease = await store.grantLease(3);
    let lost = 0;
    lease.onLost(() => lost++);
    await store.commit([{ key: 'hosts/a', value: 'a', lease }]);
    await etcd.ctl(['lease', 'revoke', BigInt(lease.id).toString(16)]);
    await waitFor('onLost', async () => lost > 0, { timeoutMs: 5_000, intervalMs: 50 });
    expect(await store.get('hosts/a')).toBeUndefined();
    await sleep(200);
    expect(lost).toBe(1);
  });

  test('onLost fires within a TTL when keepalives go unanswered, and etcd then drops the keys', async () => {
    const store = await open();
    const lease = await store.grantLease(2);
    let lostAt = 0;
    lease.onLost(() => (lostAt = Date.now()));
    await store.commit([{ key: 'hosts/a', value: 'a', lease }]);
    const pausedAt = Date.now();
    etcd.pause();
    try {
      await waitFor('onLost', async () => lostAt > 0, { timeoutMs: 5_000, intervalMs: 50 });
    } finally {
      etcd.resume();
    }
    // One TTL (2 s) after the last answered keepalive, plus timer slack; the client alone would wait 2 x TTL.
    expect(lostAt - pausedAt).toBeLessThanOrEqual(3_000);
    await waitFor('the lost lease key to go', async () => (await store.get('hosts/a').catch(() => 'retry')) === undefined, {
      timeoutMs: 15_000,
    });
  });

  test('revoke removes the keys at once and is no loss; a write with the revoked lease is refused', async () => {
    const store = await open();
    const lease = await store.grantLease(30);
    let lost = 0;
    lease.onLost(() => lost++);
    await store.commit([{ key: 'hosts/a', value: 'a', lease }]);
    await lease.revoke();
    expect(await store.get('hosts/a')).toBeUndefined();
    const { err } = await failure(() => store.commit([{ key: 'hosts/b', value: 'b', lease }]));
    expect(err).toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/lease expired or was revoked/) });
    expect(lost).toBe(0);
  });
});

describe('etcd: watch', () => {
  test('a watch from a past revision replays the history in revision order', async () => {
    const store = await open();
    const r1 = (await store.commit([{ key: 'n/a', value: '1' }]))!;
    await store.commit([{ key: 'n/b', value: '2' }, { key: 'n/a', value: null }]);
    await store.commit([{ key: 'other', value: 'x' }]);
    const events = collect(store, 'n/', r1 - 1);
    await seen(events, 3, 'the replayed history');
    await sleep(200);
    expect(events).toEqual([
      { type: 'put', key: 'n/a', value: '1', revision: r1 },
      { type: 'put', key: 'n/b', value: '2', revision: r1 + 1 },
      { type: 'delete', key: 'n/a', revision: r1 + 1 },
    ]);
  });

  test('a watch cut off while etcd compacted its history re-syncs: puts for what changed, deletes for what went', async () => {
    const relay = await startRelay(etcd.endpoint);
    let viaRelay: Store | undefined;
    try {
      const root = freshRoot();
      const direct = await open({ root });
      await direct.commit([{ key: 'eps/old', value: '0' }]);
      viaRelay = await open({ endpoint: relay.endpoint, root });
      const events = collect(viaRelay, 'eps/');
      for (const k of ['a', 'b', 'c']) await direct.commit([{ key: `eps/${k}`, value: '1' }]);
      await seen(events, 3, 'the first puts');
      relay.cut();
      await direct.commit([{ key: 'eps/a', value: null }]);
      await direct.commit([{ key: 'eps/old', value: null }]);
      const rb = (await direct.commit([{ key: 'eps/b', value: '2' }]))!;
      const rd = (await direct.commit([{ key: 'eps/d', value: '1' }]))!;
      await etcd.ctl(['compact', String(rd)]);
      relay.mend();
      await seen(events, 7, 'the re-sync');
      // eps/old predates the watch: only the state read when the watch began tells that it went.
      expect(events.slice(3)).toEqual([
        { type: 'put', key: 'eps/b', value: '2', revision: rb },
        { type: 'put', key: 'eps/d', value: '1', revision: rd },
        { type: 'delete', key: 'eps/a', revision: rd },
        { type: 'delete', key: 'eps/old', revision: rd },
      ]);
      const re = (await direct.commit([{ key: 'eps/e', value: '1' }]))!;
      await seen(events, 8, 'events after the re-sync');
      expect(events[7]).toEqual({ type: 'put', key: 'eps/e', value: '1', revision: re });
    } finally {
      // Closed before its relay goes, or its watch would keep reconnecting for the rest of the file.
      await viaRelay?.close();
      await relay.close();
    }
  });
});

describe('etcd: endpoints, TLS, lifecycle', () => {
  test('with one of two endpoints down, every operation goes to the other', async () => {
    const held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    const dead = `127.0.0.1:${(held.address() as { port: number }).port}`;
    await new Promise<void>((resolve) => held.close(() => resolve()));
    const store = await openEtcdStore({ endpoints: [dead, etcd.endpoint], prefix: freshRoot() });
    opened.push(store);
    for (let i = 0; i < 10; i++) {
      const revision = await store.commit([{ key: 'k', value: String(i) }]);
      expect(await store.get('k')).toEqual({ key: 'k', value: String(i), revision });
    }
  });

  test('speaks TLS with a client certificate, and refuses to go without', async () => {
    const secure = await startEtcd({ tls: true });
    try {
      const tls = secure.tls!;
      const store = await openEtcdStore({ endpoints: [secure.endpoint], tls });
      const revision = await store.commit([{ key: 'k', value: 'v' }]);
      expect(await store.get('k')).toEqual({ key: 'k', value: 'v', revision });
      await store.close();
      const { err } = await failure(() => openEtcdStore({ endpoints: [secure.endpoint], tls: { ca: tls.ca } }));
      expectUnreachable(err, secure.endpoint);
      await expect(openEtcdStore({ endpoints: [secure.endpoint], tls: { ...tls, key: '/nonexistent/key.pem' } })).rejects.toMatchObject({
        kind: 'bad-request',
        message: expect.stringContaining('/nonexistent/key.pem'),
      });
    } finally {
      await secure.dispose();
    }
  });

  test('a closed store refuses further calls', async () => {
    const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: freshRoot() });
    await store.close();
    await expect(store.get('k')).rejects.toMatchObject({ kind: 'internal', message: expect.stringContaining('closed') });
  });
});
