// IPAM pools on a real embedded store: conflicts, ranges, default pools, release (no root, no netns).
import { parseCidr } from '../../src/addr/cidr.js';
import type { PoolRecord } from '../../src/ipam/records.js';
import { type Bed, ipamOn, openBed, records } from './ipam-bed.js';

let bed: Bed;
beforeEach(async () => (bed = await openBed()));
afterEach(() => bed.close());

const pool = (key: string) => records<PoolRecord>(bed.store, 'ipam/pools/').then((m) => m.get(`ipam/pools/${key}`));

describe('pool requests', () => {
  test('a subnet is created once; asking again on the same host is a conflict and changes nothing', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    await expect(ipam.requestPool({ pool: '10.30.0.0/24', v6: false })).resolves.toEqual({ poolId: 'knit:10.30.0.0/24', pool: '10.30.0.0/24' });
    const before = await bed.store.list('ipam/');
    await expect(ipam.requestPool({ pool: '10.30.0.0/24', v6: false })).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(/10\.30\.0\.0\/24 is already used by another knit network on this host/),
    });
    expect(await bed.store.list('ipam/')).toEqual(before);
    expect((await pool('10.30.0.0_24'))?.hosts).toEqual(['a']);
  });

  test('an overlapping subnet is refused and names the pool it overlaps', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    await ipam.requestPool({ pool: '10.30.0.0/16', v6: false });
    await expect(ipam.requestPool({ pool: '10.30.4.0/24', v6: false })).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(/overlaps 10\.30\.0\.0\/16/),
    });
    expect([...(await records(bed.store, 'ipam/pools/')).keys()]).toEqual(['ipam/pools/10.30.0.0_16']);
  });

  test('a second host joins the same subnet; a different ip-range from it is a conflict', async () => {
    await ipamOn(bed.store, 'a').ipam.requestPool({ pool: '10.31.0.0/24', subPool: '10.31.0.128/25', v6: false });
    const b = ipamOn(bed.store, 'b').ipam;
    await expect(b.requestPool({ pool: '10.31.0.0/24', v6: false })).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(/already defined with ip-range 10\.31\.0\.128\/25 by another host/),
    });
    await expect(b.requestPool({ pool: '10.31.0.0/24', subPool: '10.31.0.128/25', v6: false })).resolves.toEqual({
      poolId: 'knit:10.31.0.0/24~10.31.0.128/25',
      pool: '10.31.0.0/24',
    });
    expect((await pool('10.31.0.0_24'))?.hosts).toEqual(['a', 'b']);
  });

  test.each([
    [{ pool: '10.32.0.0/24', subPool: '10.33.0.0/28', v6: false }, /ip-range 10\.33\.0\.0\/28 is not inside subnet 10\.32\.0\.0\/24/],
    [{ subPool: '10.32.0.0/28', v6: false }, /an --ip-range \(SubPool\) needs a --subnet/],
    [{ pool: '10.32.0.0/24', v6: true }, /subnet 10\.32\.0\.0\/24 is IPv4 but the request is for an IPv6 pool/],
    [{ pool: '10.32.0.1/24', v6: false }, /has host bits set; did you mean 10\.32\.0\.0\/24/],
  ])('bad input %j is refused and nothing is stored', async (req, message) => {
    await expect(ipamOn(bed.store, 'a').ipam.requestPool(req)).rejects.toMatchObject({ kind: 'bad-request', message: expect.stringMatching(message) });
    expect(await bed.store.list('ipam/')).toEqual([]);
  });

  test('a pool without --subnet is carved from the default ranges, around on-link networks, until none is left', async () => {
    const defaultPools = [{ base: parseCidr('10.208.0.0/22'), size: 24 }];
    const { ipam } = ipamOn(bed.store, 'a', { defaultPools, reserved: [parseCidr('10.208.1.0/24')] });
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await ipam.requestPool({ v6: false })).pool);
    expect(got).toEqual(['10.208.0.0/24', '10.208.2.0/24', '10.208.3.0/24']);
    await expect(ipam.requestPool({ v6: false })).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(/no free IPv4 pool left in KNIT_DEFAULT_POOLS \(10\.208\.0\.0\/22:24\)/),
    });
  });
});

describe('pool release', () => {
  test('the last host releasing a pool removes it with every address; the pool can then be made again', async () => {
    const released: string[] = [];
    const { ipam } = ipamOn(bed.store, 'a', { released });
    const { poolId } = await ipam.requestPool({ pool: '10.34.0.0/24', v6: false });
    await ipam.requestAddress({ poolId, gateway: true });
    await ipam.requestAddress({ poolId, gateway: false });
    expect(await bed.store.list('ipam/addrs/')).toHaveLength(2);
    await ipam.releasePool(poolId);
    expect(await bed.store.list('ipam/')).toEqual([]);
    expect(released).toEqual(['10.34.0.0/24']);
    await expect(ipam.requestPool({ pool: '10.34.0.0/24', v6: false })).resolves.toMatchObject({ pool: '10.34.0.0/24' });
  });

  test('a host leaving a shared pool takes its own addresses and leaves the gateway and the others', async () => {
    const a = ipamOn(bed.store, 'a').ipam;
    const b = ipamOn(bed.store, 'b').ipam;
    const { poolId } = await a.requestPool({ pool: '10.35.0.0/24', v6: false });
    await b.requestPool({ pool: '10.35.0.0/24', v6: false });
    expect(await a.requestAddress({ poolId, gateway: true })).toBe('10.35.0.1/24');
    const fromA = await a.requestAddress({ poolId, gateway: false });
    const fromB = await b.requestAddress({ poolId, gateway: false });
    await b.releasePool(poolId);
    const left = [...(await records(bed.store, 'ipam/addrs/')).keys()].map((k) => k.split('/').pop());
    expect(left.sort()).toEqual(['10.35.0.1', fromA.split('/')[0]].sort());
    expect(left).not.toContain(fromB.split('/')[0]);
    expect((await pool('10.35.0.0_24'))?.hosts).toEqual(['a']);
  });

  test('releasing with the wrong ip-range is a conflict and releases nothing', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    await ipam.requestPool({ pool: '10.36.0.0/24', subPool: '10.36.0.0/26', v6: false });
    await expect(ipam.releasePool('knit:10.36.0.0/24')).rejects.toMatchObject({ kind: 'conflict', message: expect.stringMatching(/nothing was released/) });
    expect((await pool('10.36.0.0_24'))?.hosts).toEqual(['a']);
  });
});
