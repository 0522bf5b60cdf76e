// 9. Names across hosts (issue 13): from `docker run -d --name N` on host A until a container on host B resolves N
// (knit's records through etcd, answered by knit's resolver behind Docker's own), beside the same on host A (Docker's
// embedded resolver knows its own containers: the floor any engine has).
import { IMAGE, inTime, stoppedEarly, type BenchContext } from './bed.js';
import { inNetns, netnsOfPid } from './iperf.js';
import { runSleeper, withOverlayBed, OVERLAY, type OverlayHost } from './overlay-bed.js';
import type { Figures } from './report.js';
import { run } from '../spec/support/testbed.js';
import { median, quantile, ratio, seconds, times } from './stats.js';

const RESOLVER = '169.254.53.53';
const POLL_LIMIT_MS = 30_000;
const POLL_MAX_ATTEMPTS = 600;

export interface Sample {
  runMs: number;
  resolvedMs?: number;
  attempts: number;
}

/** busybox nslookup (the host's) in the watcher's namespace, asking Docker's embedded resolver there, as the container would. */
async function resolves(watcher: string, name: string): Promise<boolean> {
  const r = await run([...inNetns(watcher), 'busybox', 'nslookup', name, '127.0.0.11'], { reject: false, timeoutMs: 10_000 });
  return /^Address:?\s+\d+\.\d+\.\d+\.\d+\s*$/m.test(r.stdout.split(/^Name:/m).slice(1).join('\n'));
}

export async function measureOnce(starter: OverlayHost, name: string, watcher: string, network = OVERLAY): Promise<Sample> {
  const started = performance.now();
  let runMs: number | undefined;
  let runFailed: string | undefined;
  const dockerRun = starter
    .docker(['run', '-d', '--name', name, '--network', network, '--stop-timeout', '1', IMAGE, 'sleep', '600'], { reject: false, timeoutMs: 60_000 })
    .then((r) => {
      runMs = performance.now() - started;
      if (r.exitCode !== 0) runFailed = r.stderr.trim().slice(0, 500);
    });
  let resolvedMs: number | undefined;
  let attempts = 0;
  while (resolvedMs === undefined && runFailed === undefined && attempts < POLL_MAX_ATTEMPTS && performance.now() - started < POLL_LIMIT_MS) {
    attempts++;
    if (await resolves(watcher, name)) resolvedMs = performance.now() - started;
  }
  await dockerRun;
  if (runFailed !== undefined) throw new Error(`docker run of ${name} failed: ${runFailed}`);
  return { runMs: runMs!, resolvedMs, attempts };
}

type Where = 'remote' | 'local';

export async function names(ctx: BenchContext): Promise<Figures> {
  const iterations = ctx.quick ? 5 : 15;
  return withOverlayBed('benchnm', ctx.progress, async ({ a, b }) => {
    const watchers: Record<Where, string> = {
      remote: netnsOfPid((await runSleeper(b, 'nm-watch-b')).pid),
      local: netnsOfPid((await runSleeper(a, 'nm-watch-a')).pid),
    };
    const samples: Record<Where, Sample[]> = { remote: [], local: [] };
    for (let i = 0; i < iterations && inTime(ctx); i++) {
      for (const where of ['remote', 'local'] as const) {
        const name = `nm-${where}-${i}`;
        try {
          const s = await measureOnce(a, name, watchers[where]);
          samples[where].push(s);
          ctx.progress(`names ${where} ${i + 1}/${iterations}: run ${seconds(s.runMs)}, ${s.resolvedMs === undefined ? 'never resolved' : `resolved ${seconds(s.resolvedMs)}`} (${s.attempts} lookups)`);
        } finally {
          await a.docker(['rm', '-f', name], { reject: false, timeoutMs: 60_000 });
        }
      }
    }
    const resolved = (w: Where) => samples[w].flatMap((s) => (s.resolvedMs === undefined ? [] : [s.resolvedMs]));
    const unresolved = (w: Where) => samples[w].filter((s) => s.resolvedMs === undefined).length;
    const [r, l] = [resolved('remote'), resolved('local')];
    const row = (metric: string, x: number, y: number, target = '') => ({ metric, knit: seconds(x), builtin: seconds(y), ratio: times(ratio(x, y)), target });
    return {
      id: 'names',
      labels: { knit: 'resolved on host B (knit)', builtin: 'resolved on host A (Docker\'s own)', ratio: 'B/A' },
      rows: [
        row('`docker run -d` on host A until the name resolves, median', median(r), median(l), '< 1 s'),
        row('the same, max', quantile(r, 1), quantile(l, 1)),
        row('`docker run -d` returned, median', median(samples.remote.map((s) => s.runMs)), median(samples.local.map((s) => s.runMs))),
        { metric: 'never resolved within 30 s', knit: String(unresolved('remote')), builtin: String(unresolved('local')), target: '0' },
      ],
      notes: [
        `Two hosts (dockerd 20.10, daemon.json "dns": ["${RESOLVER}"]) on a veth underlay, etcd 3.4 on it, knit on both (KNIT_STORE=etcd://…, KNIT_ADVERTISE=ul0, KNIT_DOCKER_HOST at each engine). ` +
          'Host A runs `docker run -d --name nm-… --network ov busybox sleep`; a container already on `ov` asks for that name from the moment docker run is invoked, ' +
          'on host B (Docker\'s embedded resolver forwards the unknown name to knit, which answers from the record host A published after the engine\'s events) and, alternated, on host A (Docker answers itself).',
        `Lookups: the host's busybox nslookup NAME 127.0.0.11 in the asking container's network namespace, one after the other, at most ${POLL_MAX_ATTEMPTS} or ${POLL_LIMIT_MS / 1000} s. ` +
          'Each lookup costs a process start (a few ms), so the figures are rounded up by that much. A fresh name each time; containers removed after each.',
        `${samples.remote.length} iterations per side.`,
        ...stoppedEarly(samples.remote.length, iterations),
      ],
    };
  }, { dns: [RESOLVER] });
}
