// Hostile input: a generated corpus of 10,000+ malformed and adversarial requests on knit's socket, with
// knit alone in a throwaway netns. Each one is refused, knit stays up with bounded memory, and nothing changes.
import { existsSync, readdirSync } from 'node:fs';
import { post } from '../support/client.js';
import { buildCorpus, type Hostile } from './support/corpus.js';
import { createFixture } from './support/fixture.js';
import { LoneKnit } from './support/lone-knit.js';
import { inParallel, sampleMax } from './support/pool.js';
import { sendRaw, type Outcome } from './support/raw-http.js';
import { localRecords } from './support/records.js';
import { diff, kernelState, type Snapshot } from './support/snapshot.js';
import { Tally } from './support/tally.js';
import type { Fixture } from './support/templates.js';

const SEED = Number(process.env.KNIT_FAULT_SEED ?? 20261123);
const CORPUS = { seed: SEED, size: 10_400, bigBodies: 24, slow: 120, cut: 150 };
const RUN_BOUND_MS = 120_000;
const MB = 1024 * 1024;
/** Peak and settled growth of knit's RSS over the run that still count as bounded. */
const PEAK_GROWTH = 256 * MB;
const SETTLED_GROWTH = 128 * MB;

const tally = new Tally('hostile input');
let knit: LoneKnit;
let fixture: Fixture;

const snapshot = async (): Promise<Snapshot> => ({ kernel: await kernelState((argv) => knit.exec(argv)), records: await localRecords(knit.stateDir) });
const leftovers = (): string[] => readdirSync('/tmp').filter((n) => n.startsWith('knit-hostile-'));

/** Why a reply is not the refusal the protocol asks for (undefined: it is). */
function verdict(h: Hostile, o: Outcome): string | undefined {
  if (h.cutAfter !== undefined) return undefined;
  if (o.kind !== 'reply') return o.kind === 'failed' ? `no reply: ${o.error}` : 'no reply';
  const body = o.body as { Err?: unknown; Error?: unknown } | undefined;
  if (o.status !== h.expect) return `HTTP ${o.status} (wanted ${h.expect}): ${o.raw.slice(0, 160)}`;
  if (typeof body?.Err !== 'string' || body.Err === '') return `no Err in ${o.raw.slice(0, 160)}`;
  if (h.expect === 500 && h.path.startsWith('/IpamDriver.') && body.Error !== body.Err) return `IPAM reply without Error: ${o.raw.slice(0, 160)}`;
  return undefined;
}

beforeAll(async () => {
  knit = await LoneKnit.start('flthostile');
  fixture = await createFixture(knit.socket);
});

afterAll(async () => {
  tally.finish();
  await knit?.dispose();
});

test(`${CORPUS.size} malformed requests: every one refused, knit up and bounded, nothing changed (seed ${SEED})`, async () => {
  const corpus = buildCorpus(fixture, CORPUS);
  const before = await snapshot();
  const statusBefore = (await post(knit.socket, '/knit.Status', '')).body as { networks: number; endpoints: unknown[] };
  const rssBefore = await knit.rssBytes();
  const rss = sampleMax(() => knit.rssBytes(), 200);
  const wrong = new Map<string, string[]>();
  const byKind = new Map<string, number>();
  const started = Date.now();
  const done = await inParallel(corpus, 16, started + RUN_BOUND_MS, async (h) => {
    const outcome = await sendRaw(knit.socket, h, 30_000);
    const why = verdict(h, outcome);
    byKind.set(h.kind, (byKind.get(h.kind) ?? 0) + 1);
    tally.op(outcome.kind === 'reply' && outcome.status === 200);
    if (why) wrong.set(h.kind, [...(wrong.get(h.kind) ?? []), `${h.method ?? 'POST'} ${h.path.slice(0, 60)} ${h.body.subarray(0, 120).toString()} -> ${why}`]);
  });
  const peak = await rss.stop();
  const seconds = (Date.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 2_000));
  const rssAfter = await knit.rssBytes();
  console.log(`hostile corpus: ${done} of ${corpus.length} requests in ${seconds.toFixed(1)} s; RSS ${(rssBefore / MB).toFixed(0)} MB before, peak ${(peak / MB).toFixed(0)} MB, ${(rssAfter / MB).toFixed(0)} MB after`);
  console.log([...byKind].sort().map(([k, n]) => `  ${String(n).padStart(5)}  ${k}`).join('\n'));
  tally.note(`${done} requests in ${seconds.toFixed(0)} s (seed ${SEED}); RSS ${(rssBefore / MB).toFixed(0)} -> peak ${(peak / MB).toFixed(0)} -> ${(rssAfter / MB).toFixed(0)} MB`);

  const refused = tally.check([...wrong].map(([kind, samples]) => `${kind}: ${samples.length} not refused properly, e.g. ${samples.slice(0, 3).join(' | ')}`));
  const ran = tally.check(done === corpus.length ? [] : [`only ${done} of ${corpus.length} requests ran within ${RUN_BOUND_MS} ms`]);
  const alive = tally.check(knit.running() && (await post(knit.socket, '/Plugin.Activate', '')).status === 200 ? [] : ['knit is not running or not answering']);
  const bounded = tally.check([
    ...(peak - rssBefore > PEAK_GROWTH ? [`RSS peaked at ${(peak / MB).toFixed(0)} MB from ${(rssBefore / MB).toFixed(0)} MB`] : []),
    ...(rssAfter - rssBefore > SETTLED_GROWTH ? [`RSS settled at ${(rssAfter / MB).toFixed(0)} MB from ${(rssBefore / MB).toFixed(0)} MB`] : []),
  ]);
  const unchanged = tally.check(diff(before, await snapshot()));
  const statusAfter = (await post(knit.socket, '/knit.Status', '')).body as { networks: number; endpoints: unknown[] };
  const sameStatus = tally.check(JSON.stringify([statusAfter.networks, statusAfter.endpoints]) === JSON.stringify([statusBefore.networks, statusBefore.endpoints]) ? [] : ['knit.Status reports other networks or endpoints']);
  const noShell = tally.check(leftovers().map((f) => `/tmp/${f} exists: a request reached a shell`));
  expect({ refused, ran, alive, bounded, unchanged, sameStatus, noShell }).toEqual({ refused: [], ran: [], alive: [], bounded: [], unchanged: [], sameStatus: [], noShell: [] });
});

test('after the corpus the fixture still works: its endpoint answers, an address can be taken and given back', async () => {
  const info = await post(knit.socket, '/NetworkDriver.EndpointOperInfo', { NetworkID: fixture.networkId, EndpointID: fixture.endpointId });
  const taken = await post(knit.socket, '/IpamDriver.RequestAddress', { PoolID: fixture.poolId, Address: '', Options: null });
  const given = await post(knit.socket, '/IpamDriver.ReleaseAddress', { PoolID: fixture.poolId, Address: String(taken.body?.Address).split('/')[0] });
  tally.op(true, 3);
  const failures = tally.check([
    ...(info.body?.Value?.address === `${fixture.prefix}.2/24` ? [] : [`EndpointOperInfo: ${info.raw}`]),
    ...(taken.status === 200 && given.status === 200 ? [] : [`RequestAddress ${taken.raw} / ReleaseAddress ${given.raw}`]),
  ]);
  expect(failures).toEqual([]);
});

test('RequestPool in an address space knit never advertised is refused and creates no pool', async () => {
  const r = await post(knit.socket, '/IpamDriver.RequestPool', { AddressSpace: 'no-such-space', Pool: `${fixture.freePrefix}.0/24`, SubPool: '', Options: {}, V6: false });
  tally.op(r.status !== 200);
  const created = [...(await localRecords(knit.stateDir)).keys()].filter((k) => k.startsWith(`ipam/pools/${fixture.freePrefix}.0_24`));
  if (r.status === 200) await post(knit.socket, '/IpamDriver.ReleasePool', { PoolID: r.body.PoolID });
  expect(tally.check([...(r.status === 500 ? [] : [`answered ${r.status}: ${r.raw}`]), ...created.map((k) => `record ${k} created`)])).toEqual([]);
});

test('a port map of 1,000 full-range mappings does not stall knit: other calls are answered within 2 s meanwhile', async () => {
  const mappings = Array.from({ length: 1_000 }, () => ({ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 1, HostPortEnd: 65535 }));
  const big = post(knit.socket, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: fixture.networkId, EndpointID: fixture.endpointId, Options: { 'com.docker.network.portmap': mappings } }, 120_000).catch((err: Error) => ({ status: 0, raw: err.message }));
  await new Promise((r) => setTimeout(r, 300));
  const t = Date.now();
  const other = await post(knit.socket, '/Plugin.Activate', '', 120_000);
  const latency = Date.now() - t;
  const reply = await big;
  tally.op(other.status === 200, 2);
  console.log(`Activate answered in ${latency} ms while a 1,000-mapping ProgramExternalConnectivity ran (it answered ${reply.status})`);
  expect(tally.check(latency < 2_000 ? [] : [`Plugin.Activate took ${latency} ms: the port-map request blocked knit's event loop`])).toEqual([]);
});

test('ReleasePool of a PoolID with an ip-range the pool does not have leaves the pool alone', async () => {
  // A pool of its own: releasing the fixture's would make the sweep delete the fixture's network as an orphan.
  const subnet = '10.244.0.0/24';
  const held = await post(knit.socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: subnet, SubPool: '10.244.0.0/25', Options: {}, V6: false });
  const r = await post(knit.socket, '/IpamDriver.ReleasePool', { PoolID: `knit:${subnet}~10.244.0.128/25` });
  tally.op(r.status !== 200, 2);
  const kept = (await localRecords(knit.stateDir)).has('ipam/pools/10.244.0.0_24');
  await post(knit.socket, '/IpamDriver.ReleasePool', { PoolID: held.body.PoolID });
  expect(tally.check(kept ? [] : [`pool ${subnet} (ip-range 10.244.0.0/25) was released by a PoolID naming ip-range 10.244.0.128/25 (reply ${r.status} ${r.raw})`])).toEqual([]);
});

test('no request left a file behind (no shell ran)', () => {
  expect(tally.check(existsSync('/tmp') ? leftovers() : ['/tmp is missing'])).toEqual([]);
});
