// Macvlan networks across two hosts whose `ul0` sits on one L2 segment (the underlay, standing in for a LAN), with
// an outside machine on that LAN, coordinated through a real etcd.
import { IMAGE, run, startHost, stopAll, waitFor, type Host } from '../support/testbed.js';
import { connectHosts } from '../support/underlay.js';
import { Knit } from '../support/knit.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { deleteNetns } from '../support/reap.js';
import { post } from '../support/client.js';

const LAN = '198.18.0.0/24';
const STORE_IP = '198.18.0.250';
/** The outside machine, and the LAN's router (which does not exist: nothing is routed here). */
const OUTSIDE_IP = '198.18.0.200';
const ROUTER = '198.18.0.254';
const OUTSIDE = 'knt-out-lan';
/** Containers get addresses from here; it holds both hosts' own addresses (.1 and .2), which knit must skip. */
const RANGE = '198.18.0.0/26';
let hosts: Host[];
let knits: Knit[];
let etcd: EtcdServer;
let hostIps: string[];

const [H1, H2] = [0, 1];
const docker = (h: number, args: string[], opts = {}) => hosts[h].docker(args, opts);
const create = (h: number, name: string, opts: string[], subnet = LAN, parent = 'ul0') =>
  docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=macvlan', '-o', `parent=${parent}`, ...opts, '--subnet', subnet, name], { reject: false });
const runOn = (h: number, name: string, net = 'mv', extra: string[] = []) =>
  docker(h, ['run', '-d', '--name', name, '--network', net, '--stop-timeout', '1', ...extra, IMAGE, 'sleep', '600'], { reject: false });
const ipOf = async (h: number, name: string, net = 'mv') => (await docker(h, ['inspect', '-f', `{{.NetworkSettings.Networks.${net}.IPAddress}}`, name])).stdout.trim();
const macOf = async (h: number, name: string, net = 'mv') => (await docker(h, ['inspect', '-f', `{{.NetworkSettings.Networks.${net}.MacAddress}}`, name])).stdout.trim();
const ping = async (h: number, from: string, to: string) => (await docker(h, ['exec', from, 'ping', '-c', '1', '-W', '2', to], { reject: false })).exitCode === 0;
const outside = (argv: string[]) => run(['nsenter', `--net=/run/netns/${OUTSIDE}`, '--', ...argv], { reject: false, timeoutMs: 20_000 });
const outsidePings = async (ip: string) => (await outside(['busybox', 'ping', '-c', '1', '-W', '2', ip])).exitCode === 0;
const hostPings = async (h: number, ip: string) => (await hosts[h].exec(['ping', '-c', '1', '-W', '2', ip], { reject: false })).exitCode === 0;
const macvlans = async (h: number) => (await hosts[h].exec(['ip', '-o', '-d', 'link', 'show', 'type', 'macvlan'])).stdout.trim();
const made = (r: { exitCode: number; stderr: string }) => expect(r.stderr.trim() === '' ? r.exitCode : r.stderr).toBe(0);

/** A machine on the LAN itself: a port of the underlay's switch, like the hosts' ul0. */
async function addOutside(): Promise<void> {
  await run(['ip', 'netns', 'add', OUTSIDE]);
  await run(['ip', '-n', OUTSIDE, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'u-lan', 'netns', 'knt-underlay']);
  await run(['ip', '-n', 'knt-underlay', 'link', 'set', 'u-lan', 'master', 'knt-ul', 'up']);
  await run(['ip', '-n', OUTSIDE, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
  for (const dev of ['lo', 'eth0']) await run(['ip', '-n', OUTSIDE, 'link', 'set', dev, 'up']);
}

beforeAll(async () => {
  hosts = [];
  for (const name of ['mva', 'mvb']) {
    const h = await startHost({ name });
    await h.exec(['iptables', '-P', 'FORWARD', 'DROP']);
    hosts.push(h);
  }
  hostIps = await connectHosts(hosts, LAN);
  await run(['ip', '-n', 'knt-underlay', 'addr', 'add', `${STORE_IP}/24`, 'dev', 'knt-ul']);
  etcd = await startEtcd({ netns: 'knt-underlay', host: STORE_IP });
  await addOutside();
  knits = hosts.map((h) => new Knit(h, { KNIT_STORE: `etcd://${etcd.endpoint}` }));
  for (const k of knits) await k.start();
  for (const h of [H1, H2]) made(await create(h, 'mv', ['--ip-range', RANGE, '--gateway', ROUTER]));
});

afterAll(async () => {
  for (const k of knits ?? []) await k.stop().catch(() => undefined);
  await etcd?.dispose();
  await deleteNetns(OUTSIDE);
  await stopAll();
});

test('the outside machine reaches containers on both hosts directly, and they see its own address (no NAT)', async () => {
  expect(await runOn(H1, 'c1')).toMatchObject({ exitCode: 0 });
  expect(await runOn(H2, 'c2')).toMatchObject({ exitCode: 0 });
  const [ip1, ip2] = [await ipOf(H1, 'c1'), await ipOf(H2, 'c2')];
  for (const ip of [ip1, ip2]) await waitFor(`the outside machine to reach ${ip}`, () => outsidePings(ip), { timeoutMs: 15_000, intervalMs: 500 });
  // The container answered the outside machine's own address: it had to resolve that address on the LAN, and
  // it knows nothing else (the router is .254, which does not exist). With NAT it would have seen its host.
  const outsideMac = /link\/ether (\S+)/.exec((await run(['ip', '-n', OUTSIDE, 'link', 'show', 'eth0'])).stdout)![1];
  for (const [h, name] of [[H1, 'c1'], [H2, 'c2']] as const) {
    const neigh = (await docker(h, ['exec', name, 'ip', 'neigh'])).stdout;
    expect(neigh).toContain(`${OUTSIDE_IP} dev eth0 lladdr ${outsideMac}`);
    expect(neigh).not.toContain(`${hostIps[h]} `);
  }
});

test('containers on the two hosts reach each other and the outside machine; one host\'s containers reach each other', async () => {
  const ip2 = await ipOf(H2, 'c2');
  expect(await ping(H1, 'c1', ip2)).toBe(true);
  expect(await ping(H2, 'c2', await ipOf(H1, 'c1'))).toBe(true);
  expect(await ping(H2, 'c2', OUTSIDE_IP)).toBe(true);
  expect(await runOn(H1, 'c1b')).toMatchObject({ exitCode: 0 });
  expect(await ping(H1, 'c1', await ipOf(H1, 'c1b'))).toBe(true);
  const route = (await docker(H1, ['exec', 'c1', 'ip', 'route'])).stdout;
  expect(route).toContain(`default via ${ROUTER}`);
  await docker(H1, ['rm', '-f', 'c1b']);
});

test('30 concurrent starts over both hosts get 30 distinct addresses and MACs, none a host\'s own', async () => {
  const names = [H1, H2].flatMap((h) => [...Array(15)].map((_, i) => ({ h, name: `burst${h}x${i}` })));
  const results = await Promise.all(names.map(({ h, name }) => runOn(h, name)));
  expect(results.map((r) => r.stderr.trim()).filter(Boolean)).toEqual([]);
  const ips = await Promise.all(names.map(({ h, name }) => ipOf(h, name)));
  const macs = await Promise.all(names.map(({ h, name }) => macOf(h, name)));
  expect(new Set(ips).size).toBe(30);
  expect(new Set(macs).size).toBe(30);
  expect(ips.filter((ip) => hostIps.includes(ip))).toEqual([]);
  expect(ips.every((ip) => /^198\.18\.0\.([1-9]|[1-5]\d|6[0-2])$/.test(ip))).toBe(true);
  for (const h of [H1, H2]) await docker(h, ['rm', '-f', ...names.filter((n) => n.h === h).map((n) => n.name)]);
});

test('published ports are refused with a message that says why', async () => {
  const r = await docker(H1, ['run', '--rm', '--network', 'mv', '-p', '8080:80', IMAGE, 'true'], { reject: false });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/macvlan networks have no published ports/);
});

test('a container publishing ports on a knit bridge can be connected to the macvlan network, and its address serves the next container once it goes', async () => {
  made(await docker(H1, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '--subnet', '10.77.0.0/24', 'mvbr'], { reject: false }));
  made(await runOn(H1, 'pub', 'mvbr', ['-p', '80']));
  // Refused before: the connect failed and left the macvlan link in the running container.
  made(await docker(H1, ['network', 'connect', 'mv', 'pub'], { reject: false }));
  const ip = await ipOf(H1, 'pub');
  expect(ip).toMatch(/^198\.18\.0\./);
  expect(await ping(H1, 'pub', OUTSIDE_IP)).toBe(true);
  made(await docker(H1, ['network', 'disconnect', 'mv', 'pub'], { reject: false }));
  // The next container given that address brings its link up (a link left behind with the address's MAC stops it).
  made(await runOn(H1, 'next', 'mv', ['--ip', ip]));
  expect(await ping(H1, 'next', OUTSIDE_IP)).toBe(true);
  await docker(H1, ['rm', '-f', 'pub', 'next'], { reject: false });
  await docker(H1, ['network', 'rm', 'mvbr'], { reject: false });
});

test('a host cannot reach its own containers without the host leg (another host can)', async () => {
  const ip1 = await ipOf(H1, 'c1');
  expect(await hostPings(H2, ip1)).toBe(true);
  expect(await hostPings(H1, ip1)).toBe(false);
});

test('removing the containers and the network leaves no macvlan link on either host', async () => {
  await docker(H1, ['rm', '-f', 'c1']);
  await docker(H2, ['rm', '-f', 'c2']);
  for (const h of [H1, H2]) await docker(h, ['network', 'rm', 'mv']);
  expect(await macvlans(H1)).toBe('');
  expect(await macvlans(H2)).toBe('');
});

test('the host leg lets the host reach its containers, and goes with its network', async () => {
  made(await create(H1, 'mvh', ['--ip-range', RANGE, '--gateway', ROUTER, '-o', 'knit.macvlan.host=true']));
  expect(await runOn(H1, 'h1', 'mvh')).toMatchObject({ exitCode: 0 });
  const ip = await ipOf(H1, 'h1', 'mvh');
  await waitFor('host 1 to reach its container through the host leg', () => hostPings(H1, ip), { timeoutMs: 10_000, intervalMs: 500 });
  expect((await hosts[H1].exec(['ip', 'route', 'show', `${ip}/32`])).stdout).toMatch(new RegExp(`dev kn-[0-9a-f]{12} .*src ${hostIps[H1]}`));
  // knit doctor puts back a host leg someone deleted, with its route (negative control: unreachable without it).
  const leg = /dev (kn-[0-9a-f]{12})/.exec((await hosts[H1].exec(['ip', 'route', 'show', `${ip}/32`])).stdout)![1];
  await hosts[H1].exec(['ip', 'link', 'del', leg]);
  expect(await hostPings(H1, ip)).toBe(false);
  const doctor = await post(knits[H1].socket, '/knit.Doctor', {}, 20_000);
  expect(JSON.stringify(doctor.body)).toContain(`host leg ${leg} of macvlan network`);
  await waitFor('host 1 to reach its container again', () => hostPings(H1, ip), { timeoutMs: 10_000, intervalMs: 500 });
  // The LAN still reaches the host at its parent's MAC (the leg must not answer ARP for the host's addresses).
  const ul0Mac = /link\/ether (\S+)/.exec((await hosts[H1].exec(['ip', 'link', 'show', 'ul0'])).stdout)![1];
  await outside(['ip', 'neigh', 'flush', 'dev', 'eth0']);
  expect(await outsidePings(hostIps[H1])).toBe(true);
  expect((await outside(['ip', 'neigh', 'show', hostIps[H1]])).stdout).toContain(`lladdr ${ul0Mac}`);
  await docker(H1, ['rm', '-f', 'h1']);
  expect((await hosts[H1].exec(['ip', 'route', 'show', `${ip}/32`])).stdout.trim()).toBe('');
  await docker(H1, ['network', 'rm', 'mvh']);
  expect(await macvlans(H1)).toBe('');
});

test('private mode: containers of one host cannot reach each other, containers on two hosts can', async () => {
  const SUB = '198.18.1.0/24';
  for (const h of [H1, H2]) made(await create(h, 'mvp', ['-o', 'macvlan_mode=private'], SUB));
  for (const [h, name] of [[H1, 'p1'], [H1, 'p2'], [H2, 'p3']] as const) expect(await runOn(h, name, 'mvp')).toMatchObject({ exitCode: 0 });
  expect(await ping(H1, 'p1', await ipOf(H2, 'p3', 'mvp'))).toBe(true);
  expect(await ping(H1, 'p1', await ipOf(H1, 'p2', 'mvp'))).toBe(false);
  expect((await hosts[H1].exec(['ip', '-d', 'link', 'show', 'dev', 'ul0'])).exitCode).toBe(0);
  await docker(H1, ['rm', '-f', 'p1', 'p2']);
  await docker(H2, ['rm', '-f', 'p3']);
  for (const h of [H1, H2]) await docker(h, ['network', 'rm', 'mvp']);
});

test('--internal: no default route, the LAN on-link still reachable', async () => {
  made(await create(H1, 'mvi', ['--internal', '--ip-range', RANGE], LAN));
  expect(await runOn(H1, 'i1', 'mvi')).toMatchObject({ exitCode: 0 });
  const routes = (await docker(H1, ['exec', 'i1', 'ip', 'route'])).stdout;
  expect(routes).not.toContain('default');
  expect(routes).toContain('198.18.0.0/24 dev eth0');
  expect(await ping(H1, 'i1', OUTSIDE_IP)).toBe(true);
  await docker(H1, ['rm', '-f', 'i1']);
  await docker(H1, ['network', 'rm', 'mvi']);
});

test('an 802.1q parent cannot be made on this kernel: a clear error, and nothing changed', async () => {
  const before = (await hosts[H1].exec(['ip', '-o', 'link'])).stdout.replace(/\d+: /g, '');
  const r = await create(H1, 'vl', [], '198.18.3.0/24', 'ul0.42');
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/parent ul0\.42 does not exist and knit could not make it as an 802\.1q sub-interface of ul0 \(VLAN 42\)/);
  expect((await hosts[H1].exec(['ip', '-o', 'link'])).stdout.replace(/\d+: /g, '')).toBe(before);
  expect((await docker(H1, ['network', 'ls', '--format', '{{.Name}}'])).stdout).not.toMatch(/^vl$/m);
  // Its pool went back: the same subnet on an existing parent is accepted.
  made(await create(H1, 'vl', [], '198.18.3.0/24'));
  await docker(H1, ['network', 'rm', 'vl']);
});

test('knit SIGKILLed mid-burst: no address twice, and no macvlan link left behind', async () => {
  for (const h of [H1, H2]) made(await create(h, 'mvk', ['--ip-range', RANGE, '--gateway', ROUTER]));
  const names = [H1, H2].flatMap((h) => [...Array(10)].map((_, i) => ({ h, name: `kill${h}x${i}` })));
  let finished = 0;
  const burst = Promise.all(names.map(({ h, name }) => runOn(h, name, 'mvk').finally(() => finished++)));
  await new Promise((r) => setTimeout(r, 1_500));
  const unfinished = names.length - finished;
  await knits[H1].kill9();
  await knits[H1].start();
  await burst;
  const state = await Promise.all(names.map(async ({ h, name }) => (await docker(h, ['inspect', '-f', '{{.State.Running}}', name], { reject: false })).stdout.trim()));
  const up = names.filter((_, i) => state[i] === 'true');
  const down = names.filter((_, i) => state[i] !== 'true');
  console.log(`SIGKILL mid-burst: ${unfinished} starts under way at the kill; ${up.length} of ${names.length} started, ${down.length} failed`);
  expect(unfinished).toBeGreaterThan(0);
  expect(up.length).toBeGreaterThan(0);
  const ips = await Promise.all(up.map(({ h, name }) => ipOf(h, name, 'mvk')));
  expect(new Set(ips).size).toBe(up.length);
  expect(ips.filter((ip) => hostIps.includes(ip))).toEqual([]);
  for (const { h, name } of down) await docker(h, ['rm', '-f', name], { reject: false });
  // Endpoints dockerd gave up on while knit was away are swept (after their grace period), and their links with them.
  await waitFor('no macvlan link left on host 1', async () => (await macvlans(H1)) === '', { timeoutMs: 150_000, intervalMs: 5_000 });
  for (const h of [H1, H2]) {
    const mine = up.filter((n) => n.h === h).map((n) => n.name);
    if (mine.length) await docker(h, ['rm', '-f', ...mine]);
    await docker(h, ['network', 'rm', 'mvk']);
    expect(await macvlans(h)).toBe('');
  }
});
