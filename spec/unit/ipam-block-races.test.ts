// Block allocation across hosts on one real embedded cluster store, with races lost on purpose: two claims of
// one block, a static address against a block claim (both orders), and a lost host's blocks through quarantine.
import { setTimeout as sleep } from 'node:timers/promises';
import { CHECK_MS } from '../../src/ipam/block-calls.js';
import { keys, type AddressRecord, type BlockRecord } from '../../src/ipam/records.js';
import type { Store } from '../../src/store/types.js';
import { clusterBeds, interfering, ipamOn, records, writesKey } from './ipam-bed.js';

const beds = clusterBeds();
const local = beds.local;

const SUBNET = '10.70.0.0/24';
const SK = '10.70.0.0_24';
const TOP = keys.block(SK, '10.70.0.240');
const blocks = async () => [...(await records<BlockRecord>(beds.cluster(), keys.blocks(SK))).values()].map((b) => `${b.host} ${b.block}`).sort();
const bare = (cidr: string) => cidr.split('/')[0];

/** Hosts on the pool, each with its own store; `store` lets a test put a host on an interfering store. */
async function hosts(names: string[], store: (name: string) => Store = () => beds.cluster()) {
  const out = [];
  for (const name of names) out.push(ipamOn(store(name), name, { local: await local() }));
  const { poolId } = await out[0].ipam.requestPool({ pool: SUBNET, v6: false });
  for (const h of out.slice(1)) await h.ipam.requestPool({ pool: SUBNET, v6: false });
  return { poolId, hosts: out };
}

test('two hosts claiming the same block: the one that loses claims the next, and no address is handed out twice', async () => {
  let b!: ReturnType<typeof ipamOn>;
  let poolId = '';
  const race = interfering(beds.cluster(), writesKey(TOP), () => b.ipam.requestAddress({ poolId, gateway: false }));
  const set = await hosts(['a', 'b'], (n) => (n === 'a' ? race.store : beds.cluster()));
  poolId = set.poolId;
  const [a] = set.hosts;
  b = set.hosts[1];
  const got = [await a.ipam.requestAddress({ poolId, gateway: false })];
  expect(race.counts).toEqual({ fired: 1, lost: 1 });
  for (let i = 0; i < 20; i++) got.push(await a.ipam.requestAddress({ poolId, gateway: false }), await b.ipam.requestAddress({ poolId, gateway: false }));
  expect(new Set(got).size).toBe(got.length);
  const held = await blocks();
  expect(held).toContain('b 10.70.0.240/28');
  expect(held).toContain('a 10.70.0.224/28');
  expect(held.map((h) => h[0])).toEqual(['a', 'a', 'b', 'b']);
  expect(new Set(held.map((h) => h.slice(2))).size).toBe(4);
});

test('a static address whose claim loses to a block claim around it is refused, and the block holder may hand it out', async () => {
  let a!: ReturnType<typeof ipamOn>;
  let poolId = '';
  const race = interfering(beds.cluster(), writesKey(keys.addr(SK, '10.70.0.245')), () => a.ipam.requestAddress({ poolId, gateway: false }));
  const set = await hosts(['a', 'b'], (n) => (n === 'b' ? race.store : beds.cluster()));
  [a] = set.hosts;
  poolId = set.poolId;
  await expect(set.hosts[1].ipam.requestAddress({ poolId, gateway: false, address: '10.70.0.245' })).rejects.toMatchObject({
    kind: 'conflict',
    message: expect.stringMatching(/^address 10\.70\.0\.245 is possibly already in use: it lies in block 10\.70\.0\.240\/28, which host a holds .*--ip-range/),
  });
  expect(race.counts).toEqual({ fired: 1, lost: 1 });
  expect((await records(beds.cluster(), keys.addrs(SK))).size).toBe(0);
  const got = [];
  for (let i = 0; i < 14; i++) got.push(bare(await a.ipam.requestAddress({ poolId, gateway: false })));
  expect(got).toContain('10.70.0.245');
});

test('a static address claimed between a block claim\'s read and its write is never handed out from that block', async () => {
  let b!: ReturnType<typeof ipamOn>;
  let poolId = '';
  const race = interfering(beds.cluster(), writesKey(TOP), () => b.ipam.requestAddress({ poolId, gateway: false, address: '10.70.0.245' }));
  const set = await hosts(['a', 'b'], (n) => (n === 'a' ? race.store : beds.cluster()));
  poolId = set.poolId;
  b = set.hosts[1];
  const got = [];
  for (let i = 0; i < 15; i++) got.push(bare(await set.hosts[0].ipam.requestAddress({ poolId, gateway: false })));
  // The static claim landed first (its guard: the block still free), then the block claim, which then read it.
  expect(race.counts).toEqual({ fired: 1, lost: 0 });
  expect(got).not.toContain('10.70.0.245');
  expect(new Set(got).size).toBe(15);
  expect(got[14]).toBe('10.70.0.224');
  expect((await records<AddressRecord>(beds.cluster(), keys.addr(SK, '10.70.0.245'))).get(keys.addr(SK, '10.70.0.245'))).toMatchObject({ host: 'b', kind: 'static' });
});

test('a static address in the host\'s own block is checked against its ledger, and written to the store', async () => {
  const { poolId, hosts: [a] } = await hosts(['a']);
  const first = bare(await a.ipam.requestAddress({ poolId, gateway: false }));
  await expect(a.ipam.requestAddress({ poolId, gateway: false, address: first })).rejects.toMatchObject({ message: `address ${first} is already in use in ${SUBNET}` });
  expect(await a.ipam.requestAddress({ poolId, gateway: false, address: '10.70.0.250' })).toBe('10.70.0.250/24');
  const got = [];
  for (let i = 0; i < 13; i++) got.push(bare(await a.ipam.requestAddress({ poolId, gateway: false })));
  expect(got).not.toContain('10.70.0.250');
  expect(got).not.toContain(first);
  await a.ipam.releaseAddress(poolId, '10.70.0.250');
  expect((await records(beds.cluster(), keys.addrs(SK))).size).toBe(0);
});

describe('a lost host\'s blocks', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const GRACE = 10_000;

  test('are quarantined with its addresses, then reclaimed; the host, back, stops handing out from them', async () => {
    const { poolId, hosts: [x, a] } = await hosts(['x', 'a']);
    const xs = [bare(await x.ipam.requestAddress({ poolId, gateway: false })), bare(await x.ipam.requestAddress({ poolId, gateway: false }))];
    const live = new Set(['a']);
    expect(await a.ipam.reclaimLost({ live, now: T0, afterMs: GRACE })).toEqual([]);
    // Quarantined: the block stays x's, and a may not take an address inside it.
    expect(await blocks()).toEqual(['x 10.70.0.240/28']);
    await expect(a.ipam.requestAddress({ poolId, gateway: false, address: '10.70.0.250' })).rejects.toMatchObject({ message: expect.stringMatching(/held by|holds/) });
    expect(bare(await a.ipam.requestAddress({ poolId, gateway: false }))).toBe('10.70.0.224');
    expect(await a.ipam.reclaimLost({ live, now: T0 + GRACE, afterMs: GRACE })).toEqual(['x']);
    expect(await blocks()).toEqual(['a 10.70.0.224/28']);
    // x's old addresses are free again: a takes one as a static address.
    expect(await a.ipam.requestAddress({ poolId, gateway: false, address: xs[0] })).toBe(`${xs[0]}/24`);
    // x was only cut off: once it reads its blocks back it stops handing out from the one it lost.
    await sleep(CHECK_MS + 50);
    await x.ipam.requestPool({ pool: SUBNET, v6: false });
    expect(await x.ipam.ensureOwned(SUBNET, xs[1])).toBe('restored');
    expect(x.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/^a block of this host is gone/) }));
    // Its other running endpoint's address was taken meanwhile: reported, not claimed twice.
    expect(await x.ipam.ensureOwned(SUBNET, xs[0])).toBe('taken');
    const holders = [...(await records<AddressRecord>(beds.cluster(), keys.addrs(SK))).entries()].map(([k, r]) => `${k.split('/').pop()} ${r.host}`);
    expect(holders.sort()).toEqual([`${xs[0]} a`, `${xs[1]} x`]);
    // x claims a block again: it is the free top one, where neither its old addresses nor a's record are handed out.
    const next = [];
    for (let i = 0; i < 13; i++) next.push(bare(await x.ipam.requestAddress({ poolId, gateway: false })));
    expect(next.filter((n) => xs.includes(n))).toEqual([]);
    expect(new Set(next).size).toBe(13);
  });
});
