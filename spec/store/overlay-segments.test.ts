// Overlay segment records on a real store: defined once, listing the hosts that have the network; the last
// host to leave removes the segment and frees its VNI; a sweep puts a host's memberships right.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { K, Overlay } from '../../src/network/overlay.js';
import type { Datapath } from '../../src/network/service.js';
import { openLocalStore } from '../../src/store/local.js';
import { decode, encode } from '../../src/store/records.js';
import type { Store } from '../../src/store/types.js';
import type { SegmentRecord } from '../../src/network/overlay-plan.js';

let dir = '';
let store: Store;
const log = createLogger('error');
/** Segment bookkeeping never touches the kernel. */
const kernel = {} as Datapath;
const host = (id: string) => new Overlay({ cluster: store, hostId: id, vtep: '192.0.2.1', kernel, log, leaseTtlSeconds: 10 });
const net = (subnet: string, vni?: number) => ({ ipv4: [{ subnet }], vni });
const segment = async (sk: string) => {
  const e = await store.get(K.segment(sk));
  return e ? decode<SegmentRecord>(e) : undefined;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'knit-segments-'));
  store = await openLocalStore(dir);
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('the last host to leave removes the segment and frees its VNI; until then its settings stand', async () => {
  const [a, b] = [host('a'), host('b')];
  expect(await a.defineSegment(net('10.51.0.0/24', 5001))).toBe(5001);
  expect(await b.defineSegment(net('10.51.0.0/24'))).toBe(5001);
  expect((await segment('10.51.0.0_24'))?.hosts).toEqual(['a', 'b']);
  await a.leaveSegment('10.51.0.0/24');
  await expect(a.defineSegment(net('10.51.0.0/24', 5002))).rejects.toThrow(/knit\.vni 5001, not 5002/);
  await b.leaveSegment('10.51.0.0/24');
  expect(await segment('10.51.0.0_24')).toBeUndefined();
  expect(await store.get(K.vni(5001))).toBeUndefined();
  expect(await a.defineSegment(net('10.51.0.0/24', 5002))).toBe(5002);
  expect(await b.defineSegment(net('10.52.0.0/24', 5001))).toBe(5001);
});

test('reconcile leaves segments without a local network, rejoins those with one, and leaves old records alone', async () => {
  const [a, b] = [host('a'), host('b')];
  await a.defineSegment(net('10.61.0.0/24'));
  const vni = await b.defineSegment(net('10.62.0.0/24'));
  // A record from before segments listed their hosts.
  await store.commit([{ key: K.segment('10.63.0.0_24'), value: encode({ subnet: '10.63.0.0/24', vni: 7000 }) }]);
  // a has no network on 10.61 any more, has one on 10.62 (not listed there), and one on the old record's subnet.
  expect(await a.reconcileSegments([net('10.62.0.0/24', vni), net('10.63.0.0/24', 7000)])).toBe(2);
  expect(await segment('10.61.0.0_24')).toBeUndefined();
  expect((await segment('10.62.0.0_24'))?.hosts).toEqual(['b', 'a']);
  const old = await segment('10.63.0.0_24');
  expect(old).toMatchObject({ subnet: '10.63.0.0/24', vni: 7000 });
  expect(old).not.toHaveProperty('hosts');
  expect(await a.reconcileSegments([net('10.62.0.0/24', vni), net('10.63.0.0/24', 7000)])).toBe(0);
});

test('a segment a lost host alone had goes with it; others just drop it from their list', async () => {
  const [a, b] = [host('a'), host('b')];
  await a.defineSegment(net('10.71.0.0/24'));
  await b.defineSegment(net('10.71.0.0/24'));
  const lonely = await b.defineSegment(net('10.72.0.0/24'));
  await a.forgetHosts(['b']);
  expect((await segment('10.71.0.0_24'))?.hosts).toEqual(['a']);
  expect(await segment('10.72.0.0_24')).toBeUndefined();
  expect(await store.get(K.vni(lonely))).toBeUndefined();
});
