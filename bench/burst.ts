// 2. Burst start: 50 containers started at once on one network, timed until every one runs and answers a ping.
import { alternate, createNetwork, DRIVERS, IMAGE, stoppedEarly, withBed, type Bed, type BenchContext, type Driver } from './bed.js';
import type { Figures } from './report.js';
import { median, millis, ratio, seconds, spreadSeconds, times } from './stats.js';

const CONTAINERS = 50;
const RUN_TIMEOUT_MS = 120_000;
const PING_WINDOW_MS = 30_000;

interface Burst {
  ms: number;
  failures: number;
  firstError?: string;
}

/** Pings every address once from the host's namespace (one shell, one ping each, in parallel); returns those that answered. */
async function pingOnce(bed: Bed, ips: string[]): Promise<string[]> {
  const script = 'for ip in "$@"; do (ping -c 1 -W 1 -q "$ip" >/dev/null 2>&1 && echo "$ip") & done; wait';
  const r = await bed.host.exec(['sh', '-c', script, 'sh', ...ips], { reject: false, timeoutMs: 10_000 });
  return r.stdout.split('\n').filter(Boolean);
}

async function pingUntilAll(bed: Bed, ips: string[]): Promise<Set<string>> {
  const pending = new Set(ips);
  const deadline = Date.now() + PING_WINDOW_MS;
  for (let i = 0; i < 30 && pending.size > 0 && Date.now() < deadline; i++) {
    for (const ip of await pingOnce(bed, [...pending])) pending.delete(ip);
  }
  return pending;
}

async function burstOnce(bed: Bed, network: string, tag: string): Promise<Burst> {
  const names = [...Array(CONTAINERS)].map((_, i) => `bu-${tag}-${i}`);
  const started = performance.now();
  const runs = await Promise.all(
    names.map((n) => bed.docker(['run', '-d', '--name', n, '--network', network, IMAGE, 'sleep', '600'], { reject: false, timeoutMs: RUN_TIMEOUT_MS })),
  );
  const running = names.filter((_, i) => runs[i].exitCode === 0);
  const firstError = runs.find((r) => r.exitCode !== 0)?.stderr.trim().slice(0, 300);
  const format = `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`;
  const inspect = running.length ? await bed.docker(['inspect', '-f', format, ...running], { reject: false }) : { stdout: '' };
  const ips = inspect.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const silent = await pingUntilAll(bed, ips);
  const ms = performance.now() - started;
  await bed.docker(['rm', '-f', ...names], { reject: false, timeoutMs: RUN_TIMEOUT_MS });
  return { ms, failures: CONTAINERS - ips.length + silent.size, ...(firstError ? { firstError } : {}) };
}

export async function burst(ctx: BenchContext): Promise<Figures> {
  const rounds = ctx.quick ? 1 : 5;
  return withBed('benchbu', async (bed) => {
    const net: Record<Driver, string> = { knit: 'bu-knit', builtin: 'bu-builtin' };
    for (const d of DRIVERS) await createNetwork(bed, d, net[d]);
    const failures: Record<Driver, number> = { knit: 0, builtin: 0 };
    const errors: string[] = [];
    const samples = await alternate(ctx, rounds, async (d, round) => {
      const b = await burstOnce(bed, net[d], `${d[0]}${round}`);
      failures[d] += b.failures;
      if (b.firstError) errors.push(`${d} round ${round + 1}: ${b.firstError}`);
      ctx.progress(`burst ${d} round ${round + 1}/${rounds}: ${seconds(b.ms)}, ${b.failures} failures`);
      return b.ms;
    });
    const k = median(samples.knit);
    const b = median(samples.builtin);
    const calls = (await bed.status()).calls;
    const served = ['CreateEndpoint', 'Join'].map((c) => {
      const s = calls[`/NetworkDriver.${c}`];
      return s ? `${c} p50 ${millis(s.p50)}, p99 ${millis(s.p99)}` : `${c} not seen`;
    });
    return {
      id: 'burst',
      rows: [
        { metric: `${CONTAINERS} concurrent \`docker run -d\` until all answer a ping, median`, knit: seconds(k), builtin: seconds(b), ratio: times(ratio(k, b)), target: '≤ 1.1×' },
        { metric: 'failures (run failed or no ping reply), all rounds', knit: `${failures.knit} of ${CONTAINERS * samples.knit.length}`, builtin: `${failures.builtin} of ${CONTAINERS * samples.builtin.length}`, target: '0' },
      ],
      notes: [
        `${samples.knit.length} round(s) per driver, alternated. Clock: from launching the ${CONTAINERS} docker CLIs at once until the last container answered one ICMP echo from the host (addresses from one \`docker inspect\`); containers removed between rounds.`,
        `knit: ${spreadSeconds(samples.knit)}; built-in: ${spreadSeconds(samples.builtin)}.`,
        `As knit served them during the bursts: ${served.join('; ')}.`,
        ...errors.slice(0, 3).map((e) => `First error: ${e}`),
        ...stoppedEarly(samples.knit.length, rounds),
      ],
    };
  });
}
