// Overlay segment records on a real store: defined once, listing the hosts that have the network; the last
// host to leave removes the segment and frees its VNI; a sweep puts a host's memberships right.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { K } from '../../src/network/overlay/keys.js';
import { HostLease } from '../../src/network/overlay/lease.js';
import { Segments } from '../../src/network/overlay/segments.js';
import { HostRecordWatch } from '../../src/network/overlay/watch.js';
import { openLocalStore } from '../../src/store/local.js';
import { decode, encode } from '../../src/store/records.js';
import type { Store } from '../../src/store/types.js';
import type { SegmentRecord } from '../../src/network/overlay/plan.js';

let dir = '';
let store: Store;
const log = createLogger('error');
const host = (id: string) => new Segments({ cluster: store, hostId: id, log });
const net = (subnet: string, vni?: number, ipRange?: string) => ({ ipv4: [{ subnet }], vni, ipRange });
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
  expect(await a.define(net('10.51.0.0/24', 5001))).toBe(5001);
  expect(await b.define(net('10.51.0.0/24'))).toBe(5001);
  expect((await segment('10.51.0.0_24'))?.hosts).toEqual(['a', 'b']);
  await a.leave('10.51.0.0/24');
  await expect(a.define(net('10.51.0.0/24', 5002))).rejects.toThrow(/knit\.vni 5001, not 5002/);
  await b.leave('10.51.0.0/24');
  expect(await segment('10.51.0.0_24')).toBeUndefined();
  expect(await store.get(K.vni(5001))).toBeUndefined();
  expect(await a.define(net('10.51.0.0/24', 5002))).toBe(5002);
  expect(await b.define(net('10.52.0.0/24', 5001))).toBe(5001);
});

test('reconcile leaves segments without a local network, rejoins those with one, and leaves old records alone', async () => {
  const [a, b] = [host('a'), host('b')];
  await a.define(net('10.61.0.0/24'));
  const vni = await b.define(net('10.62.0.0/24'));
  // A record from before segments listed their hosts.
  await store.commit([{ key: K.segment('10.63.0.0_24'), value: encode({ subnet: '10.63.0.0/24', vni: 7000 }) }]);
  // a has no network on 10.61 any more, has one on 10.62 (not listed there), and one on the old record's subnet.
  expect(await a.reconcile([net('10.62.0.0/24', vni), net('10.63.0.0/24', 7000)])).toBe(2);
  expect(await segment('10.61.0.0_24')).toBeUndefined();
  expect((await segment('10.62.0.0_24'))?.hosts).toEqual(['b', 'a']);
  const old = await segment('10.63.0.0_24');
  expect(old).toMatchObject({ subnet: '10.63.0.0/24', vni: 7000 });
  expect(old).not.toHaveProperty('hosts');
  expect(await a.reconcile([net('10.62.0.0/24', vni), net('10.63.0.0/24', 7000)])).toBe(0);
});

test('a segment a lost host alone had goes with it; others just drop it from their list', async () => {
  const [a, b] = [host('a'), host('b')];
  await a.define(net('10.71.0.0/24'));
  await b.define(net('10.71.0.0/24'));
  const lonely = await b.define(net('10.72.0.0/24'));
  await a.forgetHosts(['b']);
  expect((await segment('10.71.0.0_24'))?.hosts).toEqual(['a']);
  expect(await segment('10.72.0.0_24')).toBeUndefined();
  expect(await store.get(K.vni(lonely))).toBeUndefined();
});

test('a host asking for the segment with another --ip-range is refused naming the existing one, and nothing changes', async () => {
  const [a, b, c] = [host('a'), host('b'), host('c')];
  const vni = await a.define(net('10.81.0.0/24', undefined, '10.81.0.128/25'));
  expect((await segment('10.81.0.0_24'))?.range).toBe('10.81.0.128/25');
  await expect(b.define(net('10.81.0.0/24', undefined, '10.81.0.0/25'))).rejects.toThrow(
    'overlay 10.81.0.0/24 already exists with ip-range 10.81.0.128/25, not 10.81.0.0/25; create it with the same settings on every host',
  );
  await expect(b.define(net('10.81.0.0/24', undefined, ''))).rejects.toThrow(/ip-range 10\.81\.0\.128\/25, not \(none\)/);
  expect((await segment('10.81.0.0_24'))?.hosts).toEqual(['a']);
  // Positive control: the same range joins; an unknown range (another IPAM) is not compared.
  expect(await b.define(net('10.81.0.0/24', undefined, '10.81.0.128/25'))).toBe(vni);
  expect(await c.define(net('10.81.0.0/24'))).toBe(vni);
  expect((await segment('10.81.0.0_24'))?.hosts).toEqual(['a', 'b', 'c']);
});

test('at connect, every stale record of this host goes (more than one commit holds), its own and the others\' stay', async () => {
  const prefix = 'test/records/';
  const stale = Array.from({ length: 150 }, (_, i) => ({ key: `${prefix}me/${i}`, value: 'old' }));
  for (let i = 0; i < stale.length; i += 20) await store.commit(stale.slice(i, i + 20));
  await store.commit([{ key: `${prefix}other/1`, value: 'theirs' }]);
  const lease = new HostLease({ cluster: store, hostId: 'me', log, ttlSeconds: 10 });
  const watch = new HostRecordWatch({ cluster: store, hostId: 'me', lease, log });
  const seen: string[] = [];
  watch.add({ prefix, hostOf: (key) => key.slice(prefix.length).split('/')[0], reset: async (entries) => void seen.push(...entries.map((e) => e.key)), change: () => undefined });
  lease.keep(`${prefix}me/7`, 'kept');
  await lease.start();
  expect(lease.current()).toBeDefined();
  expect((await store.list(prefix)).map((e) => [e.key, e.value])).toEqual([[`${prefix}me/7`, 'kept'], [`${prefix}other/1`, 'theirs']]);
  expect(seen).toEqual([`${prefix}other/1`]);
  expect([...(await lease.liveHosts())]).toEqual(['me']);
  watch.close();
  await lease.stop();
});
