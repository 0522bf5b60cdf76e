// Names and engine restarts (issue 13): dockerd restarted (cleanly, with and without live-restore, and killed)
// while knit runs, and knit itself killed. The event stream breaks each time; names must come back by themselves, right, on the
// other host too, and containers started after the restart must be published (the stream was re-opened).
import { join } from 'node:path';
import { startClusterStore, type ClusterStore } from '../support/cluster-store.js';
import { post } from '../support/client.js';
import { Knit } from '../support/knit.js';
import { connectHosts, IMAGE, startHost, stopAll, waitFor, type Host } from '../support/testbed.js';
import { crashEngine } from './support/engine-crash.js';
import { Tally } from './support/tally.js';

const RESOLVER = '169.254.53.53';
/** From dockerd answering again to the name resolving on the other host: backoff (5 s at most) plus a resync. */
const BACK_WITHIN_MS = 10_000;
const [A, B] = [0, 1];
const tally = new Tally('names across engine restarts');
let hosts: Host[];
let knits: Knit[];
let store: ClusterStore;

const docker = (h: number, args: string[], opts = {}) => hosts[h].docker(args, opts);
const ipOf = async (h: number, name: string) => (await docker(h, ['inspect', '-f', '{{.NetworkSettings.Networks.ov.IPAddress}}', name])).stdout.trim();
const runOn = (h: number, name: string, extra: string[] = []) =>
  docker(h, ['run', '-d', '--name', name, '--network', 'ov', '--stop-timeout', '1', ...extra, IMAGE, 'sleep', '3600']);

/** What asker (on host B) gets for `name`: the IPv4 addresses after nslookup's "Name:" line. */
async function fromB(name: string): Promise<string> {
  const out = (await docker(B, ['exec', 'asker', 'nslookup', name], { reject: false, timeoutMs: 20_000 })).stdout;
  return [...(out.split(/^Name:/m)[1] ?? '').matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3})\b/g)].map((m) => m[1]).sort().join();
}

/** Waits until asker resolves `name` to host A's container of that name; returns how long after `since` it did. */
async function resolvesToCurrent(name: string, since: number): Promise<number> {
  await waitFor(`${name} to resolve on host B to its current address`, async () => {
    const ip = await ipOf(A, name).catch(() => '');
    return ip !== '' && (await fromB(name)) === ip;
  }, { timeoutMs: BACK_WITHIN_MS + 10_000, intervalMs: 200 });
  return Date.now() - since;
}

async function engineConnected(): Promise<boolean> {
  return (await post(knits[A].socket, '/knit.Status', {})).body.names.engine.connected === true;
}

beforeAll(async () => {
  hosts = [await startHost({ name: 'fna', dns: [RESOLVER] }), await startHost({ name: 'fnb', dns: [RESOLVER] })];
  await connectHosts(hosts);
  store = await startClusterStore('etcd');
  knits = hosts.map((h) => new Knit(h, { KNIT_STORE: store.url, KNIT_ADVERTISE: 'ul0', KNIT_DOCKER_HOST: `unix://${join(h.dir, 'docker.sock')}` }));
  for (const k of knits) await k.start();
  for (const h of [A, B]) await docker(h, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '--subnet', '10.73.0.0/24', 'ov']);
  await runOn(A, 'app', ['--restart', 'always']);
  await runOn(A, 'idle');
  await runOn(B, 'asker');
  await resolvesToCurrent('app', Date.now());
});

afterAll(async () => {
  tally.finish();
  for (const k of knits ?? []) await k.stop().catch(() => undefined);
  await store?.dispose();
  await stopAll();
});

test('dockerd restarted without live-restore: the restarted container resolves to its new address, the stopped one not at all', async () => {
  expect(await fromB('idle')).toBe(await ipOf(A, 'idle'));
  await hosts[A].restartEngine({ liveRestore: false });
  tally.op();
  const back = Date.now();
  await waitFor('app to be restarted by its policy', async () => (await docker(A, ['inspect', '-f', '{{.State.Running}}', 'app'])).stdout.trim() === 'true', { timeoutMs: 60_000, intervalMs: 250 });
  const took = await resolvesToCurrent('app', back);
  console.log(`names: app resolves on host B ${took} ms after dockerd of host A answered again`);
  expect(tally.check(took < BACK_WITHIN_MS ? [] : [`${took} ms`])).toEqual([]);
  // idle has no restart policy: it stopped with dockerd, and its name went with it.
  await waitFor('idle to stop resolving', async () => (await fromB('idle')) === '', { timeoutMs: BACK_WITHIN_MS, intervalMs: 250 });
  expect(await engineConnected()).toBe(true);
});

test('dockerd restarted with live-restore: names stay, and a container started afterwards is published (events flow again)', async () => {
  await hosts[A].restartEngine({ liveRestore: true });
  tally.op();
  await waitFor('knit to reconnect to the engine', engineConnected, { timeoutMs: BACK_WITHIN_MS, intervalMs: 200 });
  expect(await fromB('app')).toBe(await ipOf(A, 'app'));
  const t = Date.now();
  await runOn(A, 'late');
  tally.op();
  const took = await resolvesToCurrent('late', t);
  expect(tally.check(took < 2_000 ? [] : [`late took ${took} ms`])).toEqual([]);
});

test('dockerd killed (SIGKILL) and started again: the names of its containers come back right', async () => {
  await crashEngine(hosts[A]);
  tally.crash();
  await hosts[A].startEngine();
  const back = Date.now();
  // With live-restore (still on) the containers survived the crash; without an event for them, the resync after
  // the reconnection is what brings any change in.
  await docker(A, ['rm', '-f', 'late']);
  tally.op();
  await waitFor('late to stop resolving', async () => (await fromB('late')) === '', { timeoutMs: BACK_WITHIN_MS, intervalMs: 200 });
  const took = await resolvesToCurrent('app', back);
  expect(tally.check(took < BACK_WITHIN_MS ? [] : [`${took} ms`])).toEqual([]);
  const records = (await post(knits[A].socket, '/knit.Status', {})).body.names.published;
  expect(records).toBe(1);
});

test('knit SIGKILLed and restarted: its records are written under the new lease and outlive the old one', async () => {
  await knits[A].restart();
  tally.crash();
  const back = Date.now();
  await resolvesToCurrent('app', back);
  // The killed knit's lease lapses within its TTL (10 s): what it had written must not vanish with it.
  await new Promise((resolve) => setTimeout(resolve, 12_000));
  expect(await fromB('app')).toBe(await ipOf(A, 'app'));
  expect((await post(knits[A].socket, '/knit.Status', {})).body.names.published).toBe(1);
  tally.op();
});
