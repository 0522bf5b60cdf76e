// Churn with crashes: containers start, stop, connect and disconnect across a bridge, an overlay and a macvlan network
// on two hosts (etcd on the underlay, which is the macvlan's LAN) while knit is SIGKILLed at random moments and
// restarted; then every invariant holds.
import { IMAGE, waitFor } from '../support/testbed.js';
import { abandonEndpoint, remainsOf, type Abandoned } from './support/abandoned.js';
import { churn, churnShortfalls } from './support/churn.js';
import { FaultCluster } from './support/fault-cluster.js';
import { Tally } from './support/tally.js';
import { none, verifyCluster, verifyNoLeaks } from './support/verify.js';
import { gather } from './support/view.js';

const SEED = Number(process.env.KNIT_FAULT_SEED ?? 20261123);
const tally = new Tally('churn with crashes');
let c: FaultCluster;
let lastOp = Date.now();
let inGrace = 0;
let abandoned: Abandoned;
let left: Abandoned;

const [A, B] = [0, 1];
const NETWORKS = ['fb', 'fov', 'fmv'];
const fdb = async (h: number): Promise<string> => (await c.hosts[h].exec(['bridge', 'fdb', 'show'])).stdout;

beforeAll(async () => {
  c = await FaultCluster.start({ names: ['fltca', 'fltcb'], store: 'etcd', env: { KNIT_RECLAIM_AFTER: '3600' } });
  await c.createNetworks({ bridge: 'fb', overlay: 'fov', subnet: '10.66.0.0/24', macvlan: 'fmv' });
});

afterAll(async () => {
  tally.finish();
  await c?.stop();
});

test('a container removed on one host while knit is down on the other leaves no forwarding entry there once knit is back', async () => {
  await c.docker(B, ['run', '-d', '--name', 'gone', '--network', 'fov', IMAGE, 'sleep', '600']);
  const mac = (await c.docker(B, ['inspect', '-f', '{{.NetworkSettings.Networks.fov.MacAddress}}', 'gone'])).stdout.trim();
  await waitFor('its MAC on host A', async () => (await fdb(A)).includes(mac), { timeoutMs: 20_000 });
  await c.knits[A].kill9();
  tally.crash();
  await c.docker(B, ['rm', '-f', 'gone']);
  await c.knits[A].start();
  await c.doctor(A);
  const gone = await waitFor('the MAC to leave host A', async () => !(await fdb(A)).includes(mac), { timeoutMs: 20_000 }).catch(() => false);
  tally.op(true, 3);
  expect(tally.check(gone ? [] : [`host A still forwards ${mac} to host B, whose container went while A's knit was down`])).toEqual([]);
});

test('120+ container operations on bridge, overlay and macvlan networks while knit is SIGKILLed at least 20 times', async () => {
  // Left on purpose for the sweep to find at the end: an endpoint dockerd lost track of in a crash.
  abandoned = await abandonEndpoint(c, A, 'fb');
  left = await abandonEndpoint(c, B, 'fb', true);
  const networks = NETWORKS;
  const r = await churn(c, {
    networks,
    publishOn: 'fb',
    perHost: 5,
    ops: 120,
    timeMs: 240_000,
    crashes: { min: 20, everyMs: [1_000, 3_500], downMs: [0, 1_500] },
    seed: SEED,
  }, tally);
  lastOp = r.lastAt;
  const ops = Object.entries(r.byOp).map(([op, n]) => `${op} ${n.ok}/${n.ok + n.failed}`).join(', ');
  const joins = networks.map((n) => `${n} ${r.joins[n] ?? 0}`).join(', ');
  console.log(`churn: ${r.ops} operations (${r.failed} failed), ${r.crashes} SIGKILLs of knit; ok/all by kind: ${ops}; joins by network: ${joins}`);
  tally.note(`${r.ops} docker operations (ok/all: ${ops}; joins: ${joins}), ${r.crashes} knit SIGKILLs (seed ${SEED})`);
  const shortfalls = r.crashes >= 20 ? [] : [`only ${r.crashes} crashes were injected within the time bound`];
  // Each network must have been exercised: a network no container joined proves nothing about it.
  shortfalls.push(...networks.filter((n) => !r.joins[n]).map((n) => `no container joined ${n} during the churn`));
  // A SIGKILL fails only the operation in flight on that host: nearly all the others must succeed.
  expect(tally.check([...shortfalls, ...churnShortfalls(r, { ok: 100, okRatio: 0.8 })])).toEqual([]);
});

test('afterwards: every container pings, no address is shared, records match endpoints, no orphan link, entry or rule', async () => {
  // How many churned containers are left running is chance (a crash can fail a start): one fresh container per host
  // and network, started on the knit that was killed 20 times, makes the check cover every network on every host.
  const fresh = [A, B].flatMap((h) => NETWORKS.map((net) => ({ h, net })));
  for (const { h, net } of fresh) {
    const r = await c.docker(h, ['run', '-d', '--name', `after-${h}-${net}`, '--network', net, IMAGE, 'sleep', '600'], { reject: false });
    tally.op(r.exitCode === 0);
    expect(tally.check(r.exitCode === 0 ? [] : [`a fresh container on ${net} did not start on host ${h}: ${r.stderr.trim()}`])).toEqual([]);
  }
  const v = await verifyCluster(c, tally, { minPinged: fresh.length });
  inGrace = v.inGrace;
  expect(v.failures).toEqual(none(v.failures));
});

test('once the grace period for unused addresses has passed, the sweep leaves none leaked and none missing', async () => {
  expect(await verifyNoLeaks(c, tally, { since: lastOp, inGrace })).toEqual([]);
});

test('an endpoint dockerd never saw created, and one left whose DeleteEndpoint never arrived (knit crashed), are swept with their veths and addresses', async () => {
  const view = await gather(c);
  expect(tally.check([...(await remainsOf(c, abandoned, view)), ...(await remainsOf(c, left, view))])).toEqual([]);
});
