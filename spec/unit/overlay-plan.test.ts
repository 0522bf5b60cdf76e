// The overlay's pure parts: the entries a VXLAN device must hold, the diff against the kernel, the segment
// merge (incl. the ip-range check), VNI choice, and endpoint records and their keys.
import { K, parseEndpointKey } from '../../src/network/overlay/keys.js';
import { parseRemote } from '../../src/network/overlay/peers.js';
import { chooseVni, desiredEntries, diffEntries, FIRST_VNI, mergeSegment, type SegmentRecord } from '../../src/network/overlay/plan.js';
import { endpointKey, endpointValue } from '../../src/network/overlay/publication.js';

const ZERO = '00:00:00:00:00:00';
const a1 = { id: 'e1', host: 'ha', vtep: '192.0.2.1', mac: '02:00:00:00:00:01', ip: '10.50.0.2' };
const a2 = { id: 'e2', host: 'ha', vtep: '192.0.2.1', mac: '02:00:00:00:00:02', ip: '10.50.0.3', ipv6: 'fd00::3' };
const b1 = { id: 'e3', host: 'hb', vtep: '192.0.2.2', mac: '02:00:00:00:00:03' };

describe('desired entries and the diff', () => {
  test('each remote MAC points at its host; one flood entry per host; neighbours for every address', () => {
    const d = desiredEntries([a1, a2, b1]);
    expect([...d.fdb].sort()).toEqual([
      `02:00:00:00:00:01 192.0.2.1`, `02:00:00:00:00:02 192.0.2.1`, `02:00:00:00:00:03 192.0.2.2`, `${ZERO} 192.0.2.1`, `${ZERO} 192.0.2.2`,
    ].sort());
    expect([...d.neigh]).toEqual([['10.50.0.2', a1.mac], ['10.50.0.3', a2.mac], ['fd00::3', a2.mac]]);
    expect(desiredEntries([])).toEqual({ fdb: new Set(), neigh: new Map() });
  });

  test('the diff adds what is missing, removes what no store record wants, and replaces a moved neighbour', () => {
    const current = { fdb: new Set([`${a1.mac} 192.0.2.1`, `${ZERO} 192.0.2.1`, `02:00:00:00:00:09 192.0.2.9`]), neigh: new Map([['10.50.0.2', '02:00:00:00:00:07'], ['10.50.0.9', '02:00:00:00:00:09']]) };
    const { add, del } = diffEntries('kx-4096', current, desiredEntries([a1]));
    expect(add).toEqual([{ op: 'neigh-add', dev: 'kx-4096', ip: '10.50.0.2', mac: a1.mac }]);
    expect(del).toEqual([
      { op: 'fdb-del', dev: 'kx-4096', mac: '02:00:00:00:00:09', dst: '192.0.2.9' },
      { op: 'neigh-del', dev: 'kx-4096', ip: '10.50.0.9' },
    ]);
    expect(diffEntries('kx-4096', desiredEntries([a1, b1]), desiredEntries([a1, b1]))).toEqual({ add: [], del: [] });
  });
});

describe('segment merge', () => {
  const first: SegmentRecord = { subnet: '10.50.0.0/24', vni: 5001, range: '10.50.0.128/25', gateway: '10.50.0.1/24', hosts: ['ha'] };
  test('no record yet: the caller defines one', () => {
    expect(mergeSegment(undefined, { subnet: '10.50.0.0/24' })).toBeUndefined();
  });
  test('the same settings (or ones left unsaid) join the first definition', () => {
    expect(mergeSegment(first, { subnet: '10.50.0.0/24', vni: 5001, range: '10.50.0.128/25', gateway: '10.50.0.1/24' })).toBe(first);
    expect(mergeSegment(first, { subnet: '10.50.0.0/24' })).toBe(first);
  });
  test.each([
    [{ vni: 5002 }, 'knit.vni 5001, not 5002'],
    [{ range: '10.50.0.0/25' }, 'ip-range 10.50.0.128/25, not 10.50.0.0/25'],
    [{ range: '' }, 'ip-range 10.50.0.128/25, not (none)'],
    [{ gateway: '10.50.0.254/24' }, 'gateway 10.50.0.1/24, not 10.50.0.254/24'],
  ])('another %p is refused naming the existing definition', (other, what) => {
    expect(() => mergeSegment(first, { subnet: '10.50.0.0/24', ...other })).toThrow(
      `overlay 10.50.0.0/24 already exists with ${what}; create it with the same settings on every host`,
    );
  });
  test('a range asked for where the first definition had none is refused too', () => {
    const plain: SegmentRecord = { subnet: '10.50.0.0/24', vni: 5001 };
    expect(() => mergeSegment(plain, { subnet: '10.50.0.0/24', range: '10.50.0.0/25' })).toThrow('ip-range (none), not 10.50.0.0/25');
    expect(mergeSegment(plain, { subnet: '10.50.0.0/24', range: '' })).toBe(plain);
  });
  test('the lowest free VNI from FIRST_VNI', () => {
    expect(chooseVni(new Set())).toBe(FIRST_VNI);
    expect(chooseVni(new Set([FIRST_VNI, FIRST_VNI + 1, FIRST_VNI + 3]))).toBe(FIRST_VNI + 2);
  });
});

describe('endpoint records', () => {
  test('key and value as another host reads them back', () => {
    const key = endpointKey({ hostId: 'ha', net: { ipv4: [{ subnet: '10.50.0.0/24' }] }, ep: { id: 'e2' } });
    expect(key).toBe('overlay/endpoints/10.50.0.0_24/ha/e2');
    const value = endpointValue('192.0.2.1', { mac: a2.mac, address: '10.50.0.3/24', addressV6: 'fd00::3/64' });
    expect(JSON.parse(value)).toEqual({ v: 1, vtep: '192.0.2.1', mac: a2.mac, ip: '10.50.0.3', ipv6: 'fd00::3' });
    expect(parseRemote(key, value)).toEqual({ segment: '10.50.0.0_24', remote: { id: 'e2', host: 'ha', vtep: '192.0.2.1', mac: a2.mac, ip: '10.50.0.3', ipv6: 'fd00::3' } });
  });
  test('a deletion carries only its key; keys of another shape and bad values are ignored', () => {
    expect(parseRemote(`${K.endpoints}s/hb/e9`, undefined)).toEqual({ segment: 's', remote: { id: 'e9', host: 'hb', vtep: '', mac: '' } });
    expect(parseEndpointKey(`${K.endpoints}s/hb`)).toBeUndefined();
    expect(parseEndpointKey(`${K.endpoints}s/hb/e9/extra`)).toBeUndefined();
    expect(parseEndpointKey('hosts/hb')).toBeUndefined();
    expect(parseRemote(`${K.endpoints}s/hb/e9`, '{not json')).toBeUndefined();
  });
});
