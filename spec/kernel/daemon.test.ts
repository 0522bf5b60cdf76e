// The whole daemon in a throwaway netns: literal dockerd payloads in, exact replies and kernel state out.
import { execa } from 'execa';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config.js';
import { type Daemon, startDaemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { endpointMac } from '../../src/network/plan.js';
import { dockerId, post, send } from '../support/client.js';
import { waitFor } from '../support/proc.js';
import { assertThrowawayNetns } from './guard.js';


let dir: string;
let socket: string;
let daemon: Daemon | undefined;

const links = async () => JSON.parse((await execa('ip', ['-j', '-d', 'addr', 'show'])).stdout) as Array<{ ifname: string; master?: string; mtu: number; addr_info: Array<{ local: string; prefixlen: number }> }>;
const link = async (name: string) => (await links()).find((l) => l.ifname === name);
const saved = async (table: string) => (await execa('iptables-save', ['-t', table])).stdout;

async function start(): Promise<void> {
  const config = parseConfig({ KNIT_SOCKET: socket, KNIT_STATE_DIR: join(dir, 'state'), KNIT_LOG_LEVEL: 'error' });
  daemon = await startDaemon(config, createLogger('error'));
}

async function stop(): Promise<void> {
  await daemon?.stop();
  daemon = undefined;
}

beforeAll(async () => {
  assertThrowawayNetns();
  dir = await mkdtemp(join(tmpdir(), 'knit-daemon-'));
  socket = join(dir, 'knit.sock');
  await start();
});

afterAll(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the call sequence dockerd sends (docs/protocol.md §2)', () => {
  const nid = dockerId();
  const eid = dockerId();
  const bridge = `kn-${nid.slice(0, 12)}`;
  let poolId = '';

  test('Activate and capabilities', async () => {
    expect(await post(socket, '/Plugin.Activate')).toMatchObject({ status: 200, body: { Implements: ['NetworkDriver', 'IpamDriver'] } });
    expect((await post(socket, '/NetworkDriver.GetCapabilities')).body).toEqual({ Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: false });
    expect((await post(socket, '/IpamDriver.GetCapabilities')).body).toEqual({ RequiresMACAddress: false, RequiresRequestReplay: false });
    expect((await post(socket, '/IpamDriver.GetDefaultAddressSpaces')).body).toEqual({ LocalDefaultAddressSpace: 'knit-local', GlobalDefaultAddressSpace: 'knit-global' });
  });

  test('the socket is root-only', async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
  });

  test('pool, gateway and network', async () => {
    const pool = await post(socket, '/IpamDriver.RequestPool', '{"AddressSpace":"knit-local","Pool":"","SubPool":"","Options":{},"V6":false}\n');
    expect(pool).toMatchObject({ status: 200, body: { PoolID: 'knit:10.208.0.0/24', Pool: '10.208.0.0/24', Data: {} } });
    poolId = pool.body.PoolID;
    const gw = await post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
    expect(gw.body).toEqual({ Address: '10.208.0.1/24', Data: {} });
    const net = await post(socket, '/NetworkDriver.CreateNetwork', {
      NetworkID: nid,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'knit-local', Gateway: '10.208.0.1/24', Pool: '10.208.0.0/24' }],
      IPv6Data: [],
    });
    expect(net).toMatchObject({ status: 200, body: {} });
    const br = await link(bridge);
    expect(br?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain('10.208.0.1/24');
    expect(await saved('filter')).toContain(`-A KNIT-FORWARD -o ${bridge} -j KNIT-IN-${nid.slice(0, 12)}`);
    expect(await saved('nat')).toContain(`-A KNIT-POSTROUTING -s 10.208.0.0/24 ! -o ${bridge} -j MASQUERADE`);
  });

  test('endpoint, join, published port, leave, delete', async () => {
    const addr = await post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
    expect(addr.body).toEqual({ Address: '10.208.0.2/24', Data: {} });
    const ep = await post(socket, '/NetworkDriver.CreateEndpoint', {
      NetworkID: nid, EndpointID: eid,
      Interface: { Address: '10.208.0.2/24', AddressIPv6: '', MacAddress: '' },
      Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] },
    });
    expect(ep.body).toEqual({ Interface: { MacAddress: '02:6b:0a:d0:00:02' } });
    expect(endpointMac(eid, '10.208.0.2/24')).toBe('02:6b:0a:d0:00:02');
    const host = await link(`knh${eid.slice(0, 12)}`);
    expect(host?.master).toBe(bridge);
    const join = await post(socket, '/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: '/var/run/docker/netns/a3127128ec08', Options: {} });
    expect(join.body).toEqual({ InterfaceName: { SrcName: `knc${eid.slice(0, 12)}`, DstPrefix: 'eth' }, Gateway: '10.208.0.1', DisableGatewayService: false });
    const portmap = [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 18080, HostPortEnd: 18080 }];
    expect((await post(socket, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: nid, EndpointID: eid, Options: { 'com.docker.network.portmap': portmap } })).status).toBe(200);
    expect(await saved('nat')).toContain('-A KNIT-DNAT -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.208.0.2:80');
    expect((await post(socket, '/NetworkDriver.EndpointOperInfo', { NetworkID: nid, EndpointID: eid })).body.Value).toMatchObject({ address: '10.208.0.2/24' });
    expect((await post(socket, '/NetworkDriver.RevokeExternalConnectivity', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
    expect(await saved('nat')).not.toContain('--dport 18080');
    expect((await post(socket, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid })).body).toEqual({});
    expect((await post(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).body).toEqual({});
    // The reply does not wait for the kernel to unregister the veth (docs/protocol.md); it goes a moment later.
    const deleted = Date.now();
    await waitFor('the veth to go after DeleteEndpoint', async () => (await link(`knh${eid.slice(0, 12)}`)) === undefined, { timeoutMs: 5_000, intervalMs: 20 });
    expect(Date.now() - deleted).toBeLessThan(2_000);
    // Replays of teardown calls succeed and change nothing.
    expect((await post(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
    expect((await post(socket, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
    expect((await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: '10.208.0.2' })).body).toEqual({});
  });

  test('network removal leaves nothing', async () => {
    expect((await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: '10.208.0.1' })).status).toBe(200);
    expect((await post(socket, '/IpamDriver.ReleasePool', { PoolID: poolId })).status).toBe(200);
    expect((await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid })).status).toBe(200);
    expect(await link(bridge)).toBeUndefined();
    expect(await saved('filter')).not.toContain(nid.slice(0, 12));
    expect(await saved('nat')).not.toContain('10.208.0.0/24');
    expect((await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid })).status).toBe(200);
    // The pool is free again: the next dynamic request gets the same subnet.
    const again = await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: '', SubPool: '', Options: {}, V6: false });
    expect(again.body.Pool).toBe('10.208.0.0/24');
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: again.body.PoolID });
  });
});

describe('bad input gets a clear error and changes nothing', () => {
  test.each([
    ['/NetworkDriver.CreateNetwork', '{not json', /not valid JSON/],
    ['/NetworkDriver.CreateNetwork', '[1,2]', /must be a JSON object/],
    ['/NetworkDriver.CreateNetwork', '{}', /lacks NetworkID/],
    ['/NetworkDriver.CreateNetwork', '{"NetworkID":"../../etc"}', /64 lowercase hex/],
    ['/NetworkDriver.CreateEndpoint', { NetworkID: 'a'.repeat(64), EndpointID: 5 }, /EndpointID must be a string/],
    ['/NetworkDriver.Join', { NetworkID: 'a'.repeat(64), EndpointID: 'b'.repeat(64), SandboxKey: '/x' }, /not known to knit/],
  ])('%s %p', async (path, body, msg) => {
    const before = await links();
    const r = await post(socket, path, body);
    expect(r.status).toBe(500);
    expect(r.body.Err).toMatch(msg);
    expect((await links()).length).toBe(before.length);
  });

  test('IPAM errors carry Error as well as Err', async () => {
    const r = await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: '10.1.0.1/24', V6: false });
    expect(r.status).toBe(500);
    expect(r.body.Err).toMatch(/host bits set/);
    expect(r.body.Error).toBe(r.body.Err);
  });

  test('unknown paths are 404, GET is 404', async () => {
    expect((await post(socket, '/NetworkDriver.Frobnicate', '{}')).status).toBe(404);
    expect((await send({ socket, method: 'GET', path: '/Plugin.Activate' })).status).toBe(404);
    expect((await send({ socket, method: 'GET', path: '/NetworkDriver.GetCapabilities' })).status).toBe(404);
    // Control: the same paths answer a POST.
    expect((await post(socket, '/Plugin.Activate')).status).toBe(200);
    expect((await post(socket, '/NetworkDriver.GetCapabilities')).status).toBe(200);
  });

  test('an unknown -o option or a bad bridge name creates nothing', async () => {
    for (const generic of [{ 'com.docker.network.bridge.name': '-evil' }, { 'com.docker.network.bridge.name': 'a'.repeat(16) }, { 'com.docker.network.bridge.name': 'br;reboot' }, { frob: '1' }]) {
      const before = await links();
      const r = await post(socket, '/NetworkDriver.CreateNetwork', { NetworkID: dockerId(), Options: { 'com.docker.network.generic': generic }, IPv4Data: [{ Pool: '10.9.0.0/24', Gateway: '10.9.0.1/24' }] });
      expect(r.status).toBe(500);
      expect(r.body.Err).toMatch(/bridge\.name|unknown option|interface name/);
      expect((await links()).length).toBe(before.length);
    }
  });

  test('a body over 1 MB is refused and knit keeps serving', async () => {
    const r = await post(socket, '/NetworkDriver.CreateNetwork', `{"NetworkID":"${'a'.repeat(2_000_000)}"}`);
    expect(r.status).toBe(500);
    expect(r.body.Err).toMatch(/larger than/);
    expect((await post(socket, '/Plugin.Activate')).status).toBe(200);
  });
});

describe('IPAM under concurrency and across restarts', () => {
  test('20 concurrent requests get 20 distinct addresses; a restart keeps them', async () => {
    const pool = (await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: '10.77.0.0/24', SubPool: '', V6: false })).body.PoolID;
    const replies = await Promise.all([...Array(20)].map(() => post(socket, '/IpamDriver.RequestAddress', { PoolID: pool, Address: '' })));
    const addrs = replies.map((r) => r.body.Address);
    expect(new Set(addrs).size).toBe(20);
    await stop();
    await start();
    const next = await post(socket, '/IpamDriver.RequestAddress', { PoolID: pool, Address: '' });
    expect(addrs).not.toContain(next.body.Address);
    const dup = await post(socket, '/IpamDriver.RequestAddress', { PoolID: pool, Address: addrs[0].split('/')[0] });
    expect(dup.body.Err).toMatch(/already in use/);
    for (const a of [...addrs, next.body.Address]) await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: pool, Address: a.split('/')[0] });
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: pool });
  });

  test('an overlapping --subnet is refused naming both', async () => {
    const a = await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: '10.60.0.0/16', V6: false });
    const b = await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: '10.60.5.0/24', V6: false });
    expect(b.body.Err).toBe('subnet 10.60.5.0/24 overlaps 10.60.0.0/16, which knit already holds; choose another --subnet');
    const c = await post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: '10.60.0.0/16', V6: false });
    expect(c.body.Err).toMatch(/already used by another knit network on this host/);
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: a.body.PoolID });
  });
});

describe('restart reconciliation', () => {
  test('a bridge deleted by hand comes back; an orphan knit link goes', async () => {
    const nid = dockerId();
    const bridge = `kn-${nid.slice(0, 12)}`;
    await post(socket, '/NetworkDriver.CreateNetwork', { NetworkID: nid, Options: {}, IPv4Data: [{ Pool: '10.88.0.0/24', Gateway: '10.88.0.1/24' }] });
    await stop();
    await execa('ip', ['link', 'del', bridge]);
    await execa('ip', ['link', 'add', 'knorphan', 'type', 'bridge']);
    await execa('ip', ['link', 'set', 'knorphan', 'alias', `knit:net:${'c'.repeat(12)}`]);
    await start();
    expect((await link(bridge))?.addr_info.map((a) => a.local)).toContain('10.88.0.1');
    expect(await link('knorphan')).toBeUndefined();
    await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid });
    expect(await link(bridge)).toBeUndefined();
  });
});
