// ReleaseAddress through the real driver on a real local store (a recording stub for the kernel): an endpoint no
// container joined that still holds the released address is one dockerd gave up on, and goes with its veth; a
// joined endpoint keeps its IPv4 address; endpoints of another subnet are not looked at. And the MAC an address
// comes back with.
import type { Op } from '../../src/datapath/ops.js';
import { endpointMac } from '../../src/network/plan.js';
import type { NetworkDriver } from '../../src/network/service.js';
import { type DriverBed, driverBed, stubKernel } from './driver-bed.js';

const NET = 'a1'.repeat(32);
const OTHER = 'b2'.repeat(32);
const [E1, E2, E3] = ['c3', 'd4', 'e5'].map((c) => c.repeat(32));
const removed: Op[] = [];
const kernel = stubKernel({ apply: async () => undefined, remove: async (ops) => void removed.push(...ops) });

let bed: DriverBed;
let driver: NetworkDriver;

beforeEach(async () => {
  removed.length = 0;
  bed = await driverBed(kernel);
  driver = bed.driver;
  await driver.createNetwork({ id: NET, options: {}, ipv4: [{ addressSpace: 'knit-local', pool: '10.210.0.0/24', gateway: '10.210.0.1/24', aux: {} }], ipv6: [] });
  await driver.createNetwork({ id: OTHER, options: { 'com.docker.network.bridge.name': 'kn-other' }, ipv4: [{ addressSpace: 'knit-local', pool: '10.211.0.0/24', gateway: '10.211.0.1/24', aux: {} }], ipv6: [] });
});
afterEach(async () => {
  await driver.settled();
  await bed.close();
});

const ids = async (): Promise<string[]> => (await driver.endpoints()).map((e) => e.id).sort();

test('a release of an address an unjoined endpoint holds removes that endpoint and its veth; others stay', async () => {
  await driver.createEndpoint({ networkId: NET, endpointId: E1, address: '10.210.0.3/24', options: {} });
  await driver.createEndpoint({ networkId: NET, endpointId: E2, address: '10.210.0.4/24', options: {} });
  await driver.createEndpoint({ networkId: OTHER, endpointId: E3, address: '10.211.0.3/24', options: {} });
  expect(await ids()).toEqual([E1, E2, E3].sort());
  await driver.addressReleased('10.210.0.0/24', '10.210.0.3');
  expect(await ids()).toEqual([E2, E3].sort());
  await driver.settled();
  expect(removed.length).toBeGreaterThan(0);
  // The same address in another subnet's pool is not this endpoint's.
  removed.length = 0;
  await driver.addressReleased('10.210.0.0/24', '10.211.0.3');
  expect(await ids()).toEqual([E2, E3].sort());
  expect(removed).toEqual([]);
});

test('a joined endpoint keeps its IPv4 address when dockerd releases it; once left, a release removes it', async () => {
  await driver.createEndpoint({ networkId: NET, endpointId: E1, address: '10.210.0.3/24', options: {} });
  await driver.join({ networkId: NET, endpointId: E1, sandboxKey: '/var/run/docker/netns/abc', options: {} });
  await driver.addressReleased('10.210.0.0/24', '10.210.0.3');
  expect(await driver.endpoints()).toEqual([expect.objectContaining({ id: E1, address: '10.210.0.3/24', sandboxKey: '/var/run/docker/netns/abc' })]);
  expect(removed).toEqual([]);
  // Control: after Leave (DeleteEndpoint lost in a crash), the release means dockerd is done with it.
  await driver.leave(NET, E1);
  await driver.addressReleased('10.210.0.0/24', '10.210.0.3');
  expect(await ids()).toEqual([]);
  await driver.settled();
  expect(removed.length).toBeGreaterThan(0);
});

describe('endpoint MACs', () => {
  test('from the IPv4 address, so an address handed out again comes back with the same MAC; from the ID without one', () => {
    expect(endpointMac(E1, '10.210.0.3/24')).toBe('02:6b:0a:d2:00:03');
    expect(endpointMac(E2, '10.210.0.3/24')).toBe('02:6b:0a:d2:00:03');
    expect(endpointMac(E1, '10.210.0.4/24')).not.toBe(endpointMac(E1, '10.210.0.3/24'));
    const byId = endpointMac(E1);
    expect(byId).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(byId).not.toBe(endpointMac(E2));
    expect(endpointMac(E1, '10.210.0.300/24')).toBe(byId);
  });

  test('an endpoint gets the MAC of its address, or the one dockerd sends; a replay gets the recorded one', async () => {
    expect(await driver.createEndpoint({ networkId: NET, endpointId: E1, address: '10.210.0.3/24', options: {} })).toEqual({ mac: '02:6b:0a:d2:00:03' });
    expect(await driver.createEndpoint({ networkId: NET, endpointId: E2, address: '10.210.0.4/24', mac: '02:00:00:00:00:09', options: {} })).toEqual({ mac: '02:00:00:00:00:09' });
    expect(await driver.createEndpoint({ networkId: NET, endpointId: E2, address: '10.210.0.4/24', options: {} })).toEqual({ mac: '02:00:00:00:00:09' });
    await expect(driver.createEndpoint({ networkId: NET, endpointId: E2, address: '10.210.0.4/24', mac: '02:00:00:00:00:0a', options: {} })).rejects.toThrow(/already exists with other addresses/);
    expect((await driver.endpoints()).map((e) => e.mac).sort()).toEqual(['02:00:00:00:00:09', '02:6b:0a:d2:00:03']);
  });
});
