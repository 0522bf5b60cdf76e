// Overlay networks through the real driver and route table on a real local store in a temp dir, with a recording
// stub for the kernel and firewall: without KNIT_ADVERTISE dockerd gets a sentence and nothing changes; with it,
// the segment is asked for with the pool's --ip-range.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Op } from '../../src/datapath/ops.js';
import { createLogger } from '../../src/log.js';
import type { Datapath } from '../../src/network/datapath.js';
import { keys, type NetworkRecord } from '../../src/network/records.js';
import { NetworkDriver, type OverlayControl } from '../../src/network/service.js';
import type { SegmentSpec } from '../../src/network/overlay/segments.js';
import type { IpamApi } from '../../src/protocol/api.js';
import { routeTable } from '../../src/protocol/routes.js';
import { createApp, listen } from '../../src/protocol/server.js';
import { openLocalStore } from '../../src/store/local.js';
import { encode } from '../../src/store/records.js';
import type { Store } from '../../src/store/types.js';
import { post } from '../support/client.js';

const OVERLAY = 'a1'.repeat(32);
const BRIDGE = 'b2'.repeat(32);
const EID = 'c3'.repeat(32);
const applied: Op[] = [];
const kernel: Datapath = {
  apply: async (ops) => void applied.push(...ops),
  remove: async () => undefined,
  links: async () => [],
  vxlanEntries: async () => ({ fdb: new Set(), neigh: new Map() }),
  flushConntrack: async () => undefined,
  setSysctl: async () => undefined,
};
const firewall = { syncNetwork: async () => undefined, removeNetwork: async () => undefined };
const ipam = {} as IpamApi;

let dir = '';
let store: Store;
let server: Server;
let socket = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'knit-no-advertise-'));
  store = await openLocalStore(join(dir, 'db'));
  const log = createLogger('error');
  const driver = new NetworkDriver({ store, kernel, firewall, log, boundPorts: async () => ({ tcp: new Set(), udp: new Set(), sctp: new Set() }) });
  socket = join(dir, 'knit.sock');
  server = await listen(createApp({ routes: routeTable({ network: driver, ipam, doctor: async () => ({}), status: async () => ({}) }), log }), socket);
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => void (applied.length = 0));

const createNetwork = (id: string, generic: Record<string, string>) => post(socket, '/NetworkDriver.CreateNetwork',
  `{"NetworkID":"${id}","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":${JSON.stringify(generic)}},` +
  '"IPv4Data":[{"AddressSpace":"knit-local","Gateway":"10.210.0.1/24","Pool":"10.210.0.0/24"}],"IPv6Data":[]}');

test('CreateNetwork of an overlay says KNIT_ADVERTISE is needed and creates nothing; a bridge network is created', async () => {
  const r = await createNetwork(OVERLAY, { 'knit.mode': 'overlay' });
  expect({ status: r.status, raw: r.raw }).toEqual({ status: 500, raw: '{"Err":"overlay networks need KNIT_ADVERTISE (this host\'s underlay address or interface)"}' });
  expect(await store.list('')).toEqual([]);
  expect(applied).toEqual([]);
  // Positive control: the same driver creates a bridge network, records it and programs the kernel.
  const ok = await createNetwork(BRIDGE, {});
  expect({ status: ok.status, raw: ok.raw }).toEqual({ status: 200, raw: '{}' });
  expect((await store.list(keys.networks)).map((e) => e.key)).toEqual([keys.network(BRIDGE)]);
  expect(applied.length).toBeGreaterThan(0);
});

test('CreateEndpoint on an overlay created while knit had KNIT_ADVERTISE names the network and what to do', async () => {
  const net: NetworkRecord = {
    id: OVERLAY, mode: 'overlay', bridge: 'kn-a1a1a1a1a1a1', icc: true, masquerade: true, internal: false, knitIpam: true, vni: 4096, vtep: '192.0.2.1',
    ipv4: [{ subnet: '10.210.0.0/24', gateway: '10.210.0.1/24' }], ipv6: [], createdAt: '2026-12-01T00:00:00.000Z',
  };
  await store.commit([{ key: keys.network(OVERLAY), value: encode(net) }]);
  const r = await post(socket, '/NetworkDriver.CreateEndpoint',
    `{"NetworkID":"${OVERLAY}","EndpointID":"${EID}","Interface":{"Address":"10.210.0.3/24","AddressIPv6":"","MacAddress":""},"Options":{}}`);
  const err = `network ${OVERLAY.slice(0, 12)} is an overlay, and this knit was started without KNIT_ADVERTISE (this host's underlay address or interface); restart knit with KNIT_ADVERTISE set to use it`;
  expect({ status: r.status, body: r.body }).toEqual({ status: 500, body: { Err: err } });
  expect(await store.list(keys.allEndpoints)).toEqual([]);
  expect(applied).toEqual([]);
  // DeleteNetwork still removes it here (dockerd deletes it anyway and only logs an error).
  const del = await post(socket, '/NetworkDriver.DeleteNetwork', `{"NetworkID":"${OVERLAY}"}`);
  expect({ status: del.status, raw: del.raw }).toEqual({ status: 200, raw: '{}' });
  expect(await store.get(keys.network(OVERLAY))).toBeUndefined();
});

test('with KNIT_ADVERTISE, an overlay on knit\'s IPAM asks for its segment with the pool\'s --ip-range', async () => {
  const asked: SegmentSpec[] = [];
  const overlay: OverlayControl = {
    vtep: '192.0.2.1', underlayMtu: 1500,
    defineSegment: async (spec) => (asked.push(structuredClone(spec)), 5005),
    leaveSegment: async () => undefined, reconcileSegments: async () => 0, attach: async () => undefined,
    detach: () => undefined, publish: async () => undefined, unpublish: async () => undefined,
    encrypt: async () => { throw new Error('not encrypted'); }, stopTunnel: async () => undefined,
  };
  const dir2 = await mkdtemp(join(tmpdir(), 'knit-overlay-range-'));
  const local = await openLocalStore(join(dir2, 'db'));
  try {
    const ranges: Record<string, string> = { '10.220.0.0/24': '10.220.0.128/25' };
    const driver = new NetworkDriver({
      store: local, kernel, firewall, log: createLogger('error'), overlay, poolRange: async (subnet) => ranges[subnet],
      boundPorts: async () => ({ tcp: new Set(), udp: new Set(), sctp: new Set() }),
    });
    const generic = { 'com.docker.network.generic': { 'knit.mode': 'overlay' } };
    await driver.createNetwork({ id: OVERLAY, options: generic, ipv4: [{ addressSpace: 'knit-local', pool: '10.220.0.0/24', aux: {} }], ipv6: [] });
    // Another IPAM: the range is unknown, so it is not compared.
    await driver.createNetwork({ id: BRIDGE, options: generic, ipv4: [{ addressSpace: 'default', pool: '10.230.0.0/24', aux: {} }], ipv6: [] });
    expect(asked.map((a) => [a.ipv4[0].subnet, a.ipRange])).toEqual([['10.220.0.0/24', '10.220.0.128/25'], ['10.230.0.0/24', undefined]]);
    expect(await driver.network(OVERLAY)).toMatchObject({ vni: 5005, vtep: '192.0.2.1', mtu: 1450, ipRange: '10.220.0.128/25' });
  } finally {
    await local.close();
    await rm(dir2, { recursive: true, force: true });
  }
});

test('-o encrypted: the segment is asked for encrypted, the VXLAN device binds the tunnel address on its own port with the WireGuard MTU, and the tunnel stops with the last encrypted network', async () => {
  const asked: SegmentSpec[] = [];
  const calls: string[] = [];
  const overlay: OverlayControl = {
    vtep: '192.0.2.1', underlayMtu: 1500,
    defineSegment: async (spec) => (asked.push(structuredClone(spec)), 5006),
    leaveSegment: async () => void calls.push('leave'), reconcileSegments: async () => 0, attach: async () => undefined,
    detach: () => undefined, publish: async () => undefined, unpublish: async () => undefined,
    encrypt: async () => (calls.push('encrypt'), { vtep: '169.254.64.1', mtu: 1390 }), stopTunnel: async () => void calls.push('stop'),
  };
  const dir2 = await mkdtemp(join(tmpdir(), 'knit-overlay-encrypted-'));
  const local = await openLocalStore(join(dir2, 'db'));
  try {
    const driver = new NetworkDriver({ store: local, kernel, firewall, log: createLogger('error'), overlay, boundPorts: async () => ({ tcp: new Set(), udp: new Set(), sctp: new Set() }) });
    await driver.createNetwork({ id: OVERLAY, options: { 'com.docker.network.generic': { 'knit.mode': 'overlay', encrypted: '' } }, ipv4: [{ pool: '10.240.0.0/24', aux: {} }], ipv6: [] });
    expect(asked[0].encrypted).toBe(true);
    expect(await driver.network(OVERLAY)).toMatchObject({ encrypted: true, vni: 5006, vtep: '169.254.64.1', mtu: 1390 });
    expect(applied.find((op) => op.op === 'vxlan-add')).toMatchObject({ local: '169.254.64.1', port: 4790, mtu: 1390, vni: 5006 });
    await driver.deleteNetwork(OVERLAY);
    expect(calls).toEqual(['encrypt', 'leave', 'stop']);
  } finally {
    await local.close();
    await rm(dir2, { recursive: true, force: true });
  }
});
