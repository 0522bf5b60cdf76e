// The index of a host's own address records (static and one-by-one dynamic claims in a cluster store), kept in its
// own store: the leak sweep reads it instead of every host's records; filled once from the records when missing.
import type { Store } from '../../src/store/types.js';
import { keys } from '../../src/ipam/records.js';
import { clusterBeds, ipamOn, withCommit } from './ipam-bed.js';

/** `store`, recording the prefixes listed through it. */
function listing(store: Store): { store: Store; lists: string[] } {
  const lists: string[] = [];
  const wrapped = withCommit(store, (writes, checks) => store.commit(writes, checks));
  return { store: { ...wrapped, list: (prefix) => (lists.push(prefix), store.list(prefix)) }, lists };
}

const SUBNET = '10.66.0.0/24';
const addrKey = (ip: string) => keys.addr('10.66.0.0_24', ip);

describe('the index of own address records', () => {
  const beds = clusterBeds();

  async function twoHosts() {
    const counted = listing(beds.cluster());
    const a = ipamOn(counted.store, 'a', { local: await beds.local() }).ipam;
    const b = ipamOn(beds.cluster(), 'b', { local: await beds.local() }).ipam;
    const { poolId } = await a.requestPool({ pool: SUBNET, v6: false });
    await b.requestPool({ pool: SUBNET, v6: false });
    await a.requestAddress({ poolId, gateway: true });
    return { a, b, poolId, lists: counted.lists };
  }

  test('a host\'s sweep sees its own static addresses, not the others\', and lists no cluster records once the index is filled', async () => {
    const { a, b, poolId, lists } = await twoHosts();
    await a.requestAddress({ poolId, address: '10.66.0.10', gateway: false });
    for (const n of [20, 21, 22]) await b.requestAddress({ poolId, address: `10.66.0.${n}`, gateway: false });
    // The first sweep fills the index from the records (the index was never filled): one listing.
    lists.length = 0;
    const first = await a.ownAddresses();
    expect(first.map((x) => [x.key, x.record.kind])).toEqual([[addrKey('10.66.0.10'), 'static']]);
    expect(lists.filter((p) => p.startsWith(keys.addrsPrefix))).toEqual([keys.addrsPrefix]);
    // From then on each claim keeps the index: no listing of every host's records.
    await a.requestAddress({ poolId, address: '10.66.0.11', gateway: false });
    lists.length = 0;
    const next = await a.ownAddresses();
    expect(next.map((x) => x.ip).sort()).toEqual(['10.66.0.10', '10.66.0.11']);
    expect(lists.filter((p) => p.startsWith(keys.addrsPrefix))).toEqual([]);
    expect((await b.ownAddresses()).map((x) => x.ip).sort()).toEqual(['10.66.0.20', '10.66.0.21', '10.66.0.22']);
  });

  test('a released address leaves the index; a record gone behind the host\'s back is dropped without counting as a leak', async () => {
    const { a, poolId } = await twoHosts();
    await a.ownAddresses();
    await a.requestAddress({ poolId, address: '10.66.0.12', gateway: false });
    await a.requestAddress({ poolId, address: '10.66.0.13', gateway: false });
    await a.releaseAddress(poolId, '10.66.0.12');
    expect((await a.ownAddresses()).map((x) => x.ip)).toEqual(['10.66.0.13']);
    // As a reclaim by another host does it (this host was thought lost): the record goes, the index entry stays.
    await beds.cluster().commit([{ key: addrKey('10.66.0.13'), value: null }]);
    const [stale] = await a.ownAddresses();
    expect(await a.releaseOwned(stale.key)).toBe(false);
    expect(await a.ownAddresses()).toEqual([]);
    // Positive control: a record that is there is released, and says so.
    await a.requestAddress({ poolId, address: '10.66.0.14', gateway: false });
    const [live] = await a.ownAddresses();
    expect(await a.releaseOwned(live.key)).toBe(true);
    expect(await beds.cluster().get(addrKey('10.66.0.14'))).toBeUndefined();
  });

  test('a host whose own store was lost finds its records again, once; letting the pool go empties its index', async () => {
    const { a, poolId } = await twoHosts();
    await a.requestAddress({ poolId, address: '10.66.0.15', gateway: false });
    const counted = listing(beds.cluster());
    const again = ipamOn(counted.store, 'a', { local: await beds.local() }).ipam;
    expect((await again.ownAddresses()).map((x) => x.ip)).toEqual(['10.66.0.15']);
    expect((await again.ownAddresses()).map((x) => x.ip)).toEqual(['10.66.0.15']);
    expect(counted.lists.filter((p) => p.startsWith(keys.addrsPrefix))).toEqual([keys.addrsPrefix]);
    await again.releasePool(poolId);
    expect(await again.ownAddresses()).toEqual([]);
    expect(await beds.cluster().get(addrKey('10.66.0.15'))).toBeUndefined();
  });

  test('one sweep pass reads each pool record once, however many of its addresses it checks', async () => {
    const gets: string[] = [];
    const cluster = beds.cluster();
    const counted: Store = { ...withCommit(cluster, (w, c) => cluster.commit(w, c)), get: (k) => (gets.push(k), cluster.get(k)) };
    const a = ipamOn(counted, 'a', { local: await beds.local() }).ipam;
    const { poolId } = await a.requestPool({ pool: SUBNET, v6: false });
    const ips: string[] = [];
    for (let i = 0; i < 4; i++) ips.push((await a.requestAddress({ poolId, gateway: false })).split('/')[0]);
    const poolGets = () => gets.filter((k) => k === keys.pool('10.66.0.0_24')).length;
    gets.length = 0;
    const reads = new Map();
    expect(await a.holdsPool(SUBNET, reads)).toBe(true);
    for (const ip of ips) expect(await a.ensureOwned(SUBNET, ip, reads)).toBe('ok');
    expect(poolGets()).toBe(1);
    // Positive control: without one pass's reads, each check reads the pool.
    gets.length = 0;
    for (const ip of ips) expect(await a.ensureOwned(SUBNET, ip)).toBe('ok');
    expect(poolGets()).toBe(4);
  });
});
