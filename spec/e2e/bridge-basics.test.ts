// The foundation end to end: a real dockerd, knit as a legacy plugin, containers that talk.
import { engineTag, IMAGE, startHost, stopAll, SUITE_ENGINES, type Host } from '../support/testbed.js';
import { Knit } from '../support/knit.js';
import { post } from '../support/client.js';


let host: Host;
let knit: Knit;

const net = (args: string[]) => host.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', ...args]);
const runDetached = (name: string, args: string[] = []) =>
  host.docker(['run', '-d', '--name', name, '--stop-timeout', '1', ...args, IMAGE, 'sleep', '600']);
const ipOf = async (name: string, network: string) =>
  (await host.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name])).stdout.trim();
const ping = (from: string, to: string) => host.docker(['exec', from, 'ping', '-c', '1', '-W', '2', to], { reject: false });
const knitLinks = async () => (await host.exec(['ip', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => / kn[a-z]/.test(l));

async function records(): Promise<{ pools: number; addrs: number; nets: number; eps: number }> {
  const doc = await host.exec(['node', '-e', `
    import('lmdb').then(({ open }) => {
      const db = open({ path: ${JSON.stringify(knit.stateDir + '/db')}, readOnly: true });
      const count = (p) => [...db.getKeys({ start: p, end: p + '\\xff' })].length;
      console.log(JSON.stringify({ pools: count('ipam/pools/'), addrs: count('ipam/addrs/'), nets: count('net/'), eps: count('ep/') }));
    })`], { reject: false });
  return JSON.parse(doc.stdout);
}

describe.each(SUITE_ENGINES['bridge-basics'])('on engine %s', (engine) => {
beforeAll(async () => {
  host = await startHost({ name: `basics${engineTag(engine)}`, engine });
  // Real hosts run with FORWARD policy DROP (dockerd sets it when it enables forwarding itself).
  await host.exec(['iptables', '-P', 'FORWARD', 'DROP']);
  knit = new Knit(host);
  await knit.start();
});

afterAll(async () => {
  await knit?.stop();
  await stopAll();
});

test('two containers on a knit network ping each other by IP and by name', async () => {
  await net(['n1']);
  await runDetached('c1', ['--network', 'n1']);
  await runDetached('c2', ['--network', 'n1']);
  const ip2 = await ipOf('c2', 'n1');
  expect(ip2).toMatch(/^10\.2(0[89]|1\d|2[0-3])\.\d+\.\d+$/);
  expect((await ping('c1', ip2)).exitCode).toBe(0);
  // By name from a fresh container: on the chrooted engines `docker exec` runs in the engine's mount namespace
  // (the container's network, but the machine's /etc/resolv.conf), so only `docker run` shows Docker's DNS.
  expect((await host.docker(['run', '--rm', '--network', 'n1', IMAGE, 'ping', '-c', '1', '-W', '2', 'c2'], { reject: false })).exitCode).toBe(0);
  await host.docker(['rm', '-f', 'c1', 'c2']);
  await host.docker(['network', 'rm', 'n1']);
});

test('--subnet, --ip-range, --gateway, --aux-address and --ip are honoured', async () => {
  await net(['--subnet', '10.31.0.0/24', '--ip-range', '10.31.0.128/25', '--gateway', '10.31.0.254', '--aux-address', 'router=10.31.0.129', 'n2']);
  const gw = (await host.exec(['ip', '-o', '-4', 'addr', 'show'])).stdout;
  expect(gw).toContain('10.31.0.254/24');
  await runDetached('d1', ['--network', 'n2']);
  await runDetached('d2', ['--network', 'n2', '--ip', '10.31.0.10']);
  const ip1 = await ipOf('d1', 'n2');
  expect(ip1).toMatch(/^10\.31\.0\.(12[89]|1[3-9]\d|2\d\d)$/);
  expect(ip1).not.toBe('10.31.0.129');
  expect(await ipOf('d2', 'n2')).toBe('10.31.0.10');
  expect((await ping('d1', '10.31.0.10')).exitCode).toBe(0);
  // The container's default route goes through the gateway knit answered with.
  expect((await host.docker(['exec', 'd1', 'ip', 'route'])).stdout).toContain('default via 10.31.0.254');
  const taken = await host.docker(['run', '--rm', '--network', 'n2', '--ip', '10.31.0.10', IMAGE, 'true'], { reject: false });
  expect(taken.exitCode).not.toBe(0);
  expect(taken.stderr).toMatch(/already in use/);
  await host.docker(['rm', '-f', 'd1', 'd2']);
  await host.docker(['network', 'rm', 'n2']);
});

test('20 containers started concurrently get 20 distinct addresses', async () => {
  await net(['n3']);
  const names = [...Array(20)].map((_, i) => `burst${i}`);
  const started = await Promise.all(names.map((n) => runDetached(n, ['--network', 'n3']).then(() => true, () => false)));
  expect(started.every(Boolean)).toBe(true);
  const ips = await Promise.all(names.map((n) => ipOf(n, 'n3')));
  expect(new Set(ips).size).toBe(20);
  expect((await ping('burst0', ips[19])).exitCode).toBe(0);
  await host.docker(['rm', '-f', ...names]);
  await host.docker(['network', 'rm', 'n3']);
});

test('docker network connect/disconnect moves a running container between knit networks', async () => {
  await net(['na']);
  await net(['nb']);
  await runDetached('m1', ['--network', 'na']);
  await runDetached('m2', ['--network', 'nb']);
  const ipB = await ipOf('m2', 'nb');
  await host.docker(['network', 'connect', 'nb', 'm1']);
  expect((await ping('m1', ipB)).exitCode).toBe(0);
  await host.docker(['network', 'disconnect', 'nb', 'm1']);
  expect((await host.docker(['exec', 'm1', 'ip', '-o', 'link'])).stdout).not.toContain('eth1');
  await host.docker(['rm', '-f', 'm1', 'm2']);
  await host.docker(['network', 'rm', 'na', 'nb']);
});

test('after everything is removed, knit holds no record and the kernel no link of it', async () => {
  expect(await records()).toEqual({ pools: 0, addrs: 0, nets: 0, eps: 0 });
  expect(await knitLinks()).toEqual([]);
  const rules = (await host.exec(['iptables-save'])).stdout;
  expect(rules).not.toMatch(/KNIT-(IN|OUT)-/);
});

test('knit killed with SIGKILL and restarted keeps working: no duplicate, no leak', async () => {
  await net(['nk']);
  await runDetached('k1', ['--network', 'nk']);
  const ip1 = await ipOf('k1', 'nk');
  await knit.kill9();
  await knit.start();
  await runDetached('k2', ['--network', 'nk']);
  const ip2 = await ipOf('k2', 'nk');
  expect(ip2).not.toBe(ip1);
  expect((await ping('k2', ip1)).exitCode).toBe(0);
  // Kill it in the middle of a burst of starts, then let the rest go through.
  const burst = [...Array(6)].map((_, i) => `kb${i}`);
  const runs = burst.map((n) => runDetached(n, ['--network', 'nk']).then(() => n, () => undefined));
  await new Promise((r) => setTimeout(r, 300));
  await knit.kill9();
  await knit.start();
  const ok = (await Promise.all(runs)).filter((n): n is string => !!n);
  const ips = await Promise.all(['k1', 'k2', ...ok].map((n) => ipOf(n, 'nk')));
  expect(new Set(ips).size).toBe(ips.length);
  await host.docker(['rm', '-f', 'k1', 'k2', ...burst]);
  await host.docker(['network', 'rm', 'nk']);
  // Whatever the crash interrupted, the sweep finds nothing to keep.
  await knitDoctor();
  expect(await records()).toEqual({ pools: 0, addrs: 0, nets: 0, eps: 0 });
  expect(await knitLinks()).toEqual([]);
});
});

async function knitDoctor(): Promise<void> {
  const r = await post(knit.socket, '/knit.Doctor', '{}');
  expect(r.status).toBe(200);
}
