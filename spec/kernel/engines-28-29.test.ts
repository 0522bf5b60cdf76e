// dockerd 28 and 29 as a remote driver sees them: their literal payloads replayed into the whole daemon in a
// throwaway netns (no 29.x engine runs here: Debian has none), with replies, records and kernel state checked.
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { parseConfig } from '../../src/config.js';
import { type Daemon, startDaemon } from '../../src/daemon.js';
import { dockerId, post } from '../support/client.js';
import { assertThrowawayNetns } from './guard.js';

let dir: string;
let socket: string;
let daemon: Daemon | undefined;
const logged: Array<Record<string, unknown>> = [];

const linkExists = async (name: string) => (await execa('ip', ['link', 'show', name], { reject: false })).exitCode === 0;
const bridgeOf = (nid: string) => `kn-${nid.slice(0, 12)}`;
const warnings = () => logged.filter((l) => l.level === 'warn').map((l) => String(l.message));

/** The daemon's log lines, kept for the assertions on warnings. */
function capturingLogger(): winston.Logger {
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line));
      done();
    },
  });
  return winston.createLogger({ level: 'info', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
}

/** CreateNetwork as dockerd 28.5 sends it (enable_ipv4 is always present from 28.0 on). */
function createNetwork(nid: string, pool: string, gateway: string, generic: Record<string, string>, v6?: { pool: string; gateway: string }) {
  return post(socket, '/NetworkDriver.CreateNetwork', {
    NetworkID: nid,
    Options: { 'com.docker.network.enable_ipv4': true, 'com.docker.network.enable_ipv6': !!v6, 'com.docker.network.generic': generic },
    IPv4Data: [{ AddressSpace: 'knit-local', Gateway: gateway, Pool: pool }],
    IPv6Data: v6 ? [{ AddressSpace: 'knit-local', Gateway: v6.gateway, Pool: v6.pool }] : [],
  });
}

const requestPool = (pool: string, v6 = false) => post(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: pool, SubPool: '', Options: {}, V6: v6 });
const requestAddress = (poolId: string, address: string, options: Record<string, string> | null = null) =>
  post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: address, Options: options });

beforeAll(async () => {
  assertThrowawayNetns();
  dir = await mkdtemp(join(tmpdir(), 'knit-engines-'));
  socket = join(dir, 'knit.sock');
  // No Docker engine and no upstream resolver: names come from the plugin calls alone, and nothing leaves the namespace.
  await writeFile(join(dir, 'resolv.conf'), '# no upstreams\n');
  const config = parseConfig({
    KNIT_SOCKET: socket, KNIT_STATE_DIR: join(dir, 'state'), KNIT_LOG_LEVEL: 'info',
    KNIT_DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`, KNIT_RESOLV_CONF: join(dir, 'resolv.conf'),
  });
  daemon = await startDaemon(config, capturingLogger());
});

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

// First: any later RequestAddress with an endpoint name would have fired the one warning already.
test('the first call showing a 29.x engine logs one loud warning naming the fix (29.0.3)', async () => {
  const pool = (await requestPool('10.73.0.0/24')).body.PoolID;
  const before = warnings().filter((w) => w.includes('29.0.3')).length;
  // A 28.x endpoint request (Options null) says nothing about 29.
  await requestAddress(pool, '', null);
  expect(warnings().filter((w) => w.includes('29.0.3'))).toHaveLength(before);
  await requestAddress(pool, '', { 'com.docker.network.endpoint.name': 'web' });
  await requestAddress(pool, '', { 'com.docker.network.endpoint.name': 'db' });
  const found = logged.filter((l) => l.level === 'warn' && String(l.message).includes('29.0.3'));
  expect(found).toHaveLength(1);
  expect(found[0]).toMatchObject({ fixedIn: '29.0.3', affected: '29.0.0-29.0.2' });
  expect(String(found[0].message)).toMatch(/29\.0\.0, 29\.0\.1 and 29\.0\.2 crash .*upgrade dockerd to 29\.0\.3 or later/);
  for (const a of ['10.73.0.1', '10.73.0.2', '10.73.0.3']) await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: pool, Address: a });
  await post(socket, '/IpamDriver.ReleasePool', { PoolID: pool });
});

describe('network options libnetwork 28+ passes on', () => {
  test('advertise_addr_nmsgs/_ms (validated by libnetwork for every driver) are accepted and ignored', async () => {
    // Sent by dockerd 28.5.2 for `docker network create -d knit --ipam-driver knit -o com.docker.network.advertise_addr_nmsgs=1
    // -o com.docker.network.advertise_addr_ms=200 adv` (captured on the test bed); knit used to refuse it.
    const nid = 'cdebe4dc75a13dd4c4a6996260ebc4773b1ecc097be870100a049557a7cac903';
    const literal = `{"NetworkID":"${nid}","Options":{"com.docker.network.enable_ipv4":true,"com.docker.network.enable_ipv6":false,` +
      '"com.docker.network.generic":{"com.docker.network.advertise_addr_ms":"200","com.docker.network.advertise_addr_nmsgs":"1"}},' +
      '"IPv4Data":[{"AddressSpace":"knit-local","Gateway":"10.70.0.1/24","Pool":"10.70.0.0/24"}],"IPv6Data":[]}';
    expect(await post(socket, '/NetworkDriver.CreateNetwork', literal)).toMatchObject({ status: 200, body: {} });
    expect(await linkExists(bridgeOf(nid))).toBe(true);
    expect((await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid })).status).toBe(200);
    expect(await linkExists(bridgeOf(nid))).toBe(false);
  });

  test('--opt encrypted on a bridge network, as dockerd 28.5.2 sends it, is refused: encryption is for overlays', async () => {
    const nid = '10a80061eea83134bc844c380f4cdfb87191e33afbf68668413a032d4fe446c7';
    const literal = `{"NetworkID":"${nid}","Options":{"com.docker.network.enable_ipv4":true,"com.docker.network.enable_ipv6":false,` +
      '"com.docker.network.generic":{"encrypted":""}},"IPv4Data":[{"AddressSpace":"knit-local","Gateway":"10.71.0.1/24","Pool":"10.71.0.0/24"}],"IPv6Data":[]}';
    const r = await post(socket, '/NetworkDriver.CreateNetwork', literal);
    expect(r.status).toBe(500);
    expect(r.body.Err).toBe('option encrypted only applies to knit.mode=overlay networks (a bridge network never leaves its host)');
    expect(await linkExists(bridgeOf(nid))).toBe(false);
    expect((await post(socket, '/knit.Status', {})).body.networks).toEqual([]);
  });

  test.each([
    [{ 'knit.mdoe': 'overlay' }, /unknown option "knit\.mdoe"; knit accepts .*knit\.mode/],
    [{ 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' }, /unknown option "com\.docker\.network\.bridge\.gateway_mode_ipv4"/],
    // Docker's `--opt encrypted` takes no value or a boolean.
    [{ 'knit.mode': 'overlay', encrypted: 'yes please' }, /option encrypted="yes please" is not a boolean/],
  ])('%p is refused with a message, and nothing is made', async (generic, message) => {
    const nid = dockerId();
    const r = await createNetwork(nid, '10.71.0.0/24', '10.71.0.1/24', generic);
    expect(r.status).not.toBe(200);
    expect(r.body.Err).toMatch(message);
    expect(await linkExists(bridgeOf(nid))).toBe(false);
    expect((await post(socket, '/knit.Status', {})).body.networks).toEqual([]);
  });
});

describe('IPAM requests of dockerd 29', () => {
  test('RequestPool "0.0.0.0/N" and "::/N" mean any /N from the default pools', async () => {
    const v4 = await requestPool('0.0.0.0/20');
    expect(v4).toMatchObject({ status: 200, body: { PoolID: 'knit:10.208.0.0/20', Pool: '10.208.0.0/20' } });
    // A second one is another /20 (the first is held), and a default-size request avoids both.
    expect((await requestPool('0.0.0.0/20')).body.Pool).toBe('10.208.16.0/20');
    expect((await requestPool('')).body.Pool).toBe('10.208.32.0/24');
    expect((await requestPool('::/56', true)).body).toMatchObject({ PoolID: 'knit:fd6b:6e69:7400::/56', Pool: 'fd6b:6e69:7400::/56' });
    for (const id of ['knit:10.208.0.0/20', 'knit:10.208.16.0/20', 'knit:10.208.32.0/24', 'knit:fd6b:6e69:7400::/56']) {
      expect((await post(socket, '/IpamDriver.ReleasePool', { PoolID: id })).status).toBe(200);
    }
    expect((await requestPool('0.0.0.0/24')).body.Pool).toBe('10.208.0.0/24');
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: 'knit:10.208.0.0/24' });
  });

  test('a size no default range can hold is refused, and no pool is taken', async () => {
    const r = await requestPool('0.0.0.0/8');
    expect(r.status).not.toBe(200);
    expect(r.body.Err).toMatch(/no KNIT_DEFAULT_POOLS range can hold a \/8 IPv4 subnet/);
    expect((await requestPool('')).body.Pool).toBe('10.208.0.0/24');
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: 'knit:10.208.0.0/24' });
  });

  test('--ip on a subnet knit chose (29.1): the address is given inside the pool, refused outside it', async () => {
    const pool = (await requestPool('0.0.0.0/24')).body;
    expect(pool.Pool).toBe('10.208.0.0/24');
    expect((await requestAddress(pool.PoolID, '10.208.0.50', { 'com.docker.network.endpoint.name': 'web' })).body).toEqual({ Address: '10.208.0.50/24', Data: {} });
    const taken = await requestAddress(pool.PoolID, '10.208.0.50', { 'com.docker.network.endpoint.name': 'web2' });
    expect(taken.body.Err).toMatch(/already in use/);
    const outside = await requestAddress(pool.PoolID, '10.209.0.50', { 'com.docker.network.endpoint.name': 'web3' });
    expect(outside.status).not.toBe(200);
    expect(outside.body.Err).toMatch(/10\.209\.0\.50/);
    // Only the one address was taken: the next automatic one is the first of the pool.
    expect((await requestAddress(pool.PoolID, '')).body.Address).toBe('10.208.0.1/24');
    for (const a of ['10.208.0.50', '10.208.0.1']) await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: a });
    await post(socket, '/IpamDriver.ReleasePool', { PoolID: pool.PoolID });
  });
});

test('29\'s IPv6 release without a driver call: the live endpoint drops the address, which is free again', async () => {
  const nid = dockerId();
  const eid = dockerId();
  const p4 = (await requestPool('10.72.0.0/24')).body.PoolID;
  const p6 = (await requestPool('fd00:72::/64', true)).body.PoolID;
  await requestAddress(p4, '', { RequestAddressType: 'com.docker.network.gateway' });
  await requestAddress(p6, '', { RequestAddressType: 'com.docker.network.gateway' });
  expect((await createNetwork(nid, '10.72.0.0/24', '10.72.0.1/24', {}, { pool: 'fd00:72::/64', gateway: 'fd00:72::1/64' })).status).toBe(200);
  const a4 = (await requestAddress(p4, '')).body.Address;
  const a6 = (await requestAddress(p6, '')).body.Address;
  expect(a6).toBe('fd00:72::2/64');
  const ep = await post(socket, '/NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: a4, AddressIPv6: a6, MacAddress: '' }, Options: {} });
  expect(ep.status).toBe(200);
  // A running container's endpoint (an unjoined one holding a released address is an orphan, removed at once).
  expect((await post(socket, '/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: '/var/run/docker/netns/k29v6', Options: {} })).status).toBe(200);
  const info = async () => (await post(socket, '/NetworkDriver.EndpointOperInfo', { NetworkID: nid, EndpointID: eid })).body.Value;
  expect(await info()).toMatchObject({ address: a4, addressV6: a6 });
  // While the endpoint holds it, the address cannot be handed out.
  expect((await requestAddress(p6, 'fd00:72::2')).body.Err).toMatch(/already in use/);

  // A sysctl took the address off the interface; dockerd 29 releases it through IPAM only.
  expect((await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: p6, Address: 'fd00:72::2' })).body).toEqual({});
  const after = await info();
  expect(after.address).toBe(a4);
  expect(after.addressV6).toBeUndefined();
  expect(warnings().some((w) => w.includes('IPv6 address released by dockerd while the endpoint lives'))).toBe(true);
  // The sweep does not claim it back for the endpoint: another container can have it.
  expect((await post(socket, '/knit.Doctor', {})).status).toBe(200);
  expect((await requestAddress(p6, 'fd00:72::2')).body).toEqual({ Address: 'fd00:72::2/64', Data: {} });
  // A release after DeleteEndpoint (every other engine, every other case) leaves other endpoints alone.
  expect((await post(socket, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
  expect((await post(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
  for (const [pool, a] of [[p4, a4], [p6, 'fd00:72::2'], [p4, '10.72.0.1'], [p6, 'fd00:72::1']]) {
    expect((await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: pool, Address: a.split('/')[0] })).status).toBe(200);
  }
  expect((await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid })).status).toBe(200);
  for (const pool of [p4, p6]) expect((await post(socket, '/IpamDriver.ReleasePool', { PoolID: pool })).status).toBe(200);
  expect(await linkExists(bridgeOf(nid))).toBe(false);
});

const SANDBOX = 'knt-k29';

/** One A query to knit's resolver from the sandbox namespace: rcode and addresses. */
async function ask(name: string): Promise<{ rcode: string; answers: string[] }> {
  const spec = { server: '169.254.53.53', queries: [{ name }] };
  const out = (await execa('ip', ['netns', 'exec', SANDBOX, 'node', 'spec/support/dns-client.mjs', JSON.stringify(spec)])).stdout;
  const [reply] = JSON.parse(out) as Array<{ rcode: string; answers?: Array<{ data: string }> }>;
  return { rcode: reply.rcode, answers: (reply.answers ?? []).map((a) => a.data) };
}

/** Asks until `done` holds (at most about 2 s: names are published through the store), then gives the last reply. */
async function askUntil(name: string, done: (r: { rcode: string; answers: string[] }) => boolean): Promise<{ rcode: string; answers: string[] }> {
  let r = await ask(name);
  for (let i = 0; i < 40 && !done(r); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    r = await ask(name);
  }
  return r;
}

test('29\'s endpoint name (RequestAddress) resolves from the Join on, with no Docker engine to ask; gone at Leave', async () => {
  const nid = dockerId();
  const eid = dockerId();
  const pool = (await requestPool('10.76.0.0/24')).body.PoolID;
  await requestAddress(pool, '', { RequestAddressType: 'com.docker.network.gateway' });
  expect((await createNetwork(nid, '10.76.0.0/24', '10.76.0.1/24', {})).status).toBe(200);
  // Literal option of dockerd 29 (moby#50586): the container's name, as typed.
  const address = (await requestAddress(pool, '', { 'com.docker.network.endpoint.name': 'Web29' })).body.Address;
  const ip = address.split('/')[0];
  expect((await post(socket, '/NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: address, AddressIPv6: '', MacAddress: '' }, Options: {} })).status).toBe(200);
  // What dockerd does with the container end: into the sandbox, with the address and a default route.
  const peer = `knc${eid.slice(0, 12)}`;
  await execa('ip', ['netns', 'del', SANDBOX], { reject: false });
  await execa('ip', ['netns', 'add', SANDBOX]);
  try {
    await execa('ip', ['link', 'set', peer, 'netns', SANDBOX]);
    await execa('ip', ['-n', SANDBOX, 'addr', 'add', address, 'dev', peer]);
    await execa('ip', ['-n', SANDBOX, 'link', 'set', peer, 'up']);
    await execa('ip', ['-n', SANDBOX, 'route', 'add', 'default', 'via', '10.76.0.1']);
    // Control: before its Join the address is nobody knit knows (and no host address): refused.
    expect(await ask('web29')).toEqual({ rcode: 'REFUSED', answers: [] });
    expect((await post(socket, '/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: `/run/netns/${SANDBOX}`, Options: {} })).status).toBe(200);
    expect(await askUntil('web29', (r) => r.answers.length > 0)).toEqual({ rcode: 'NOERROR', answers: [ip] });
    // Control: a name no request carried is not knit's (forwarded; with no upstream, SERVFAIL at once).
    expect(await ask('db29')).toEqual({ rcode: 'SERVFAIL', answers: [] });
    const names = (await post(socket, '/knit.Status', {})).body.names;
    expect(names.engine.connected).toBe(false);
    // Answered from this host's own record; a bridge network's names never go to the store (no other host asks).
    expect(names.records).toBe(1);
    expect(names.published).toBe(0);
    expect((await post(socket, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
    expect(await askUntil('web29', (r) => r.rcode === 'REFUSED')).toEqual({ rcode: 'REFUSED', answers: [] });
    expect((await post(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).status).toBe(200);
  } finally {
    await execa('ip', ['netns', 'del', SANDBOX], { reject: false });
  }
  for (const a of [ip, '10.76.0.1']) expect((await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: pool, Address: a })).status).toBe(200);
  expect((await post(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: nid })).status).toBe(200);
  expect((await post(socket, '/IpamDriver.ReleasePool', { PoolID: pool })).status).toBe(200);
});
