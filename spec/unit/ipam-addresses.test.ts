// IPAM addresses on a real embedded store: gateway, static and dynamic claims, ip-ranges, exhaustion, release.
import type { AddressRecord, PoolRecord } from '../../src/ipam/records.js';
import { type Bed, ipamOn, openBed, records } from './ipam-bed.js';

let bed: Bed;
beforeEach(async () => (bed = await openBed()));
afterEach(() => bed.close());

const addrs = async (sk: string) => records<AddressRecord>(bed.store, `ipam/addrs/${sk}/`);

describe('gateway', () => {
  test('the first gateway is the lowest free address; a second host gets the same one and may not choose another', async () => {
    const a = ipamOn(bed.store, 'a').ipam;
    const b = ipamOn(bed.store, 'b').ipam;
    const { poolId } = await a.requestPool({ pool: '10.40.0.0/24', v6: false });
    await b.requestPool({ pool: '10.40.0.0/24', v6: false });
    expect(await a.requestAddress({ poolId, gateway: true })).toBe('10.40.0.1/24');
    expect(await b.requestAddress({ poolId, gateway: true })).toBe('10.40.0.1/24');
    await expect(b.requestAddress({ poolId, gateway: true, address: '10.40.0.254' })).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(/already has gateway 10\.40\.0\.1 .*use --gateway 10\.40\.0\.1/),
    });
    const pool = (await records<PoolRecord>(bed.store, 'ipam/pools/')).get('ipam/pools/10.40.0.0_24');
    expect(pool?.gateway).toBe('10.40.0.1');
    expect([...(await addrs('10.40.0.0_24')).values()]).toEqual([expect.objectContaining({ host: 'a', kind: 'gateway' })]);
  });

  test('a chosen gateway is kept, and the gateway is not released with a container address', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    const { poolId } = await ipam.requestPool({ pool: '10.41.0.0/24', v6: false });
    expect(await ipam.requestAddress({ poolId, gateway: true, address: '10.41.0.254' })).toBe('10.41.0.254/24');
    await ipam.releaseAddress(poolId, '10.41.0.254');
    expect([...(await addrs('10.41.0.0_24')).keys()]).toEqual(['ipam/addrs/10.41.0.0_24/10.41.0.254']);
  });
});

describe('static and dynamic addresses', () => {
  test('dynamic addresses come from the ip-range only, and its exhaustion is a clear conflict', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    const { poolId } = await ipam.requestPool({ pool: '10.42.0.0/24', subPool: '10.42.0.128/30', v6: false });
    expect(await ipam.requestAddress({ poolId, gateway: true })).toBe('10.42.0.1/24');
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await ipam.requestAddress({ poolId, gateway: false }));
    expect(got).toEqual(['10.42.0.128/24', '10.42.0.129/24', '10.42.0.130/24', '10.42.0.131/24']);
    await expect(ipam.requestAddress({ poolId, gateway: false })).rejects.toMatchObject({
      kind: 'conflict',
      message: 'no free address left in ip-range 10.42.0.128/30; remove containers or use a larger subnet',
    });
    expect((await addrs('10.42.0.0_24')).size).toBe(5);
  });

  test('a static address outside the ip-range is allowed; a taken one, one outside the subnet, or the network address is not', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    const { poolId } = await ipam.requestPool({ pool: '10.43.0.0/24', subPool: '10.43.0.128/25', v6: false });
    expect(await ipam.requestAddress({ poolId, gateway: false, address: '10.43.0.5' })).toBe('10.43.0.5/24');
    await expect(ipam.requestAddress({ poolId, gateway: false, address: '10.43.0.5' })).rejects.toMatchObject({
      kind: 'conflict',
      message: 'address 10.43.0.5 is already in use in 10.43.0.0/24',
    });
    await expect(ipam.requestAddress({ poolId, gateway: false, address: '10.44.0.5' })).rejects.toMatchObject({
      kind: 'bad-request',
      message: 'address 10.44.0.5 is not in subnet 10.43.0.0/24',
    });
    await expect(ipam.requestAddress({ poolId, gateway: false, address: '10.43.0.255' })).rejects.toMatchObject({
      kind: 'bad-request',
      message: 'address 10.43.0.255 is the network or broadcast address of 10.43.0.0/24',
    });
    expect([...(await addrs('10.43.0.0_24')).entries()]).toEqual([['ipam/addrs/10.43.0.0_24/10.43.0.5', expect.objectContaining({ host: 'a', kind: 'static' })]]);
  });

  test('a released address is not handed out again at once (round robin), and is once the rest are taken', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    const { poolId } = await ipam.requestPool({ pool: '10.45.0.0/29', v6: false });
    const first = await ipam.requestAddress({ poolId, gateway: false });
    expect(first).toBe('10.45.0.1/29');
    await ipam.releaseAddress(poolId, '10.45.0.1');
    expect((await addrs('10.45.0.0_29')).size).toBe(0);
    const next = [];
    for (let i = 0; i < 6; i++) next.push(await ipam.requestAddress({ poolId, gateway: false }));
    expect(next).toEqual(['10.45.0.2/29', '10.45.0.3/29', '10.45.0.4/29', '10.45.0.5/29', '10.45.0.6/29', '10.45.0.1/29']);
  });

  test('a host cannot release an address another host holds', async () => {
    const a = ipamOn(bed.store, 'a').ipam;
    const b = ipamOn(bed.store, 'b');
    const { poolId } = await a.requestPool({ pool: '10.46.0.0/24', v6: false });
    await b.ipam.requestPool({ pool: '10.46.0.0/24', v6: false });
    const ip = (await a.requestAddress({ poolId, gateway: false })).split('/')[0];
    await b.ipam.releaseAddress(poolId, ip);
    expect((await addrs('10.46.0.0_24')).get(`ipam/addrs/10.46.0.0_24/${ip}`)).toMatchObject({ host: 'a' });
    expect(b.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: 'release of an address held by another host ignored' }));
  });

  test('an address in a pool that is not allocated is not found; IPv6 pools hand out addresses too', async () => {
    const { ipam } = ipamOn(bed.store, 'a');
    await expect(ipam.requestAddress({ poolId: 'knit:10.47.0.0/24', gateway: false })).rejects.toMatchObject({ kind: 'not-found' });
    const { poolId } = await ipam.requestPool({ pool: 'fd00:47::/64', v6: true });
    expect(await ipam.requestAddress({ poolId, gateway: true })).toBe('fd00:47::1/64');
    expect(await ipam.requestAddress({ poolId, gateway: false })).toBe('fd00:47::2/64');
  });
});
