// Names across hosts (issue 13): three hosts share a knit overlay through etcd on each engine of
// SUITE_ENGINES.names, then through the Consul test server; every dockerd has daemon.json
// "dns": ["169.254.53.53"] (knit's resolver) and knit forwards other names to an upstream the test runs
// (dnsmasq on the underlay, answering *.ext.test and nothing else).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startClusterStore, type ClusterStore } from '../support/cluster-store.js';
import { startUpstream, type Upstream } from '../support/dnsmasq.js';
import { post } from '../support/client.js';
import { chrooted } from '../support/engine.js';
import { Knit } from '../support/knit.js';
import { connectHosts, engineTag, IMAGE, startHost, stopAll, SUITE_ENGINES, waitFor, type EngineVersion, type Host } from '../support/testbed.js';

const RESOLVER = '169.254.53.53';
const UPSTREAM = '198.18.0.53';
const EXTERNAL = '192.0.2.7';
/**
 * Host leases live 10 s (daemon.ts): a dead host's names must be gone within that plus a few seconds. Consul
 * arms a session's timer at twice its TTL (the TTL is only a lower bound there), so its bound is twice as long.
 */
const LEASE_BOUND_MS = { etcd: 15_000, consul: 25_000 };
const [A, B, C] = [0, 1, 2];

let hosts: Host[];
let knits: Knit[];
let store: ClusterStore;
let upstream: Upstream;

const docker = (h: number, args: string[], opts = {}) => hosts[h].docker(args, opts);
const runOn = (h: number, name: string, net = 'ov', extra: string[] = []) =>
  docker(h, ['run', '-d', '--name', name, '--network', net, '--stop-timeout', '1', ...extra, IMAGE, 'sleep', '600']);
const ipOf = async (h: number, name: string, net = 'ov') =>
  (await docker(h, ['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name])).stdout.trim();
/**
 * Runs `argv` as container `from` sees the network: its network namespace and its resolv.conf. On 20.10 that
 * is `docker exec`; on a chrooted engine `docker exec` runs the machine's binaries with the machine's
 * resolv.conf (docs/engines.md), so a fresh container joins `from`'s network namespace and takes its files.
 */
const inside = (h: number, from: string, argv: string[], opts = {}) => chrooted(hosts[h].engine)
  ? docker(h, ['run', '--rm', '--network', `container:${from}`, IMAGE, ...argv], opts)
  : docker(h, ['exec', from, ...argv], opts);
const ping = async (h: number, from: string, to: string) => (await inside(h, from, ['ping', '-c', '1', '-W', '2', to], { reject: false })).exitCode === 0;

/** The IPv4 addresses busybox's nslookup prints for `name` (after its "Name:" line), asked from container `from`. */
async function resolve(h: number, from: string, name: string): Promise<string[]> {
  const r = await inside(h, from, ['nslookup', name], { reject: false, timeoutMs: 20_000 });
  return addressesIn(r.stdout);
}

/** The same from a container that has just started on `net`: the lookup is the first thing it does. */
async function resolveFirst(h: number, net: string, name: string): Promise<string[]> {
  const r = await docker(h, ['run', '--rm', '--network', net, IMAGE, 'nslookup', name], { reject: false, timeoutMs: 20_000 });
  return addressesIn(r.stdout);
}

function addressesIn(out: string): string[] {
  const after = out.split(/^Name:/m).slice(1).join('\n');
  return [...after.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3})\b/g)].map((m) => m[1]).sort();
}

const cases: Array<{ kind: 'etcd' | 'consul'; engine: EngineVersion }> = [
  ...SUITE_ENGINES.names.map((engine) => ({ kind: 'etcd' as const, engine })),
  ...SUITE_ENGINES['names-consul'].map((engine) => ({ kind: 'consul' as const, engine })),
];

describe.each(cases)('names through $kind on engine $engine', ({ kind, engine }) => {
  beforeAll(async () => {
    hosts = [];
    const prefix = `${kind === 'etcd' ? 'dne' : 'dnc'}${engineTag(engine)}`;
    for (const name of [`${prefix}a`, `${prefix}b`, `${prefix}c`]) hosts.push(await startHost({ name, engine, dns: [RESOLVER] }));
    await connectHosts(hosts);
    store = await startClusterStore(kind);
    upstream = await startUpstream({ netns: 'knt-underlay', dev: 'knt-ul', ip: UPSTREAM, prefix: 24, zone: 'ext.test', answer: EXTERNAL });
    knits = [];
    for (const h of hosts) {
      // knit's own resolv.conf: the host's /etc/resolv.conf is the machine's, and stays untouched.
      const resolvConf = join(h.dir, 'knit-resolv.conf');
      await writeFile(resolvConf, `nameserver ${UPSTREAM}\n`);
      knits.push(new Knit(h, {
        KNIT_STORE: store.url, KNIT_ADVERTISE: 'ul0', KNIT_DOCKER_HOST: `unix://${join(h.dir, 'docker.sock')}`, KNIT_RESOLV_CONF: resolvConf,
      }));
    }
    for (const k of knits) await k.start();
    for (let h = 0; h < 3; h++) {
      await docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '--subnet', '10.70.0.0/24', 'ov']);
    }
  });

  afterAll(async () => {
    for (const k of knits ?? []) await k.stop().catch(() => undefined);
    await upstream?.stop();
    await store?.dispose();
    await stopAll();
  });

  test('the 1.9 demo: demo1, demo2, demo3 on three hosts ping each other by name', async () => {
    await runOn(A, 'demo1');
    await runOn(B, 'demo2');
    await runOn(C, 'demo3');
    await waitFor('demo1 to ping demo2 and demo3 by name', async () => (await ping(A, 'demo1', 'demo2')) && ping(A, 'demo1', 'demo3'), { timeoutMs: 15_000, intervalMs: 250 });
    expect(await ping(B, 'demo2', 'demo3')).toBe(true);
    expect(await ping(C, 'demo3', 'demo1')).toBe(true);
    expect(await resolve(A, 'demo1', 'demo2')).toEqual([await ipOf(B, 'demo2')]);
    // Names are case-insensitive, as Docker's own.
    expect(await resolve(C, 'demo3', 'DEMO1')).toEqual([await ipOf(A, 'demo1')]);
  });

  test('an alias on another host; an alias held on two hosts answers with both; a service reached by its alias; a rename', async () => {
    await runOn(B, 'web1', 'ov', ['--network-alias', 'web']);
    const ipB = await ipOf(B, 'web1');
    await waitFor('web on host B to resolve from host A', async () => (await resolve(A, 'demo1', 'web')).includes(ipB), { timeoutMs: 10_000, intervalMs: 250 });
    await runOn(C, 'web2', 'ov', ['--network-alias', 'web']);
    const ipC = await ipOf(C, 'web2');
    await waitFor('web to answer with both hosts\' addresses', async () => (await resolve(A, 'demo1', 'web')).join() === [ipB, ipC].sort().join(), { timeoutMs: 10_000, intervalMs: 250 });
    expect(await ping(A, 'demo1', 'web')).toBe(true);
    // A rename is an engine event too: the new name resolves on the other hosts, the old one no more.
    await docker(B, ['rename', 'web1', 'web9']);
    await waitFor('the new name web9 to resolve from host A', async () => (await resolve(A, 'demo1', 'web9')).join() === ipB, { timeoutMs: 10_000, intervalMs: 250 });
    expect(await resolve(A, 'demo1', 'web1')).toEqual([]);
    await docker(B, ['rename', 'web9', 'web1']);
    await waitFor('web1 to resolve again', async () => (await resolve(A, 'demo1', 'web1')).join() === ipB, { timeoutMs: 10_000, intervalMs: 250 });
  });

  test('a removed container stops resolving everywhere within 2 s, and its name can be used again on another host', async () => {
    const old = await ipOf(B, 'demo2');
    expect(await resolve(A, 'demo1', 'demo2')).toEqual([old]);
    await docker(B, ['rm', '-f', 'demo2']);
    const t = Date.now();
    // When the first lookups that got no address were asked (how long a negative answer takes is the forwarder's).
    let asked = 0;
    let answered = 0;
    await waitFor('demo2 to stop resolving on A and C', async () => {
      asked = Date.now();
      const none = (await resolve(A, 'demo1', 'demo2')).length === 0 && (await resolve(C, 'demo3', 'demo2')).length === 0;
      answered = Date.now();
      return none;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    const gone = asked - t;
    console.log(`names: demo2 gone from hosts A and C: the first lookups without it were asked ${gone} ms after docker rm returned (answered after ${answered - asked} ms)`);
    expect(gone).toBeLessThan(2_000);
    await runOn(C, 'demo2');
    const fresh = await ipOf(C, 'demo2');
    await waitFor('the new demo2 (on host C) to resolve from host A', async () => (await resolve(A, 'demo1', 'demo2')).join() === fresh, { timeoutMs: 10_000, intervalMs: 250 });
    expect(await ping(A, 'demo1', 'demo2')).toBe(true);
  });

  test('names of a network the asker is not on are not answered', async () => {
    for (let h = 0; h < 2; h++) await docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '--subnet', '10.71.0.0/24', 'ov2']);
    await runOn(B, 'secret', 'ov2');
    await runOn(A, 'insider', 'ov2');
    const ip = await ipOf(B, 'secret', 'ov2');
    // Positive control: a container on ov2 resolves it.
    await waitFor('secret to resolve on ov2', async () => (await resolve(A, 'insider', 'secret')).join() === ip, { timeoutMs: 10_000, intervalMs: 250 });
    expect(await resolve(A, 'demo1', 'secret')).toEqual([]);
    expect(await resolve(A, 'insider', 'demo3')).toEqual([]);
    expect(await resolve(A, 'demo1', 'demo3')).toEqual([await ipOf(C, 'demo3')]);
  });

  test('a container\'s very first lookup finds a name on another host (knit knows the asker from its Join, not from an engine event)', async () => {
    const [demo3, secret] = [await ipOf(C, 'demo3'), await ipOf(B, 'secret', 'ov2')];
    // Each a new container whose first act is the lookup: no retry, no wait for the engine's events about it.
    for (let i = 0; i < 3; i++) {
      expect(await resolveFirst(A, 'ov', 'demo3')).toEqual([demo3]);
      expect(await resolveFirst(A, 'ov2', 'secret')).toEqual([secret]);
    }
    // Isolation holds from the first query too: the other network's names are not answered.
    expect(await resolveFirst(A, 'ov2', 'demo3')).toEqual([]);
    expect(await resolveFirst(A, 'ov', 'secret')).toEqual([]);
  });

  test('external names are forwarded to the host\'s upstream, for knit containers and for Docker\'s default bridge', async () => {
    expect(await resolve(A, 'demo1', 'www.ext.test')).toEqual([EXTERNAL]);
    const bridge = await docker(B, ['run', '--rm', IMAGE, 'nslookup', 'api.ext.test'], { reject: false });
    expect(addressesIn(bridge.stdout)).toEqual([EXTERNAL]);
    expect(bridge.stdout).toContain(RESOLVER);
    // The upstream knows its zone only: no knit name leaks out to it and comes back.
    expect(addressesIn((await docker(B, ['run', '--rm', IMAGE, 'nslookup', 'demo1'], { reject: false })).stdout)).toEqual([]);
  });

  test('an internal network resolves names across hosts (a route to the resolver via its gateway) and nothing external', async () => {
    for (const h of [A, B]) await docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '--internal', '-o', 'knit.mode=overlay', '--subnet', '10.72.0.0/24', 'int']);
    await runOn(A, 'in1', 'int');
    await runOn(B, 'in2', 'int');
    const ip = await ipOf(B, 'in2', 'int');
    expect((await docker(A, ['exec', 'in1', 'ip', 'route'])).stdout).toMatch(new RegExp(`^${RESOLVER.replace(/\./g, '\\.')} via 10\\.72\\.0\\.1 `, 'm'));
    await waitFor('in2 to resolve from in1', async () => (await resolve(A, 'in1', 'in2')).join() === ip, { timeoutMs: 10_000, intervalMs: 250 });
    expect(await ping(A, 'in1', 'in2')).toBe(true);
    expect(await resolve(A, 'in1', 'www.ext.test')).toEqual([]);
    // Positive control: the same name resolves for a container with external access.
    expect(await resolve(A, 'demo1', 'www.ext.test')).toEqual([EXTERNAL]);
    // A second internal network in the same container: one route per sandbox (a second would fail the Join, EEXIST).
    await docker(A, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '--internal', '--subnet', '10.74.0.0/24', 'int2']);
    expect((await docker(A, ['network', 'connect', 'int2', 'in1'], { reject: false })).stderr).toBe('');
    expect((await docker(A, ['exec', 'in1', 'ip', 'route'])).stdout.match(new RegExp(`^${RESOLVER.replace(/\./g, '\\.')} `, 'gm'))).toHaveLength(1);
    expect(await resolve(A, 'in1', 'in2')).toEqual([ip]);
  });

  test('knit status counts the records; doctor names an endpoint whose DNS servers lack knit\'s resolver', async () => {
    const status = (await post(knits[A].socket, '/knit.Status', {})).body;
    expect(status.names.engine.connected).toBe(true);
    expect(status.names.records).toBeGreaterThanOrEqual(5);
    expect(status.names.answers.answered).toBeGreaterThan(0);
    expect(status.names.withoutResolver).toEqual([]);
    expect((await post(knits[A].socket, '/knit.Doctor', {})).body.names).toEqual([]);
    await runOn(A, 'nodns', 'ov', ['--dns', UPSTREAM]);
    const ep = (await docker(A, ['inspect', '-f', '{{.NetworkSettings.Networks.ov.EndpointID}}', 'nodns'])).stdout.trim().slice(0, 12);
    const findings: string[] = (await post(knits[A].socket, '/knit.Doctor', {})).body.names;
    expect(findings).toHaveLength(1);
    expect(findings[0]).toContain(ep);
    expect(findings[0]).toContain('"dns": ["169.254.53.53"]');
    await docker(A, ['rm', '-f', 'nodns']);
  });

  test('a dead host\'s names are gone within its lease; the others\' stay', async () => {
    const ipC = await ipOf(C, 'web2');
    expect(await resolve(A, 'demo1', 'web')).toContain(ipC);
    const t = Date.now();
    await knits[C].kill9();
    await waitFor('host C\'s names to vanish on host A', async () => (await resolve(A, 'demo1', 'demo3')).length === 0, { timeoutMs: LEASE_BOUND_MS[kind] + 10_000, intervalMs: 250 });
    const gone = Date.now() - t;
    console.log(`names: dead host's names gone ${gone} ms after its knit was killed`);
    expect(gone).toBeLessThan(LEASE_BOUND_MS[kind]);
    expect(await resolve(A, 'demo1', 'web')).toEqual([await ipOf(B, 'web1')]);
    expect(await ping(A, 'demo1', 'web1')).toBe(true);
  });
});
