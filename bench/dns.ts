// 8. Resolver throughput (issue 13): answers/s for knit names with 16 clients in a namespace, and the answer time.
import { DnsBed } from '../spec/support/dns-bed.js';
import { inTime, type BenchContext } from './bed.js';
import type { Figures } from './report.js';
import { median, sig } from './stats.js';

/** What the load client (spec/support/dns-client.mjs, mode "load") reports for one round. */
interface Round {
  answers: number;
  lost: number;
  /** Replies that were not an answer (an error code or no records). */
  wrong: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
}

const CLIENTS = 16;
const SOURCES = Array.from({ length: CLIENTS }, (_, i) => `10.53.0.${10 + i}`);
const UP = '10.54.0.2';

async function rounds(a: { ctx: BenchContext; bed: DnsBed; ns: string; name: string; count: number; seconds: number }): Promise<Round[]> {
  const out: Round[] = [];
  while (out.length < a.count && inTime(a.ctx)) {
    out.push(await a.bed.ask<Round>(a.ns, { mode: 'load', clients: CLIENTS, sources: SOURCES, seconds: a.seconds, name: a.name }));
    a.ctx.progress(`dns ${a.name}: ${out[out.length - 1].perSecond}/s, p50 ${out[out.length - 1].p50ms} ms`);
  }
  return out;
}

const total = (r: Round[], key: 'lost' | 'wrong'): number => r.reduce((s, x) => s + x[key], 0);
const summary = (r: Round[]): string => `${r.map((x) => x.perSecond).join(', ')} answers/s; ${total(r, 'lost')} lost (1 s timeout), ${total(r, 'wrong')} replies that were not answers`;

export async function dns(ctx: BenchContext): Promise<Figures> {
  const count = ctx.quick ? 1 : 3;
  const seconds = ctx.quick ? 3 : 5;
  const bed = await DnsBed.create({ prefix: 'kntdb', ownHost: true });
  try {
    const ns = await bed.container({ ips: SOURCES, route: 'default' });
    await bed.upstreams([{ ip: UP, addresses: ['/ext.test/192.0.2.7'] }]);
    await bed.setUpstreams([UP]);
    await bed.startResolver({
      queriers: Object.fromEntries(SOURCES.map((ip) => [ip, ['red']])),
      records: { red: { demo1: { v4: ['10.53.0.10'] }, ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`svc${i}`, { v4: [`10.53.2.${i % 250}`] }])) } },
    });
    await bed.ask(ns, { mode: 'load', clients: CLIENTS, sources: SOURCES, seconds: 1, name: 'demo1' }); // warm-up
    const knit = await rounds({ ctx, bed, ns, name: 'demo1', count, seconds });
    const forwarded = await rounds({ ctx, bed, ns, name: 'ext.test', count: 1, seconds });
    const stats = await bed.resolverStats();
    const med = (r: Round[], key: keyof Round) => median(r.map((x) => x[key]));
    return {
      id: 'dns',
      rows: [
        { metric: `knit names, ${CLIENTS} clients, answers/s (median of ${knit.length} rounds of ${seconds} s)`, knit: `${Math.round(med(knit, 'perSecond'))}/s`, target: '≥ 10,000/s' },
        { metric: 'knit names, answer time p50 / p99', knit: `${sig(med(knit, 'p50ms'))} ms / ${sig(med(knit, 'p99ms'))} ms` },
        { metric: `forwarded names (dnsmasq upstream), ${CLIENTS} clients, answers/s`, knit: `${Math.round(med(forwarded, 'perSecond'))}/s, p50 ${sig(med(forwarded, 'p50ms'))} ms` },
      ],
      notes: [
        `${CLIENTS} UDP clients in one namespace, each from its own address (as ${CLIENTS} containers), each keeping one query outstanding; the resolver on 169.254.53.53 on the host namespace's lo, reached through a bridge, as containers reach it. Time per answer as the client measured it (send to receive).`,
        `knit's resolver code (dist/dns) run as its own process with a table of 501 names (spec/support/dns-server.mjs), since the daemon's wiring to the engine's names is separate work; the client is one Node process on the same 2 cores.`,
        `Rounds: knit names ${summary(knit)}; forwarded ${summary(forwarded)}.`,
        `Resolver counters after the run: ${JSON.stringify(stats)}.`,
        'No built-in column: Docker\'s embedded resolver (127.0.0.11) answers inside each container\'s namespace and is not a server one can load from outside.',
      ],
    };
  } finally {
    await bed.dispose();
  }
}
