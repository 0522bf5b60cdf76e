// 6. Scale: the 1st and the Nth network, the 1st and the Nth endpoint on one host, and knit's memory there.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { alternate, createNetwork, DRIVERS, IMAGE, inParallel, inTime, timed, withBed, type Bed, type BenchContext, type Driver } from './bed.js';
import type { Figures, Row } from './report.js';
import { median, mib, ratio, seconds, times } from './stats.js';

/** Endpoints timed one at a time at each end of the run; those in between are made in parallel, untimed. */
const EDGE = 10;
const CONNECTIONS_PER_CONTAINER = 10;
const MIDDLE_PARALLEL = 4;
const SETTLE_MS = 5_000;

interface Plan {
  networks: number;
  endpoints: number;
}

const netName = (d: Driver, i: number) => `sc-${d[0]}${i}`;
const ctrName = (d: Driver, c: number) => `sc-${d[0]}c${c}`;
/** Distinct subnets per driver, given explicitly: the built-in default pools hold only about 30 networks. */
const subnet = (d: Driver, i: number) => `10.${d === 'knit' ? 130 : 140}.${i}.0/24`;

/** The endpoints in the order they are made: round j connects every container to its j-th network. */
function endpointOrder(plan: Plan): Array<{ container: number; network: number }> {
  const containers = plan.endpoints / CONNECTIONS_PER_CONTAINER;
  return [...Array(plan.endpoints)].map((_, e) => {
    const container = e % containers;
    const j = Math.floor(e / containers);
    return { container, network: ((container % 10) * 10 + j) % plan.networks };
  });
}

async function rssOf(pid: number | undefined): Promise<number> {
  const text = pid ? await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '') : '';
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)?.[1] ?? Number.NaN) * 1024;
}

function edgeRows(what: string, n: number, first: Record<Driver, number[]>, last: Record<Driver, number[]>): Row[] {
  const row = (metric: string, k: number, b: number): Row => ({ metric, knit: seconds(k), builtin: seconds(b), ratio: times(ratio(k, b)), target: 'flat' });
  return [
    row(`${what}: the 1st`, first.knit[0], first.builtin[0]),
    row(`${what}: median of the first ${first.knit.length}`, median(first.knit), median(first.builtin)),
    row(`${what}: the ${n}th`, last.knit.at(-1) ?? Number.NaN, last.builtin.at(-1) ?? Number.NaN),
    row(`${what}: median of the last ${last.knit.length}`, median(last.knit), median(last.builtin)),
  ];
}

async function networks(ctx: BenchContext, bed: Bed, plan: Plan) {
  const all = await alternate(ctx, plan.networks, async (d, i) => {
    const ms = (await timed(() => createNetwork(bed, d, netName(d, i), ['--subnet', subnet(d, i)]))).ms;
    if (d === 'builtin' && (i + 1) % 25 === 0) ctx.progress(`scale: ${i + 1} networks per driver`);
    return ms;
  });
  const made = all.knit.length;
  const slice = (from: number, to: number) => ({ knit: all.knit.slice(from, to), builtin: all.builtin.slice(from, to) });
  return { made, rows: edgeRows('`docker network create`', made, slice(0, EDGE), slice(Math.max(0, made - EDGE), made)) };
}

async function startContainers(ctx: BenchContext, bed: Bed, count: number): Promise<void> {
  const jobs = DRIVERS.flatMap((d) => [...Array(count)].map((_, c) => ctrName(d, c)));
  await inParallel({ ...ctx, deadline: Number.POSITIVE_INFINITY }, jobs, 4, async (name) => {
    await bed.docker(['run', '-d', '--name', name, IMAGE, 'sleep', '3600']);
  });
}

async function endpoints(ctx: BenchContext, bed: Bed, plan: Plan) {
  await startContainers(ctx, bed, plan.endpoints / CONNECTIONS_PER_CONTAINER);
  // Let the engine finish what the container starts left behind before the first endpoint is timed.
  await sleep(SETTLE_MS);
  const order = endpointOrder(plan);
  let failures = 0;
  let firstError = '';
  const connect = async (d: Driver, e: number) => {
    const { container, network } = order[e];
    const r = await bed.docker(['network', 'connect', netName(d, network), ctrName(d, container)], { reject: false });
    if (r.exitCode !== 0 && failures++ === 0) firstError = `${d}: ${r.stderr.trim().slice(0, 300)}`;
    return r.exitCode === 0;
  };
  const timedConnect = async (d: Driver, e: number) => {
    const t = await timed(() => connect(d, e));
    return t.value ? t.ms : undefined;
  };
  // The edges are bounded by their count and always run; the middle stops at the time budget.
  const always = { ...ctx, deadline: Number.POSITIVE_INFINITY };
  const first = await alternate(always, EDGE, (d, i) => timedConnect(d, i));
  let made = EDGE;
  const lastFrom = plan.endpoints - EDGE;
  while (made < lastFrom && inTime(ctx)) {
    const batch = [...Array(Math.min(50, lastFrom - made))].map((_, i) => made + i);
    // A batch always completes, so both drivers stop at the same endpoint.
    await Promise.all(DRIVERS.map((d) => inParallel(always, batch, MIDDLE_PARALLEL / 2, async (e) => void (await connect(d, e)))));
    made += batch.length;
    ctx.progress(`scale: ${made} endpoints per driver`);
  }
  const tail = Math.min(EDGE, plan.endpoints - made);
  const last = await alternate(always, tail, (d, i) => timedConnect(d, made + i));
  return { first, last, failures, firstError, made: made + tail };
}

export async function scale(ctx: BenchContext): Promise<Figures> {
  const plan: Plan = ctx.quick ? { networks: 20, endpoints: 100 } : { networks: 100, endpoints: 500 };
  return withBed('benchsc', async (bed) => {
    const engineRss0 = await rssOf(bed.host.enginePid);
    const rss0 = (await bed.status()).rssBytes;
    const nets = await networks(ctx, bed, plan);
    const afterNets = await bed.status();
    const eps = await endpoints(ctx, bed, { ...plan, networks: nets.made });
    const afterEps = await bed.status();
    const endpointCount = afterEps.endpoints.length;
    const engineRss1 = await rssOf(bed.host.enginePid);
    return {
      id: 'scale',
      rows: [
        ...nets.rows,
        ...(eps.last.knit.length > 0 ? edgeRows('`docker network connect` (endpoint)', eps.made, eps.first, eps.last) : []),
        { metric: 'knit RSS at start', knit: mib(rss0) },
        { metric: `knit RSS with ${afterNets.networks} networks`, knit: mib(afterNets.rssBytes) },
        { metric: `knit RSS with ${afterEps.networks} networks and ${endpointCount} endpoints`, knit: mib(afterEps.rssBytes) },
      ],
      notes: [
        `Networks: ${nets.made} per driver, created one at a time, alternated, each with an explicit /24 (the built-in default pools run out after about 30 networks).`,
        `Endpoints: ${plan.endpoints / CONNECTIONS_PER_CONTAINER} \`sleep\` containers per driver on the default bridge, each connected to ${CONNECTIONS_PER_CONTAINER} of the driver's networks with \`docker network connect\` (${plan.endpoints} endpoints per driver; a container start would add runc's cost to each). The first and last ${EDGE} are timed one at a time, alternated; those in between are made untimed in batches of 50 per driver, both drivers at once, ${MIDDLE_PARALLEL / 2} connects per driver at a time. Failed connects: ${eps.failures}${eps.firstError ? ` (first: ${eps.firstError})` : ''}.`,
        ...(eps.made < plan.endpoints ? [`The time budget ran out after ${eps.made} of ${plan.endpoints} endpoints per driver; the last rows are about the ${eps.made}th.`] : []),
        `dockerd's RSS (both drivers' networks and the ${2 * plan.endpoints / CONNECTIONS_PER_CONTAINER} containers) went from ${mib(engineRss0)} to ${mib(engineRss1)}; the built-in driver's memory is part of it and cannot be told apart.`,
      ],
    };
  });
}
