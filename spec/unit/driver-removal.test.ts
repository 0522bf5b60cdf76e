// DeleteEndpoint answers before the kernel has unregistered the endpoint's link (a real driver on a real local
// store, a kernel stub whose link removals finish only when the test lets them): the removal starts a moment
// later on its own, or at once when the next endpoint of that network or the network's removal waits for it;
// another network's endpoints do not wait.
import type { Op } from '../../src/datapath/ops.js';
import type { NetworkDriver } from '../../src/network/service.js';
import { type DriverBed, driverBed, stubKernel } from './driver-bed.js';

const NET = 'a1'.repeat(32);
const OTHER = 'b2'.repeat(32);
const [E1, E2, E3] = ['c3', 'd4', 'e5'].map((c) => c.repeat(32));

/** Each call the kernel got, in order; link removals wait until `finish()`. */
const calls: string[] = [];
let finish: () => void = () => undefined;
let gate: Promise<void> = Promise.resolve();
const kernel = stubKernel({
  apply: async (ops: Op[]) => void calls.push(`apply ${ops.map((o) => o.op).join(',')}`),
  remove: async (ops: Op[]) => {
    calls.push(`remove ${ops.map((o) => o.op).join(',')}`);
    if (ops.some((o) => o.op === 'link-del')) await gate;
    calls.push(`removed ${ops.map((o) => o.op).join(',')}`);
  },
});

let bed: DriverBed;
let driver: NetworkDriver;

const hold = (): void => {
  gate = new Promise((resolve) => (finish = resolve));
};
/** Whether `p` is still pending after everything queued so far has run. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  return !done;
}

beforeEach(async () => {
  calls.length = 0;
  gate = Promise.resolve();
  bed = await driverBed(kernel);
  driver = bed.driver;
  for (const [id, pool, name] of [[NET, '10.212.0.0/24', 'kn-one'], [OTHER, '10.213.0.0/24', 'kn-two']]) {
    await driver.createNetwork({ id, options: { 'com.docker.network.bridge.name': name }, ipv4: [{ addressSpace: 'knit-local', pool, gateway: pool.replace('0/24', '1/24'), aux: {} }], ipv6: [] });
  }
  await driver.createEndpoint({ networkId: NET, endpointId: E1, address: '10.212.0.3/24', options: {} });
});
afterEach(async () => {
  finish();
  await driver.settled();
  await bed.close();
});

test('DeleteEndpoint answers while the link is still going, and the record is gone at once', async () => {
  hold();
  await driver.deleteEndpoint(NET, E1);
  expect(await driver.endpoints(NET)).toEqual([]);
  // Not started yet (the reply and dockerd's next call go first); then on its own, a moment later.
  expect(calls.slice(-1)).toEqual(['apply veth-add']);
  await new Promise((r) => setTimeout(r, 150));
  expect(calls.slice(-1)).toEqual(['remove link-del']);
  const settled = driver.settled();
  expect(await pending(settled)).toBe(true);
  finish();
  await settled;
  expect(calls.slice(-1)).toEqual(['removed link-del']);
});

test('the next endpoint of the network waits for the removal; one of another network does not', async () => {
  hold();
  await driver.deleteEndpoint(NET, E1);
  const other = driver.createEndpoint({ networkId: OTHER, endpointId: E3, address: '10.213.0.3/24', options: {} });
  await other;
  const next = driver.createEndpoint({ networkId: NET, endpointId: E2, address: '10.212.0.3/24', options: {} });
  expect(await pending(next)).toBe(true);
  expect(calls.filter((c) => c.startsWith('apply veth-add'))).toHaveLength(2);
  finish();
  await next;
  expect(calls.indexOf('removed link-del')).toBeLessThan(calls.lastIndexOf('apply veth-add'));
});

test('the network\'s removal waits for its endpoints\' links', async () => {
  hold();
  await driver.deleteEndpoint(NET, E1);
  const gone = driver.deleteNetwork(NET);
  expect(await pending(gone)).toBe(true);
  finish();
  await gone;
  expect(calls.indexOf('removed link-del')).toBeLessThan(calls.lastIndexOf('remove link-del'));
  expect(await driver.network(NET)).toBeUndefined();
});

test('a failed removal is logged, not thrown, and nothing stays pending', async () => {
  const d = bed.withKernel({ ...kernel, remove: async () => Promise.reject(new Error('no such device')) });
  await expect(d.deleteEndpoint(NET, E1)).resolves.toBe(true);
  await expect(d.settled()).resolves.toBeUndefined();
  expect(await d.endpoints(NET)).toEqual([]);
});
