// Store faults: three hosts on etcd; containers churn while etcd is stopped and restarted, and while one host is cut
// off from the store and the other hosts (its underlay link down) for longer than its lease; then every invariant holds.
import { setTimeout as sleep } from 'node:timers/promises';
import { post } from '../support/client.js';
import { IMAGE, waitFor } from '../support/testbed.js';
import { churn, churnShortfalls } from './support/churn.js';
import { FaultCluster } from './support/fault-cluster.js';
import { listening, socketsOf, isResolver } from './support/sockets.js';
import { Tally } from './support/tally.js';
import { none, verifyCluster, verifyNoLeaks } from './support/verify.js';

const SEED = Number(process.env.KNIT_FAULT_SEED ?? 20261123);
const tally = new Tally('store faults');
let c: FaultCluster;
let lastOp = Date.now();
let inGrace = 0;
const C = 2;
/** knit's lease TTL (src/daemon.ts LEASE_TTL_SECONDS is 10): a cut longer than this makes the others drop the host. */
const CUT_MS = 15_000;

/**
 * Churns while `fault` runs; returns what falls short. Operations may fail cleanly while the store is away, but the
 * churn starts 6 s before the fault and goes on after it: at least 15 operations, and a third of all, must succeed.
 */
const churnWhile = async (prefix: string, seed: number, fault: () => Promise<void>): Promise<string[]> => {
  const run = churn(c, { networks: ['sb', 'sov'], publishOn: 'sb', perHost: 4, ops: 45, timeMs: 120_000, seed, prefix }, tally);
  await fault();
  const r = await run;
  lastOp = r.lastAt;
  tally.note(`${prefix}: ${r.ops} docker operations, ${r.failed} failed during the fault (as they should, cleanly)`);
  return churnShortfalls(r, { ok: 15, okRatio: 1 / 3 });
};

/**
 * After a fault has ended, on every host: a container started on the bridge network gets an address from knit
 * (within 30 s: etcd's client reconnects first). These containers stay for the invariant checks that follow.
 */
async function answersAfter(phase: string): Promise<string[]> {
  const failures: string[] = [];
  for (const [i, h] of c.hosts.entries()) {
    const name = `${phase}after${i}`;
    const ip = await waitFor(`a container on ${h.name} after the ${phase} fault`, async () => {
      await c.docker(i, ['rm', '-f', name], { reject: false });
      const r = await c.docker(i, ['run', '-d', '--name', name, '--network', 'sb', IMAGE, 'sleep', '3600'], { reject: false });
      if (r.exitCode !== 0) return false;
      return (await c.docker(i, ['inspect', '-f', '{{.NetworkSettings.Networks.sb.IPAddress}}', name])).stdout.trim();
    }, { timeoutMs: 30_000, intervalMs: 2_000 }).catch(() => '');
    tally.op(ip !== '');
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) failures.push(`${h.name}: no container started with an address on sb within 30 s of the ${phase} fault's end (got "${ip}")`);
  }
  lastOp = Date.now();
  return failures;
}

beforeAll(async () => {
  c = await FaultCluster.start({ names: ['fltsa', 'fltsb', 'fltsc'], store: 'etcd', env: { KNIT_RECLAIM_AFTER: '3600' } });
  await c.createNetworks({ bridge: 'sb', overlay: 'sov', subnet: '10.67.0.0/24' });
});

afterAll(async () => {
  tally.finish();
  await c?.stop();
});

test('containers churn while etcd is stopped for 10 s and started again', async () => {
  const shortfalls = await churnWhile('stop', SEED, async () => {
    await sleep(6_000);
    await c.etcd!.stop();
    tally.crash();
    await sleep(10_000);
    await c.etcd!.restart();
  });
  expect(tally.check(shortfalls)).toEqual([]);
  // Positive control of the restart: etcd answers again, knit on every host answers dockerd, and a new container gets its network.
  expect(tally.check(await answersAfter('stop'))).toEqual([]);
});

test('containers churn while one host is cut off from the store and the other hosts for longer than its lease', async () => {
  const shortfalls = await churnWhile('cut', SEED + 1, async () => {
    await sleep(6_000);
    await c.cut(C);
    tally.crash();
    await sleep(CUT_MS);
    await c.mend(C);
  });
  expect(tally.check(shortfalls)).toEqual([]);
  // The host that was cut off is back: its knit answers dockerd and a container started there gets its network.
  expect(tally.check(await answersAfter('cut'))).toEqual([]);
});

test('afterwards: every container pings, no address is shared, records match endpoints, no orphan link, entry or rule', async () => {
  // The containers answersAfter started are running on every host, at least.
  const v = await verifyCluster(c, tally, { minPinged: 2 * c.hosts.length });
  inGrace = v.inGrace;
  expect(v.failures).toEqual(none(v.failures));
});

test('with a cluster store, knit holds connections to etcd and listens on no TCP or UDP port but its resolver\'s', async () => {
  const failures: string[] = [];
  for (const [i, k] of c.knits.entries()) {
    const open = (await socketsOf(k.proc!.pid)).filter(listening);
    // Positive control: the resolver's two sockets are seen, so the probe does see knit's listeners.
    const resolver = open.filter(isResolver).map((s) => s.table).sort().join(',');
    if (resolver !== 'tcp,udp') failures.push(`${c.hosts[i].name}: the resolver's sockets on 169.254.53.53:53 are not both there (seen: ${resolver || 'none'})`);
    for (const s of open.filter((x) => !isResolver(x))) failures.push(`${c.hosts[i].name}: knit listens on ${s.table} ${s.local}`);
  }
  expect(tally.check(failures)).toEqual([]);
});

test('knit SIGKILLed on a host cut off from the store starts again and answers dockerd there', async () => {
  await c.cut(C);
  await c.knits[C].kill9();
  tally.crash();
  const refused = await c.knits[C].start().then(() => '', (err: Error) => err.message.slice(0, 300));
  const answers = refused ? 0 : (await post(c.knits[C].socket, '/NetworkDriver.EndpointOperInfo', { NetworkID: '0'.repeat(64), EndpointID: '0'.repeat(64) })).status;
  await c.mend(C);
  // Whatever happened, the host gets its knit back for the clean-up.
  if (refused) await c.knits[C].start();
  tally.op(!refused);
  expect(tally.check(refused ? [`knit could not start while its host was cut off from etcd: ${refused}`] : answers === 200 ? [] : [`knit answered ${answers}`])).toEqual([]);
});

test('once the grace period for unused addresses has passed, the sweep leaves none leaked and none missing', async () => {
  expect(await verifyNoLeaks(c, tally, { since: lastOp, inGrace })).toEqual([]);
});
