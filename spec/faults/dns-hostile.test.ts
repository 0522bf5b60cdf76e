// Hostile DNS: 10,000 generated packets (mutated and truncated queries, pointer loops, random bytes, responses,
// oversized and odd packets) and floods from many sources, at knit's resolver running as its own process in a
// namespace of its own, with a real upstream (dnsmasq) behind it. The resolver stays up, answers a good question
// after every 1,000, stays bounded in memory, and forwards nothing for sources it refuses.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DNS_ADDRESS, DnsBed } from '../support/dns-bed.js';
import { repoRoot } from '../support/layout.js';
import { run } from '../support/proc.js';
import { sampleMax } from './support/pool.js';
import { Tally } from './support/tally.js';

const SEED = Number(process.env.KNIT_FAULT_SEED ?? 20261202);
const COUNT = 10_000;
const CHECK_EVERY = 1_000;
const FLOOD = 4_000;
const MB = 1024 * 1024;
const PEAK_GROWTH = 64 * MB;
const UP = '10.54.0.2';
/** 10.53.0.10-41 are knit containers, 10.53.0.42-73 are not; 10.53.0.9 only asks the good questions. */
const KNIT = Array.from({ length: 32 }, (_, i) => `10.53.0.${10 + i}`);
const STRANGERS = Array.from({ length: 32 }, (_, i) => `10.53.0.${42 + i}`);
const CHECKER = '10.53.0.9';

interface Check { ok: boolean; why: string; ms: number }
interface Result { sent: number; counts: Record<string, number>; checks: Check[] }

const tally = new Tally('hostile DNS');
let bed: DnsBed;
let clients: string;

const rssOf = async (pid: number): Promise<number> => {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
  return kb ? Number(kb[1]) * 1024 : 0;
};

beforeAll(async () => {
  bed = await DnsBed.create({ prefix: 'kntdf', ownHost: true });
  clients = await bed.container({ ips: [CHECKER, ...KNIT, ...STRANGERS], route: 'default' });
  await bed.upstreams([{ ip: UP, addresses: ['/ext.test/192.0.2.7'] }]);
  await bed.setUpstreams([UP]);
  await bed.startResolver({
    queriers: Object.fromEntries([CHECKER, ...KNIT].map((ip) => [ip, ['red']])),
    records: { red: { demo1: { v4: ['10.53.0.10'] }, web: { v4: ['10.53.0.11', '10.53.0.12'], v6: ['fd53::11'] } } },
  });
});

afterAll(async () => {
  tally.finish();
  await bed?.dispose();
});

test(`${COUNT} hostile packets and floods from ${KNIT.length + STRANGERS.length} sources: up, answering, bounded, nothing forwarded for refused sources (seed ${SEED})`, async () => {
  const resolver = bed.resolver;
  if (!resolver) throw new Error('no resolver');
  const rssBefore = await rssOf(resolver.pid);
  const rss = sampleMax(() => rssOf(resolver.pid), 100);
  const spec = { server: DNS_ADDRESS, seed: SEED, count: COUNT, checkEvery: CHECK_EVERY, flood: FLOOD, tcpConnections: 300, knit: KNIT, strangers: STRANGERS, checker: CHECKER, expect: '10.53.0.10' };
  const started = Date.now();
  const out = await run(['ip', 'netns', 'exec', clients, 'node', join(repoRoot, 'spec/faults/support/dns-hostile.mjs'), JSON.stringify(spec)], { timeoutMs: 180_000 });
  const result = JSON.parse(out.stdout.trim()) as Result;
  const peak = await rss.stop();
  await new Promise((r) => setTimeout(r, 4_000)); // forwards still under way settle (3.5 s budget)
  const stats = await bed.resolverStats();
  const upstream = await bed.upstreamQueries(0);
  const leaked = upstream.filter((l) => /stranger-\d+\.ext\.test/.test(l));
  const forwardedForKnit = upstream.filter((l) => /knit-\d+\.ext\.test/.test(l));
  const seconds = (Date.now() - started) / 1000;
  tally.op(true, result.sent);
  console.log(`hostile DNS: ${result.sent} packets in ${seconds.toFixed(1)} s; RSS ${(rssBefore / MB).toFixed(0)} MB before, peak ${(peak / MB).toFixed(0)} MB`);
  console.log(`  kinds: ${JSON.stringify(result.counts)}\n  resolver: ${JSON.stringify(stats)}\n  upstream saw ${upstream.length} queries, ${forwardedForKnit.length} tagged from knit containers, ${leaked.length} from refused sources`);
  tally.note(`${result.sent} packets (seed ${SEED}); RSS ${(rssBefore / MB).toFixed(0)} -> peak ${(peak / MB).toFixed(0)} MB; ${stats.refused} refused, ${stats.formerr} FORMERR, ${stats.notimp} NOTIMP, ${stats.dropped} dropped`);

  const failures = {
    alive: tally.check(resolver.running() ? [] : ['the resolver exited']),
    answering: tally.check(result.checks.filter((c) => !c.ok).map((c) => `a good question went wrong: ${c.why} after ${c.ms} ms`)),
    checked: tally.check(result.checks.length === COUNT / CHECK_EVERY + 2 ? [] : [`only ${result.checks.length} good questions were asked`]),
    bounded: tally.check(peak - rssBefore > PEAK_GROWTH ? [`RSS peaked at ${(peak / MB).toFixed(0)} MB from ${(rssBefore / MB).toFixed(0)} MB`] : []),
    notForwarded: tally.check(leaked.map((l) => `forwarded for a refused source: ${l}`)),
    // Positive controls: the same kind of question from knit containers did reach the upstream, and strangers were answered REFUSED.
    controls: tally.check([
      ...(forwardedForKnit.length > 100 ? [] : [`only ${forwardedForKnit.length} questions from knit containers reached the upstream`]),
      ...(stats.refused > 500 ? [] : [`only ${stats.refused} REFUSED replies`]),
      ...(stats.formerr > 500 ? [] : [`only ${stats.formerr} FORMERR replies`]),
      ...(stats.dropped > 0 ? [] : ['nothing was dropped: the floods met no limit']),
    ]),
  };
  expect(failures).toEqual({ alive: [], answering: [], checked: [], bounded: [], notForwarded: [], controls: [] });
  const after = (await bed.ask<Array<{ answers: Array<{ data: string }> }>>(clients, { mode: 'tcp', source: CHECKER, queries: [{ name: 'web' }] }))[0];
  expect(after.answers.map((a) => a.data).sort()).toEqual(['10.53.0.11', '10.53.0.12']);
});
