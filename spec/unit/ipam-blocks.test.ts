// Block allocation on real embedded stores (one as the cluster store, one per host as its own): block geometry,
// hand-out from a host's blocks without the cluster store, the ledger across a restart, giving blocks back.
import { parseCidr, parseIp } from '../../src/addr/cidr.js';
import { BlockBook } from '../../src/ipam/block-book.js';
import { blockOf, freeBlock, geometry } from '../../src/ipam/blocks.js';
import { keys, type AddressRecord, type BlockRecord } from '../../src/ipam/records.js';
import { clusterBeds, counting, ipamOn, records } from './ipam-bed.js';

const ip = (text: string) => parseIp(text).value;
const g24 = geometry(parseCidr('10.60.0.0/24'))!;

describe('block geometry (pure)', () => {
  test('64 addresses a block, fewer so that a pool has 16; pools under a /25 keep one claim per address', () => {
    expect(geometry(parseCidr('10.0.0.0/16'))?.prefix).toBe(26);
    expect(g24.prefix).toBe(28);
    expect(geometry(parseCidr('10.0.0.0/25'))?.prefix).toBe(29);
    expect(geometry(parseCidr('10.0.0.0/26'))).toBeUndefined();
    expect(geometry(parseCidr('fd00::/64'))?.prefix).toBe(122);
    // An ip-range is what the blocks tile.
    const r = geometry(parseCidr('10.0.0.0/16'), parseCidr('10.0.128.0/24'))!;
    expect([r.prefix, r.first, r.last]).toEqual([28, ip('10.0.128.0'), ip('10.0.128.255')]);
    expect(blockOf(r, ip('10.0.0.5'))).toBeUndefined();
  });

  test('blocks are claimed from the top down; the network and broadcast address are never in one', () => {
    expect(freeBlock(g24, new Set())).toBe(ip('10.60.0.240'));
    expect(freeBlock(g24, new Set([ip('10.60.0.240')]))).toBe(ip('10.60.0.224'));
    const all = new Set(Array.from({ length: 16 }, (_, i) => ip(`10.60.0.${i * 16}`)));
    expect(freeBlock(g24, all)).toBeUndefined();
    expect([g24.first, g24.last]).toEqual([ip('10.60.0.1'), ip('10.60.0.254')]);
    expect(blockOf(g24, ip('10.60.0.255'))).toBeUndefined();
  });

  test('the book hands out round-robin, skips records, is full when its blocks are, and keeps one empty block', () => {
    const book = new BlockBook(g24);
    book.own(ip('10.60.0.240'), 1);
    book.take(ip('10.60.0.241'), 'record');
    const got = Array.from({ length: 14 }, () => book.next()!).map((x) => (book.take(x, 'ledger'), x));
    expect(got[0]).toBe(ip('10.60.0.240'));
    expect(got).not.toContain(ip('10.60.0.241'));
    expect(new Set(got).size).toBe(14);
    expect([book.next(), book.hasFree()]).toEqual([undefined, false]);
    book.own(ip('10.60.0.224'), 2);
    expect(book.surplus()).toEqual([]);
    for (const x of got) book.release(x, 'ledger');
    // Two empty blocks: one goes back, one stays as the spare.
    expect(book.surplus()).toHaveLength(1);
    // Round robin: the next address is not the one released first.
    expect(book.next()).not.toBe(got[0]);
  });
});

describe('hand-out through a cluster store', () => {
  const beds = clusterBeds();
  const local = beds.local;
  const blocks = async () => [...(await records<BlockRecord>(beds.cluster(), 'ipam/blocks/')).values()].map((b) => `${b.host} ${b.block}`).sort();

  test('one compare-and-set claims a block; its addresses are handed out with no further write to the cluster store', async () => {
    const counted = counting(beds.cluster(), 'ipam/');
    const mine = await local();
    const { ipam } = ipamOn(counted.store, 'a', { local: mine });
    const { poolId } = await ipam.requestPool({ pool: '10.60.0.0/24', v6: false });
    expect(await ipam.requestAddress({ poolId, gateway: true })).toBe('10.60.0.1/24');
    const before = counted.counts.commits;
    const got = [];
    for (let i = 0; i < 15; i++) got.push(await ipam.requestAddress({ poolId, gateway: false }));
    expect(got.slice(0, 3)).toEqual(['10.60.0.240/24', '10.60.0.241/24', '10.60.0.242/24']);
    expect(new Set(got).size).toBe(15);
    // The top block has 15 usable addresses (.255 is the broadcast): one claim for all of them.
    expect(counted.counts.commits - before).toBe(1);
    expect(await blocks()).toEqual(['a 10.60.0.240/28']);
    expect((await records<AddressRecord>(beds.cluster(), keys.addrs('10.60.0.0_24'))).size).toBe(1);
    expect((await records(mine, keys.ledger('10.60.0.0_24'))).size).toBe(15);
  });

  test('knit hosts\' own addresses inside a block are never handed out (macvlan shares the LAN with the hosts)', async () => {
    const hosts = new Set(['10.62.0.241', '10.62.0.243', '10.9.9.9']);
    const { ipam } = ipamOn(beds.cluster(), 'a', { local: await local(), hostAddresses: () => hosts });
    const { poolId } = await ipam.requestPool({ pool: '10.62.0.0/24', v6: false });
    const got = [];
    for (let i = 0; i < 13; i++) got.push(await ipam.requestAddress({ poolId, gateway: false }));
    expect(got.slice(0, 3)).toEqual(['10.62.0.240/24', '10.62.0.242/24', '10.62.0.244/24']);
    expect(got.filter((a) => hosts.has(a.split('/')[0]))).toEqual([]);
    // 15 usable in the top block, 2 of them hosts': the 14th address comes from the next block.
    expect(await ipam.requestAddress({ poolId, gateway: false })).toBe('10.62.0.224/24');
  });

  test('a restart reads the ledger: what was handed out before is not handed out again', async () => {
    const mine = await local();
    const first = ipamOn(beds.cluster(), 'a', { local: mine }).ipam;
    const { poolId } = await first.requestPool({ pool: '10.61.0.0/24', v6: false });
    const before = [await first.requestAddress({ poolId, gateway: false }), await first.requestAddress({ poolId, gateway: false })];
    const again = ipamOn(beds.cluster(), 'a', { local: mine }).ipam;
    const after = [];
    for (let i = 0; i < 13; i++) after.push(await again.requestAddress({ poolId, gateway: false }));
    expect(after.filter((x) => before.includes(x))).toEqual([]);
    expect(await blocks()).toEqual(['a 10.61.0.240/28']);
    // The block is full now: the next one comes from a second block.
    expect(await again.requestAddress({ poolId, gateway: false })).toBe('10.61.0.224/24');
  });

  test('a request/release loop claims one block and keeps it; emptied blocks beyond one spare go back', async () => {
    const counted = counting(beds.cluster(), 'ipam/blocks/');
    const { ipam } = ipamOn(counted.store, 'a', { local: await local() });
    const { poolId } = await ipam.requestPool({ pool: '10.62.0.0/24', v6: false });
    for (let i = 0; i < 40; i++) await ipam.releaseAddress(poolId, (await ipam.requestAddress({ poolId, gateway: false })).split('/')[0]);
    expect(counted.counts.commits).toBe(1);
    const held = [];
    for (let i = 0; i < 40; i++) held.push((await ipam.requestAddress({ poolId, gateway: false })).split('/')[0]);
    expect(await blocks()).toHaveLength(3);
    for (const x of held) await ipam.releaseAddress(poolId, x);
    expect(await blocks()).toHaveLength(1);
    expect(counted.counts.commits).toBe(1 + 2 + 2);
  });

  test('the sweep sees ledger addresses as this host\'s dynamic ones, and a leaked one goes back through the ledger', async () => {
    const mine = await local();
    const { ipam } = ipamOn(beds.cluster(), 'a', { local: mine });
    const { poolId } = await ipam.requestPool({ pool: '10.65.0.0/24', v6: false });
    const ip = (await ipam.requestAddress({ poolId, gateway: false })).split('/')[0];
    const owned = await ipam.ownAddresses();
    expect(owned).toEqual([{ key: keys.handed('10.65.0.0_24', ip), ip, subnet: '10.65.0.0/24', record: expect.objectContaining({ host: 'a', kind: 'dynamic' }) }]);
    expect(await ipam.ensureOwned('10.65.0.0/24', ip)).toBe('ok');
    await ipam.releaseOwned(owned[0].key);
    expect(await ipam.ownAddresses()).toEqual([]);
    // Back in the block: with the rest of the block taken, it is handed out again.
    const again = [];
    for (let i = 0; i < 15; i++) again.push((await ipam.requestAddress({ poolId, gateway: false })).split('/')[0]);
    expect(again).toContain(ip);
  });

  test('IPv6 pools hand out from /122 blocks, from the top of the subnet', async () => {
    const { ipam } = ipamOn(beds.cluster(), 'a', { local: await local() });
    const { poolId } = await ipam.requestPool({ pool: 'fd00:66::/64', v6: true });
    expect(await ipam.requestAddress({ poolId, gateway: true })).toBe('fd00:66::1/64');
    expect(await ipam.requestAddress({ poolId, gateway: false })).toBe('fd00:66::ffff:ffff:ffff:ffc0/64');
    expect(await blocks()).toEqual(['a fd00:66::ffff:ffff:ffff:ffc0/122']);
    await ipam.releaseAddress(poolId, 'fd00:66::ffff:ffff:ffff:ffc0');
    expect(await blocks()).toEqual(['a fd00:66::ffff:ffff:ffff:ffc0/122']);
  });

  test('a PoolID with another ip-range than the blocks tile is refused and changes nothing', async () => {
    const mine = await local();
    const { ipam } = ipamOn(beds.cluster(), 'a', { local: mine });
    const { poolId } = await ipam.requestPool({ pool: '10.66.0.0/24', v6: false });
    const ip = (await ipam.requestAddress({ poolId, gateway: false })).split('/')[0];
    await expect(ipam.releaseAddress('knit:10.66.0.0/24~10.66.0.0/25', ip)).rejects.toMatchObject({
      kind: 'conflict',
      message: 'pool 10.66.0.0/24 hands out from the whole subnet on this host, not ip-range 10.66.0.0/25; nothing was changed',
    });
    expect([...(await records(mine, keys.ledgerPrefix)).keys()]).toEqual([keys.handed('10.66.0.0_24', ip)]);
    expect(await blocks()).toEqual(['a 10.66.0.240/28']);
  });

  test('a pool too small for blocks keeps one record per address', async () => {
    const { ipam } = ipamOn(beds.cluster(), 'a', { local: await local() });
    const { poolId } = await ipam.requestPool({ pool: '10.63.0.0/26', v6: false });
    expect(await ipam.requestAddress({ poolId, gateway: false })).toBe('10.63.0.1/26');
    expect(await blocks()).toEqual([]);
    expect([...(await records<AddressRecord>(beds.cluster(), keys.addrs('10.63.0.0_26'))).values()]).toEqual([expect.objectContaining({ host: 'a', kind: 'dynamic' })]);
  });

  test('releasing the pool takes the host\'s blocks and ledger with it', async () => {
    const mine = await local();
    const a = ipamOn(beds.cluster(), 'a', { local: mine }).ipam;
    const b = ipamOn(beds.cluster(), 'b', { local: await local() }).ipam;
    const { poolId } = await a.requestPool({ pool: '10.64.0.0/24', v6: false });
    await b.requestPool({ pool: '10.64.0.0/24', v6: false });
    await a.requestAddress({ poolId, gateway: false });
    await b.requestAddress({ poolId, gateway: false });
    expect(await blocks()).toEqual(['a 10.64.0.240/28', 'b 10.64.0.224/28']);
    await a.releasePool(poolId);
    expect(await blocks()).toEqual(['b 10.64.0.224/28']);
    expect((await records(mine, keys.ledgerPrefix)).size).toBe(0);
    await b.releasePool(poolId);
    expect(await blocks()).toEqual([]);
  });
});
