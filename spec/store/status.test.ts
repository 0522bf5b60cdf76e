// The status document against a real etcd: the store answers or not, this host's lease is alive or not, and the
// other live hosts with what they publish. An unreachable store must not hold the status call up.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEtcdStore } from '../../src/store/etcd.js';
import { openLocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/types.js';
import { statusDocument, type StatusSources } from '../../src/status.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';

let etcd: EtcdServer;
let dir = '';
let local: Store;
let mine: Store;
let theirs: Store;

const sources = (cluster: Store): StatusSources => ({
  hostId: 'me', cluster, local, networks: async () => [], endpoints: async () => [], calls: () => ({}), spawned: () => ({ ip: 0 }),
});

beforeAll(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), 'knit-status-'));
  local = await openLocalStore(join(dir, 'db'));
  mine = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '/knit-status/' });
  theirs = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '/knit-status/' });
}, 30_000);

afterAll(async () => {
  etcd?.resume();
  for (const s of [mine, theirs, local]) await s?.close().catch(() => undefined);
  await etcd?.dispose();
  await rm(dir, { recursive: true, force: true });
}, 30_000);

test('the embedded store alone: reachable, no lease, no peers part', async () => {
  const doc = await statusDocument(sources(local));
  expect(doc.store).toEqual({ kind: 'local', reachable: true });
  expect(doc).not.toHaveProperty('peers');
  expect(doc.host).toBe('me');
});

test('etcd: reachable, lease held while this host\'s key lives, peers with their VTEP and endpoints', async () => {
  const myLease = await mine.grantLease(10);
  const theirLease = await theirs.grantLease(10);
  await mine.commit([{ key: 'hosts/me', value: JSON.stringify({ vtep: '10.0.0.1' }), lease: myLease }]);
  await theirs.commit([
    { key: 'hosts/h2', value: JSON.stringify({ vtep: '10.0.0.2', since: 't' }), lease: theirLease },
    { key: 'overlay/endpoints/10.50.0.0-24/h2/e1', value: '{}', lease: theirLease },
    { key: 'overlay/endpoints/10.60.0.0-24/h2/e2', value: '{}', lease: theirLease },
  ]);
  const doc = await statusDocument(sources(mine));
  expect(doc.store).toEqual({ kind: 'etcd', reachable: true, lease: 'held' });
  expect(doc.peers).toEqual([{ host: 'h2', vtep: '10.0.0.2', endpoints: 2 }]);

  // This host's lease gone (as when the store expired it): the others have dropped it, and status says so.
  await myLease.revoke();
  expect((await statusDocument(sources(mine))).store).toEqual({ kind: 'etcd', reachable: true, lease: 'lost' });
});

test('etcd stalled: status still answers within seconds, store unreachable, lease unknown, no peers', async () => {
  // Positive control: the same store answers right before.
  expect((await statusDocument(sources(mine))).store.reachable).toBe(true);
  etcd.pause();
  try {
    const started = Date.now();
    const doc = await statusDocument(sources(mine));
    const took = Date.now() - started;
    expect(doc.store).toEqual({ kind: 'etcd', reachable: false, lease: 'unknown', error: expect.stringContaining('did not answer within 2000 ms') });
    expect(doc).not.toHaveProperty('peers');
    expect(took).toBeGreaterThanOrEqual(1_900);
    expect(took).toBeLessThan(4_000);
  } finally {
    etcd.resume();
  }
}, 30_000);
