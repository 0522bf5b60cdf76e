// IPAM across hosts on one real embedded store: reclaim of a lost host, and compare-and-set races lost on purpose.
import { keys, type AddressRecord, type PoolRecord } from '../../src/ipam/records.js';
import { type Bed, interfering, ipamOn, openBed, records, withCommit, writesKey } from './ipam-bed.js';

let bed: Bed;
beforeEach(async () => (bed = await openBed()));
afterEach(() => bed.close());

const T0 = Date.parse('2026-01-01T00:00:00Z');
const GRACE = 10_000;
const SK = '10.50.0.0_24';
const poolKey = keys.pool(SK);
const hostsOf = async () => (await records<PoolRecord>(bed.store, 'ipam/pools/')).get(poolKey)?.hosts;
const markers = async () => (await records<{ since: string }>(bed.store, keys.lostPrefix));
const holders = async () => [...(await records<AddressRecord>(bed.store, keys.addrs(SK))).values()].map((r) => `${r.host}:${r.kind}`).sort();

/** Host x makes the pool (and its gateway) and two addresses; host a joins and takes one. */
async function sharedPool() {
  const x = ipamOn(bed.store, 'x').ipam;
  const { poolId } = await x.requestPool({ pool: '10.50.0.0/24', v6: false });
  await x.requestAddress({ poolId, gateway: true });
  const xAddrs = [await x.requestAddress({ poolId, gateway: false }), await x.requestAddress({ poolId, gateway: false })];
  return { x, poolId, xAddrs };
}

describe('reclaim of a lost host', () => {
  test('quarantined first, reclaimed after the grace period; the returning host re-claims its address', async () => {
    const { poolId, xAddrs } = await sharedPool();
    const a = ipamOn(bed.store, 'a');
    await a.ipam.requestPool({ pool: '10.50.0.0/24', v6: false });
    await a.ipam.requestAddress({ poolId, gateway: false });
    const live = new Set(['a']);
    expect(await a.ipam.reclaimLost({ live, now: T0, afterMs: GRACE })).toEqual([]);
    expect((await markers()).get(keys.lost('x'))).toMatchObject({ since: new Date(T0).toISOString() });
    expect(await a.ipam.reclaimLost({ live, now: T0 + GRACE - 1, afterMs: GRACE })).toEqual([]);
    expect(await holders()).toEqual(['a:dynamic', 'x:dynamic', 'x:dynamic', 'x:gateway']);
    expect(await a.ipam.reclaimLost({ live, now: T0 + GRACE, afterMs: GRACE })).toEqual(['x']);
    expect(await hostsOf()).toEqual(['a']);
    // The gateway belongs to the pool, which a still holds.
    expect(await holders()).toEqual(['a:dynamic', 'x:gateway']);
    expect((await markers()).size).toBe(0);
    // x comes back with a container still on its old address: the record is restored for x.
    const x = ipamOn(bed.store, 'x').ipam;
    expect(await x.ensureOwned('10.50.0.0/24', xAddrs[0].split('/')[0])).toBe('restored');
    expect(await x.ensureOwned('10.50.0.0/24', xAddrs[0].split('/')[0])).toBe('ok');
    expect(await holders()).toEqual(['a:dynamic', 'x:gateway', 'x:static']);
  });

  test('a host seen alive again before the grace period ends leaves quarantine with nothing taken', async () => {
    await sharedPool();
    const a = ipamOn(bed.store, 'a').ipam;
    await a.requestPool({ pool: '10.50.0.0/24', v6: false });
    await a.reclaimLost({ live: new Set(['a']), now: T0, afterMs: GRACE });
    expect((await markers()).size).toBe(1);
    expect(await a.reclaimLost({ live: new Set(['a', 'x']), now: T0 + 2 * GRACE, afterMs: GRACE })).toEqual([]);
    expect((await markers()).size).toBe(0);
    expect(await holders()).toEqual(['x:dynamic', 'x:dynamic', 'x:gateway']);
  });
});

describe('lost compare-and-set races', () => {
  test('a reclaim whose pool write loses to a host joining re-reads and finishes: the quarantine does not restart', async () => {
    await sharedPool();
    const b = ipamOn(bed.store, 'b').ipam;
    const race = interfering(bed.store, writesKey(poolKey), () => b.requestPool({ pool: '10.50.0.0/24', v6: false }));
    const a = ipamOn(race.store, 'a').ipam;
    await ipamOn(bed.store, 'a').ipam.requestPool({ pool: '10.50.0.0/24', v6: false });
    const live = new Set(['a', 'b']);
    await a.reclaimLost({ live, now: T0, afterMs: GRACE });
    expect(race.counts).toEqual({ fired: 0, lost: 0 });
    expect(await a.reclaimLost({ live, now: T0 + GRACE, afterMs: GRACE })).toEqual(['x']);
    // The race happened: b joined just before a's write, and a's guarded write lost.
    expect(race.counts).toEqual({ fired: 1, lost: 1 });
    expect(await hostsOf()).toEqual(['a', 'b']);
    expect(await holders()).toEqual(['x:gateway']);
    expect((await markers()).size).toBe(0);
    // Later sweeps find no lost host: x is not quarantined again.
    expect(await a.reclaimLost({ live, now: T0 + 3 * GRACE, afterMs: GRACE })).toEqual([]);
    expect((await markers()).size).toBe(0);
  });

  test('a quarantine that loses to another host keeps that host\'s start time, and says nothing itself', async () => {
    await sharedPool();
    const b = ipamOn(bed.store, 'b');
    const race = interfering(bed.store, writesKey(keys.lost('x')), () => b.ipam.reclaimLost({ live: new Set(['a', 'b']), now: T0 - GRACE / 2, afterMs: GRACE }));
    const a = ipamOn(race.store, 'a');
    await a.ipam.requestPool({ pool: '10.50.0.0/24', v6: false });
    await b.ipam.requestPool({ pool: '10.50.0.0/24', v6: false });
    const live = new Set(['a', 'b']);
    expect(await a.ipam.reclaimLost({ live, now: T0, afterMs: GRACE })).toEqual([]);
    expect(race.counts).toEqual({ fired: 1, lost: 1 });
    expect((await markers()).get(keys.lost('x'))).toMatchObject({ since: new Date(T0 - GRACE / 2).toISOString() });
    const quarantined = (lines: typeof a.lines) => lines.filter((l) => l.message.startsWith('host lost'));
    expect(quarantined(b.lines)).toHaveLength(1);
    expect(quarantined(a.lines)).toHaveLength(0);
    // The grace period runs from b's start: x is reclaimed at that time plus the grace, not a's.
    expect(await a.ipam.reclaimLost({ live, now: T0 + GRACE / 2, afterMs: GRACE })).toEqual(['x']);
  });

  test('restoring an address that another host claims first reports it taken', async () => {
    const { poolId } = await sharedPool();
    const b = ipamOn(bed.store, 'b').ipam;
    await b.requestPool({ pool: '10.50.0.0/24', v6: false });
    const ip = '10.50.0.77';
    const race = interfering(bed.store, writesKey(keys.addr(SK, ip)), () => b.requestAddress({ poolId, gateway: false, address: ip }));
    const a = ipamOn(race.store, 'a').ipam;
    await ipamOn(bed.store, 'a').ipam.requestPool({ pool: '10.50.0.0/24', v6: false });
    expect(await a.ensureOwned('10.50.0.0/24', ip)).toBe('taken');
    expect(race.counts).toEqual({ fired: 1, lost: 1 });
    expect((await records<AddressRecord>(bed.store, keys.addr(SK, ip))).get(keys.addr(SK, ip))).toMatchObject({ host: 'b', kind: 'static' });
  });

  test('two hosts asking at once never get the same address', async () => {
    const x = ipamOn(bed.store, 'x').ipam;
    const { poolId } = await x.requestPool({ pool: '10.50.0.0/24', v6: false });
    const counted = interfering(bed.store, () => false, async () => undefined);
    const a = ipamOn(counted.store, 'a').ipam;
    const b = ipamOn(counted.store, 'b').ipam;
    await a.requestPool({ pool: '10.50.0.0/24', v6: false });
    await b.requestPool({ pool: '10.50.0.0/24', v6: false });
    const asks = Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).requestAddress({ poolId, gateway: false }));
    const got = await Promise.all(asks);
    expect(new Set(got).size).toBe(40);
    // Both hosts' caches started empty at the same place, so claims collided and lost, and were retried.
    expect(counted.counts.lost).toBeGreaterThan(0);
    const stored = await records<AddressRecord>(bed.store, keys.addrs(SK));
    expect(stored.size).toBe(40);
    expect([...stored.values()].filter((r) => r.host === 'a')).toHaveLength(20);
  });
});

describe('a store that keeps losing', () => {
  test('a reclaim that cannot end a quarantine gives up after bounded tries and still reports the hosts it reclaimed', async () => {
    await sharedPool();
    const y = ipamOn(bed.store, 'y').ipam;
    await y.requestPool({ pool: '10.51.0.0/24', v6: false });
    const a = ipamOn(bed.store, 'a');
    await a.ipam.requestPool({ pool: '10.50.0.0/24', v6: false });
    await a.ipam.reclaimLost({ live: new Set(['a']), now: T0, afterMs: GRACE });
    expect([...(await markers()).keys()].sort()).toEqual([keys.lost('x'), keys.lost('y')]);
    // Every guarded delete of y's marker loses, as if another host rewrote it each time.
    let losses = 0;
    const stuck = withCommit(bed.store, async (writes, checks) => {
      if (!writes.some((w) => w.key === keys.lost('y') && w.value === null)) return bed.store.commit(writes, checks);
      losses++;
      return null;
    });
    const sweeper = ipamOn(stuck, 'a');
    expect(await sweeper.ipam.reclaimLost({ live: new Set(['a']), now: T0 + GRACE, afterMs: GRACE })).toEqual(['x', 'y']);
    expect(losses).toBe(50);
    expect(sweeper.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: 'reclaim stopped partway; the next sweep goes on' }));
    expect(await hostsOf()).toEqual(['a']);
    expect((await records(bed.store, 'ipam/pools/')).has(keys.pool('10.51.0.0_24'))).toBe(false);
    expect([...(await markers()).keys()]).toEqual([keys.lost('y')]);
  });
});
