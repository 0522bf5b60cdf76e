// Overlay networks across three hosts (each a netns with its own dockerd and knit), coordinated through a real
// etcd, then again through the Consul test server (no Consul server can be installed here; see README).
import { connectHosts, engineTag, IMAGE, run, startHost, stopAll, SUITE_ENGINES, waitFor, type EngineVersion, type Host } from '../support/testbed.js';
import { Knit } from '../support/knit.js';
import { startClusterStore as startStore, STORE_IP, type ClusterStore } from '../support/cluster-store.js';
import { startEtcd } from '../support/etcd.js';

const SUBNET = '10.50.0.0/24';
let hosts: Host[];
let knits: Knit[];
let store: ClusterStore;
let deadAddress = '';

const [A, B, C] = [0, 1, 2];
const docker = (h: number, args: string[], opts = {}) => hosts[h].docker(args, opts);
const runOn = (h: number, name: string) =>
  docker(h, ['run', '-d', '--name', name, '--network', 'ov', '--stop-timeout', '1', IMAGE, 'sleep', '600']);
const ipOf = async (h: number, name: string) => (await docker(h, ['inspect', '-f', '{{.NetworkSettings.Networks.ov.IPAddress}}', name])).stdout.trim();
const macOf = async (h: number, name: string) => (await docker(h, ['inspect', '-f', '{{.NetworkSettings.Networks.ov.MacAddress}}', name])).stdout.trim();
const ping = async (h: number, from: string, to: string) => (await docker(h, ['exec', from, 'ping', '-c', '1', '-W', '2', to], { reject: false })).exitCode === 0;
const fdb = async (h: number) => (await hosts[h].exec(['bridge', 'fdb', 'show'])).stdout;


const cases: Array<{ kind: 'etcd' | 'consul'; engine: EngineVersion }> = [
  ...SUITE_ENGINES.overlay.map((engine) => ({ kind: 'etcd' as const, engine })),
  ...SUITE_ENGINES['overlay-consul'].map((engine) => ({ kind: 'consul' as const, engine })),
];

describe.each(cases)('overlay through $kind on engine $engine', ({ kind, engine }) => {
beforeAll(async () => {
  hosts = [];
  const prefix = `${kind === 'etcd' ? 'ov' : 'oc'}${engineTag(engine)}`;
  for (const name of [`${prefix}a`, `${prefix}b`, `${prefix}c`]) {
    const h = await startHost({ name, engine });
    await h.exec(['iptables', '-P', 'FORWARD', 'DROP']);
    hosts.push(h);
  }
  await connectHosts(hosts);
  store = await startStore(kind);
  knits = hosts.map((h) => new Knit(h, { KNIT_STORE: store.url, KNIT_ADVERTISE: 'ul0', KNIT_RECLAIM_AFTER: '20' }));
  for (const k of knits) await k.start();
  for (let h = 0; h < 3; h++) {
    await docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '--subnet', SUBNET, 'ov']);
  }
});

afterAll(async () => {
  for (const k of knits ?? []) await k.stop().catch(() => undefined);
  await store?.dispose();
  await stopAll();
  await run(['ip', 'link', 'del', 'knt-root'], { reject: false });
});

test('one VNI everywhere, on a VXLAN device bound to the underlay, MTU 50 below it', async () => {
  const vnis = await Promise.all([A, B, C].map(async (h) => /vxlan id (\d+) local (\S+)/.exec((await hosts[h].exec(['ip', '-d', 'link', 'show', 'type', 'vxlan'])).stdout)));
  expect(new Set(vnis.map((m) => m?.[1])).size).toBe(1);
  expect(vnis.map((m) => m?.[2])).toEqual(hosts.map((h) => h.underlayIp));
  const mtu = (await hosts[A].exec(['ip', '-o', 'link', 'show', 'type', 'vxlan'])).stdout;
  expect(mtu).toContain('mtu 1450');
});

test('containers on three hosts ping each other; the same gateway everywhere', async () => {
  await runOn(A, 'a1');
  await runOn(B, 'b1');
  await runOn(C, 'c1');
  const [ipA, ipB, ipC] = await Promise.all([ipOf(A, 'a1'), ipOf(B, 'b1'), ipOf(C, 'c1')]);
  expect(new Set([ipA, ipB, ipC]).size).toBe(3);
  await waitFor('a1 to reach b1 and c1', async () => (await ping(A, 'a1', ipB)) && ping(A, 'a1', ipC), { timeoutMs: 15_000, intervalMs: 500 });
  expect(await ping(B, 'b1', ipC)).toBe(true);
  expect(await ping(C, 'c1', ipA)).toBe(true);
  const gws = await Promise.all([A, B, C].map(async (h) => (await docker(h, ['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', 'ov'])).stdout.trim()));
  expect(new Set(gws).size).toBe(1);
});

test('a new container is reachable from another host quickly', async () => {
  const started = Date.now();
  await runOn(A, 'a-new');
  const ip = await ipOf(A, 'a-new');
  await waitFor('b1 to reach the new container', () => ping(B, 'b1', ip), { timeoutMs: 15_000, intervalMs: 100 });
  console.log(`overlay convergence: docker run on A to first reply on B: ${Date.now() - started} ms`);
  await docker(A, ['rm', '-f', 'a-new']);
});

test('30 containers started concurrently across the hosts get 30 distinct addresses', async () => {
  const names = [A, B, C].flatMap((h) => [...Array(10)].map((_, i) => ({ h, name: `burst${h}x${i}` })));
  await Promise.all(names.map(({ h, name }) => runOn(h, name)));
  const ips = await Promise.all(names.map(({ h, name }) => ipOf(h, name)));
  expect(new Set(ips).size).toBe(30);
  for (const h of [A, B, C]) await docker(h, ['rm', '-f', ...names.filter((n) => n.h === h).map((n) => n.name)]);
});

test('a container removed on one host is gone from the others\' forwarding tables', async () => {
  await runOn(B, 'b-gone');
  const mac = await macOf(B, 'b-gone');
  await waitFor('its MAC on host A', async () => (await fdb(A)).includes(mac), { timeoutMs: 15_000 });
  await docker(B, ['rm', '-f', 'b-gone']);
  await waitFor('its MAC gone from host A and C', async () => !(await fdb(A)).includes(mac) && !(await fdb(C)).includes(mac), { timeoutMs: 15_000 });
});

test('an overlay removed from every host can be made again with other settings, and its VNI is free again', async () => {
  const create = (h: number, vni: number, subnet: string, name: string) =>
    docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '-o', `knit.vni=${vni}`, '--subnet', subnet, name], { reject: false });
  /** Succeeds, or fails the test with dockerd's message. */
  const made = async (h: number, vni: number, subnet: string, name: string) => expect((await create(h, vni, subnet, name)).stderr).toBe('');
  const vxlans = async (h: number) => (await hosts[h].exec(['ip', '-d', 'link', 'show', 'type', 'vxlan'])).stdout;
  await made(A, 5001, '10.51.0.0/24', 'ov2');
  await made(B, 5001, '10.51.0.0/24', 'ov2');
  await docker(A, ['network', 'rm', 'ov2']);
  // B still has it: its settings stand.
  const refused = await create(A, 5002, '10.51.0.0/24', 'ov2');
  expect(refused.exitCode).not.toBe(0);
  expect(refused.stderr).toMatch(/knit\.vni 5001, not 5002/);
  await docker(B, ['network', 'rm', 'ov2']);
  // Its VXLAN device went with it.
  expect(await vxlans(B)).not.toMatch(/vxlan id 5001 /);
  await made(A, 5002, '10.51.0.0/24', 'ov2');
  expect(await vxlans(A)).toMatch(/vxlan id 5002 /);
  await made(B, 5001, '10.52.0.0/24', 'ov3');
  expect(await vxlans(B)).toMatch(/vxlan id 5001 /);
  await docker(A, ['network', 'rm', 'ov2']);
  await docker(B, ['network', 'rm', 'ov3']);
});

test('store outage: existing traffic flows, new endpoints fail cleanly, and creates work again once it is back', async () => {
  const ipB = await ipOf(B, 'b1');
  await store.stop();
  expect(await ping(A, 'a1', ipB)).toBe(true);
  const t = Date.now();
  const failed = await docker(A, ['run', '--rm', '--network', 'ov', IMAGE, 'true'], { reject: false, timeoutMs: 60_000 });
  expect(failed.exitCode).not.toBe(0);
  expect(failed.stderr).toMatch(/unreachable/);
  expect(Date.now() - t).toBeLessThan(30_000);
  await store.restart();
  await waitFor('a container start to succeed again', async () => (await docker(A, ['run', '--rm', '--network', 'ov', IMAGE, 'true'], { reject: false })).exitCode === 0, { timeoutMs: 30_000, intervalMs: 1_000 });
  expect(await ping(A, 'a1', ipB)).toBe(true);
});

test('a dead host\'s entries are dropped by the others within the lease TTL', async () => {
  const vtepC = hosts[C].underlayIp!;
  deadAddress = await ipOf(C, 'c1');
  expect(await fdb(A)).toContain(`dst ${vtepC}`);
  const t = Date.now();
  await knits[C].kill9();
  await hosts[C].stopEngine();
  await waitFor('host A to forget host C', async () => !(await fdb(A)).includes(`dst ${vtepC}`), { timeoutMs: 30_000, intervalMs: 500 });
  console.log(`dead host dropped ${Date.now() - t} ms after its knit was killed`);
  expect(await fdb(B)).not.toContain(`dst ${vtepC}`);
});

test('a dead host\'s addresses stay quarantined, then return to the pool after KNIT_RECLAIM_AFTER', async () => {
  // c1 lived on host C, which is gone: its address is not handed out at once, but is after the grace period.
  const ipC = deadAddress;
  const early = await docker(A, ['run', '--rm', '--network', 'ov', '--ip', ipC, IMAGE, 'true'], { reject: false });
  expect(early.stderr).toMatch(/already in use/);
  await waitFor('the dead host\'s address to be reclaimed', async () => {
    const r = await docker(A, ['run', '-d', '--name', 'a-reuse', '--network', 'ov', '--ip', ipC, IMAGE, 'sleep', '60'], { reject: false });
    if (r.exitCode !== 0) await docker(A, ['rm', '-f', 'a-reuse'], { reject: false });
    return r.exitCode === 0;
  }, { timeoutMs: 60_000, intervalMs: 2_000 });
  expect(await ipOf(A, 'a-reuse')).toBe(ipC);
  await docker(A, ['rm', '-f', 'a-reuse']);
});
});

describe('overlay across engines: 20.10, 26.1 and 28.5 hosts in one cluster', () => {
  const engines: EngineVersion[] = ['20.10', '26.1', '28.5'];
  let mixed: Host[] = [];
  let mixedKnits: Knit[] = [];
  let etcd: Awaited<ReturnType<typeof startEtcd>> | undefined;

  beforeAll(async () => {
    for (const engine of engines) mixed.push(await startHost({ name: `mx${engineTag(engine)}`, engine }));
    await connectHosts(mixed);
    await run(['ip', '-n', 'knt-underlay', 'addr', 'add', `${STORE_IP}/24`, 'dev', 'knt-ul']);
    etcd = await startEtcd({ netns: 'knt-underlay', host: STORE_IP });
    mixedKnits = mixed.map((h) => new Knit(h, { KNIT_STORE: `etcd://${etcd!.endpoint}`, KNIT_ADVERTISE: 'ul0' }));
    for (const k of mixedKnits) await k.start();
  });

  afterAll(async () => {
    for (const k of mixedKnits) await k.stop().catch(() => undefined);
    await etcd?.dispose();
    mixed = [];
    await stopAll();
  });

  test('one overlay on every engine: each container pings the other two, one VNI and gateway everywhere', async () => {
    for (const h of mixed) {
      await h.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '--subnet', '10.53.0.0/24', 'mx']);
    }
    const names = mixed.map((h) => `on${engineTag(h.engine)}`);
    await Promise.all(mixed.map((h, i) => h.docker(['run', '-d', '--name', names[i], '--network', 'mx', '--stop-timeout', '1', IMAGE, 'sleep', '600'])));
    const ips = await Promise.all(mixed.map(async (h, i) => (await h.docker(['inspect', '-f', '{{.NetworkSettings.Networks.mx.IPAddress}}', names[i]])).stdout.trim()));
    expect(new Set(ips).size).toBe(3);
    expect((await Promise.all(mixed.map((h) => h.docker(['version', '--format', '{{.Server.Version}}'])))).map((r) => r.stdout.slice(0, 4))).toEqual(['20.1', '26.1', '28.5']);
    const pings: string[] = [];
    for (const [i, h] of mixed.entries()) {
      for (const [j, ip] of ips.entries()) {
        if (i === j) continue;
        const ok = await waitFor(`${names[i]} to reach ${names[j]} (${ip})`, async () =>
          (await h.docker(['exec', names[i], 'ping', '-c', '1', '-W', '2', ip], { reject: false })).exitCode === 0, { timeoutMs: 15_000, intervalMs: 500 });
        if (ok) pings.push(`${names[i]}->${names[j]}`);
      }
    }
    expect(pings).toHaveLength(6);
    const vnis = await Promise.all(mixed.map(async (h) => /vxlan id (\d+) /.exec((await h.exec(['ip', '-d', 'link', 'show', 'type', 'vxlan'])).stdout)?.[1]));
    expect(new Set(vnis).size).toBe(1);
    expect(vnis[0]).toMatch(/^\d+$/);
    const gws = await Promise.all(mixed.map(async (h) => (await h.docker(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', 'mx'])).stdout.trim()));
    expect(new Set(gws).size).toBe(1);
    for (const [i, h] of mixed.entries()) {
      await h.docker(['rm', '-f', names[i]]);
      await h.docker(['network', 'rm', 'mx']);
    }
  });
});
