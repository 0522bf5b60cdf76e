// Engine restarts: dockerd restarted with and without live-restore, with knit running and with knit down while
// dockerd starts (and both crashing). Networks and containers come back as a user expects; knit follows dockerd.
import { setTimeout as sleep } from 'node:timers/promises';
import { IMAGE, waitFor } from '../support/testbed.js';
import { crashEngine as crash } from './support/engine-crash.js';
import { FaultCluster } from './support/fault-cluster.js';
import { Tally } from './support/tally.js';
import { none, verifyCluster, verifyNoLeaks } from './support/verify.js';

const tally = new Tally('engine restarts');
let c: FaultCluster;
let inGrace = 0;
let lastChange = Date.now();

/** Each container's running state and, per network, its endpoint ID, address and MAC. */
async function states(): Promise<Record<string, string>> {
  const names = ['keep', 'pub', 'plain'];
  const out: Record<string, string> = {};
  for (const n of names) {
    const f = '{{.State.Running}}{{range $k, $v := .NetworkSettings.Networks}} {{$k}}={{$v.EndpointID}},{{$v.IPAddress}},{{$v.MacAddress}}{{end}}';
    out[n] = (await c.docker(0, ['inspect', '-f', f, n])).stdout.trim();
  }
  return out;
}

async function unchanged(before: Record<string, string>): Promise<string[]> {
  const after = await states();
  return Object.keys(before).filter((n) => after[n] !== before[n]).map((n) => `${n}: was "${before[n]}", now "${after[n]}"`);
}

const crashEngine = () => crash(c.hosts[0]);

const running = async (name: string): Promise<boolean> => (await c.docker(0, ['inspect', '-f', '{{.State.Running}}', name], { reject: false })).stdout.trim() === 'true';
const restartPolicyBack = () => waitFor('keep and pub to be restarted by their policy', async () => (await running('keep')) && running('pub'), { timeoutMs: 60_000, intervalMs: 500 });

/** The invariants of the churn suite on this host; returns the failures by name. */
async function verified(): Promise<Record<string, string[]>> {
  const v = await verifyCluster(c, tally);
  inGrace = Math.max(inGrace, v.inGrace);
  lastChange = Date.now();
  return v.failures;
}

beforeAll(async () => {
  c = await FaultCluster.start({ names: ['flteng'], store: 'local' });
  const net = (args: string[]) => c.docker(0, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', ...args]);
  await net(['eb1']);
  await net(['eb2']);
  const run = (args: string[]) => c.docker(0, ['run', '-d', '--stop-timeout', '1', ...args, IMAGE, 'sleep', '3600']);
  await run(['--name', 'keep', '--restart', 'always', '--network', 'eb1']);
  await c.docker(0, ['network', 'connect', 'eb2', 'keep']);
  await run(['--name', 'pub', '--restart', 'always', '--network', 'eb1', '-p', '80']);
  await run(['--name', 'plain', '--network', 'eb2']);
});

afterAll(async () => {
  tally.finish();
  await c?.stop();
});

test('without live-restore, knit running: containers with a restart policy come back networked, the others stay stopped', async () => {
  await c.hosts[0].restartEngine({ liveRestore: false });
  tally.op();
  await restartPolicyBack();
  const stopped = !(await running('plain'));
  const failures = await verified();
  const again = await c.docker(0, ['start', 'plain'], { reject: false });
  tally.op(again.exitCode === 0);
  const pings = (await c.docker(0, ['exec', 'plain', 'ping', '-c', '1', '-W', '2', 'keep'], { reject: false })).exitCode === 0;
  expect({ ...failures, user: tally.check([...(stopped ? [] : ['plain (no restart policy) was restarted']), ...(again.exitCode === 0 && pings ? [] : [`plain could not start or reach keep: ${again.stderr}`])]) })
    .toEqual({ ...none(failures), user: [] });
});

test('without live-restore, dockerd and knit both SIGKILLed, dockerd back first: stale endpoints are cleaned in knit too', async () => {
  const before = await states();
  await c.knits[0].kill9();
  await crashEngine();
  tally.crash();
  tally.crash();
  const engine = c.hosts[0].startEngine();
  // knit comes up while dockerd is already restoring (and retrying the plugin socket).
  await sleep(3_000);
  await c.knits[0].start();
  await engine;
  tally.op(true, 2);
  await restartPolicyBack();
  const after = await states();
  const renewed = tally.check(after.keep !== before.keep ? [] : ['keep has the same endpoints as before the crash: it was not restarted']);
  const failures = await verified();
  expect({ ...failures, renewed }).toEqual({ ...none(failures), renewed: [] });
});

test('with live-restore, knit running: every container keeps running with the same endpoint, address and MAC', async () => {
  const before = await states();
  await c.hosts[0].restartEngine({ liveRestore: true });
  tally.op();
  const same = tally.check(await unchanged(before));
  const failures = await verified();
  expect({ ...failures, same }).toEqual({ ...none(failures), same: [] });
});

test('with live-restore, knit down while dockerd restarts: containers keep their endpoints, and knit serves them once up', async () => {
  const before = await states();
  await c.knits[0].kill9();
  tally.crash();
  const engine = c.hosts[0].restartEngine({ liveRestore: true });
  await sleep(3_000);
  await c.knits[0].start();
  await engine;
  tally.op(true, 2);
  const same = tally.check(await unchanged(before));
  const fresh = await c.docker(0, ['run', '-d', '--name', 'fresh', '--network', 'eb1', IMAGE, 'sleep', '600'], { reject: false });
  const moved = await c.docker(0, ['network', 'connect', 'eb1', 'plain'], { reject: false });
  const back = await c.docker(0, ['network', 'disconnect', 'eb1', 'plain'], { reject: false });
  tally.op(fresh.exitCode === 0 && moved.exitCode === 0 && back.exitCode === 0, 3);
  const works = tally.check([fresh, moved, back].filter((r) => r.exitCode !== 0).map((r) => r.stderr.trim()));
  const failures = await verified();
  expect({ ...failures, same, works }).toEqual({ ...none(failures), same: [], works: [] });
});

test('after the grace period for unused addresses, none is leaked and none missing', async () => {
  expect(await verifyNoLeaks(c, tally, { since: lastChange, inGrace })).toEqual([]);
});
