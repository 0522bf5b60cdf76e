// The route table behind the real HTTP adapter, against stub handlers: literal dockerd payloads in (as dockerd
// 20.10 sends them: no Content-Type, PascalCase), the exact domain call and the exact reply out.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conflict } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { IpamApi, NetworkApi } from '../../src/protocol/api.js';
import { routeTable } from '../../src/protocol/routes.js';
import { createApp, listen } from '../../src/protocol/server.js';
import { post } from '../support/client.js';

const NID = '4fb789de0c6b2f0a8a1f3e7e5c3d9b1a2f4e6d8c0b1a3e5f7d9c1b3a5e7f9d1c';
const EID = '1c9753fa2e4d6b8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d';
const calls: Array<[string, unknown]> = [];
let failWith: Error | undefined;
const stub = <T>(name: string, result: T) => async (...args: unknown[]): Promise<T> => {
  calls.push([name, args.length === 1 ? args[0] : args]);
  if (failWith) throw failWith;
  return result;
};
const network: NetworkApi = {
  createNetwork: stub('createNetwork', undefined),
  deleteNetwork: stub('deleteNetwork', undefined),
  createEndpoint: stub('createEndpoint', { mac: '02:11:22:33:44:55' }),
  endpointInfo: stub('endpointInfo', { hostInterface: 'kv-1c9753fa2e4d' }),
  deleteEndpoint: stub('deleteEndpoint', true),
  join: stub('join', { srcName: 'kc-1c9753fa2e4d', gateway: '10.210.0.1', disableGatewayService: false, staticRoutes: [] }),
  leave: stub('leave', undefined),
  programExternal: stub('programExternal', undefined),
  revokeExternal: stub('revokeExternal', undefined),
  addressReleased: stub('addressReleased', undefined),
};
const ipam: IpamApi = {
  requestPool: stub('requestPool', { poolId: 'knit:10.210.0.0/24', pool: '10.210.0.0/24' }),
  releasePool: stub('releasePool', undefined),
  requestAddress: stub('requestAddress', '10.210.0.1/24'),
  releaseAddress: stub('releaseAddress', undefined),
};

let dir = '';
let socket = '';
let server: Server;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'knit-routes-'));
  socket = join(dir, 'knit.sock');
  const routes = routeTable({ network, ipam, doctor: async () => ({}), status: async () => ({}) });
  server = await listen(createApp({ routes, log: createLogger('error') }), socket);
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  calls.length = 0;
  failWith = undefined;
});

/** Posts a literal body and returns the status, the raw reply and the domain calls it made. */
const send = async (path: string, raw: string) => {
  calls.length = 0;
  const r = await post(socket, path, raw);
  return { status: r.status, raw: r.raw, calls: [...calls] };
};

test('Activate and the capabilities are answered as dockerd expects', async () => {
  expect(await send('/Plugin.Activate', '')).toEqual({ status: 200, raw: '{"Implements":["NetworkDriver","IpamDriver"]}', calls: [] });
  expect((await send('/NetworkDriver.GetCapabilities', '')).raw).toBe('{"Scope":"local","ConnectivityScope":"local","GwAllocChecker":false}');
  expect((await send('/IpamDriver.GetDefaultAddressSpaces', '')).raw).toBe('{"LocalDefaultAddressSpace":"knit-local","GlobalDefaultAddressSpace":"knit-global"}');
});

test('RequestPool and the gateway RequestAddress (dockerd 20.10)', async () => {
  expect(await send('/IpamDriver.RequestPool', '{"AddressSpace":"knit-local","Pool":"","SubPool":"","Options":{},"V6":false}')).toEqual({
    status: 200,
    raw: '{"PoolID":"knit:10.210.0.0/24","Pool":"10.210.0.0/24","Data":{}}',
    calls: [['requestPool', { pool: undefined, subPool: undefined, v6: false }]],
  });
  const gw = '{"PoolID":"knit:10.210.0.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}';
  expect(await send('/IpamDriver.RequestAddress', gw)).toEqual({
    status: 200,
    raw: '{"Address":"10.210.0.1/24","Data":{}}',
    calls: [['requestAddress', { poolId: 'knit:10.210.0.0/24', address: undefined, gateway: true }]],
  });
  const plain = await send('/IpamDriver.RequestAddress', '{"PoolID":"knit:10.210.0.0/24","Address":"","Options":null}');
  expect(plain.calls).toEqual([['requestAddress', { poolId: 'knit:10.210.0.0/24', address: undefined, gateway: false }]]);
});

test('CreateNetwork (as dockerd 20.10 sends it, with -o knit.mode=overlay) becomes the domain request', async () => {
  const body = `{"NetworkID":"${NID}","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"knit.mode":"overlay"}},` +
    '"IPv4Data":[{"AddressSpace":"knit-local","Gateway":"10.210.0.1/24","Pool":"10.210.0.0/24"}],"IPv6Data":[]}';
  expect(await send('/NetworkDriver.CreateNetwork', body)).toEqual({
    status: 200,
    raw: '{}',
    calls: [['createNetwork', {
      id: NID,
      options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': { 'knit.mode': 'overlay' } },
      ipv4: [{ addressSpace: 'knit-local', pool: '10.210.0.0/24', gateway: '10.210.0.1/24', aux: {} }],
      ipv6: [],
    }]],
  });
});

test('CreateEndpoint fills in the MAC only when dockerd sent none', async () => {
  const opts = '"Options":{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}';
  const none = await send('/NetworkDriver.CreateEndpoint', `{"NetworkID":"${NID}","EndpointID":"${EID}","Interface":{"Address":"10.210.0.3/24","AddressIPv6":"","MacAddress":""},${opts}}`);
  expect(none).toEqual({
    status: 200,
    raw: '{"Interface":{"MacAddress":"02:11:22:33:44:55"}}',
    calls: [['createEndpoint', {
      networkId: NID, endpointId: EID, address: '10.210.0.3/24', addressV6: undefined, mac: undefined,
      options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] },
    }]],
  });
  const given = await send('/NetworkDriver.CreateEndpoint', `{"NetworkID":"${NID}","EndpointID":"${EID}","Interface":{"Address":"10.210.0.3/24","AddressIPv6":"","MacAddress":"02:42:ac:11:00:02"},${opts}}`);
  expect(given.raw).toBe('{"Interface":null}');
});

test('Join answers the veth peer, the eth prefix and the gateway', async () => {
  const body = `{"NetworkID":"${NID}","EndpointID":"${EID}","SandboxKey":"/var/run/docker/netns/a3127128ec08","Options":{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}`;
  const r = await send('/NetworkDriver.Join', body);
  expect(r.raw).toBe('{"InterfaceName":{"SrcName":"kc-1c9753fa2e4d","DstPrefix":"eth"},"DisableGatewayService":false,"Gateway":"10.210.0.1"}');
  expect(r.calls).toEqual([['join', { networkId: NID, endpointId: EID, sandboxKey: '/var/run/docker/netns/a3127128ec08', options: expect.any(Object) }]]);
});

test('teardown calls reach their handler with the IDs dockerd sent', async () => {
  const ids = `{"NetworkID":"${NID}","EndpointID":"${EID}"}`;
  expect(await send('/NetworkDriver.Leave', ids)).toEqual({ status: 200, raw: '{}', calls: [['leave', [NID, EID]]] });
  expect(await send('/NetworkDriver.DeleteEndpoint', ids)).toEqual({ status: 200, raw: '{}', calls: [['deleteEndpoint', [NID, EID]]] });
  expect(await send('/IpamDriver.ReleaseAddress', '{"PoolID":"knit:10.210.0.0/24","Address":"10.210.0.3"}')).toEqual({
    status: 200, raw: '{}', calls: [['addressReleased', ['10.210.0.0/24', '10.210.0.3']], ['releaseAddress', ['knit:10.210.0.0/24', '10.210.0.3']]],
  });
  expect(await send('/IpamDriver.ReleasePool', '{"PoolID":"knit:10.210.0.0/24"}')).toEqual({ status: 200, raw: '{}', calls: [['releasePool', 'knit:10.210.0.0/24']] });
  expect(await send('/NetworkDriver.DeleteNetwork', `{"NetworkID":"${NID}"}`)).toEqual({ status: 200, raw: '{}', calls: [['deleteNetwork', NID]] });
});

test('a handler error is a 500 with Err; IPAM replies carry it under Error as well', async () => {
  failWith = conflict('subnet 10.210.0.0/24 is already defined with ip-range (none) by another host; use the same --ip-range');
  const msg = JSON.stringify(failWith.message);
  const pool = await send('/IpamDriver.RequestPool', '{"AddressSpace":"knit-local","Pool":"10.210.0.0/24","SubPool":"10.210.0.128/25","Options":{},"V6":false}');
  expect(pool).toMatchObject({ status: 500, raw: `{"Err":${msg},"Error":${msg}}` });
  const net = await send('/NetworkDriver.DeleteNetwork', `{"NetworkID":"${NID}"}`);
  expect(net).toMatchObject({ status: 500, raw: `{"Err":${msg}}` });
});

test('a body that does not decode is refused before any handler runs, with the field named', async () => {
  const r = await send('/IpamDriver.RequestAddress', '{"Address":"","Options":null}');
  expect(r).toEqual({ status: 500, raw: '{"Err":"the request lacks PoolID","Error":"the request lacks PoolID"}', calls: [] });
  const n = await send('/NetworkDriver.Join', `{"NetworkID":"${NID}","EndpointID":"${EID}"}`);
  expect(n).toEqual({ status: 500, raw: '{"Err":"the request lacks SandboxKey"}', calls: [] });
});
