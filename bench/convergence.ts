// 7. Overlay convergence: the time from `docker run -d` of a container on host A until a container already running
// on host B gets a ping reply from it, over a knit overlay with etcd; beside the same measurement between two
// containers of a knit bridge network on one host (what `docker run` and the first reply cost with no other host).
import { IMAGE, inTime, stoppedEarly, type BenchContext } from './bed.js';
import { inNetns, netnsOfPid } from './iperf.js';
import { OVERLAY, runSleeper, withOverlayBed, type OverlayHost } from './overlay-bed.js';
import type { Figures } from './report.js';
import { run } from '../spec/support/testbed.js';
import { median, quantile, ratio, seconds, times } from './stats.js';

type Mode = 'overlay' | 'bridge';
const MODES: readonly Mode[] = ['overlay', 'bridge'];
const BRIDGE = 'br';
const BRIDGE_SUBNET = '10.79.0.0/24';
/** Addresses handed to the measured containers: a new one each iteration (see the note on neighbour caches). */
const FIRST_HOST_NO = 100;

const POLL_LIMIT_MS = 30_000;
const POLL_MAX_ATTEMPTS = 300;
const PING_WAIT_S = '0.1';

export interface Sample {
  runMs: number;
  replyMs?: number;
  attempts: number;
}

/**
 * Starts container `name` with address `ip` on `network` of `starter`, and from the namespace `watcher` pings `ip`
 * from the moment `docker run` is invoked until the first reply (bounded: POLL_LIMIT_MS and POLL_MAX_ATTEMPTS).
 * Before each ping the watcher's neighbour entry for `ip` is flushed, so each attempt sends a fresh ARP request
 * (otherwise an unanswered one is retried only every second and the figure would be rounded up to that).
 */
export async function measureOnce(starter: OverlayHost, network: string, name: string, ip: string, watcher: string): Promise<Sample> {
  const started = performance.now();
  let runMs: number | undefined;
  let runFailed: string | undefined;
  const dockerRun = starter
    .docker(['run', '-d', '--name', name, '--network', network, '--ip', ip, '--stop-timeout', '1', IMAGE, 'sleep', '600'], { reject: false, timeoutMs: 60_000 })
    .then((r) => {
      runMs = performance.now() - started;
      if (r.exitCode !== 0) runFailed = r.stderr.trim().slice(0, 500);
    });
  let replyMs: number | undefined;
  let attempts = 0;
  const probe = `ip neigh flush to ${ip} dev eth0 2>/dev/null; exec ping -n -q -c 1 -W ${PING_WAIT_S} ${ip} >/dev/null 2>&1`;
  while (replyMs === undefined && runFailed === undefined && attempts < POLL_MAX_ATTEMPTS && performance.now() - started < POLL_LIMIT_MS) {
    attempts++;
    const r = await run([...inNetns(watcher), 'sh', '-c', probe], { reject: false, timeoutMs: 5_000 });
    if (r.exitCode === 0) replyMs = performance.now() - started;
  }
  await dockerRun;
  if (runFailed !== undefined) throw new Error(`docker run of ${name} failed: ${runFailed}`);
  return { runMs: runMs!, replyMs, attempts };
}

const summary = (s: number[]) => ({ p50: median(s), p90: quantile(s, 0.9), max: quantile(s, 1) });

export async function convergence(ctx: BenchContext): Promise<Figures> {
  const iterations = ctx.quick ? 5 : 15;
  return withOverlayBed('benchcv', ctx.progress, async ({ a, b }) => {
    // Host A already takes part in the overlay (a resident container), as in a running cluster; host B's watcher pings.
    await runSleeper(a, 'cv-resident');
    const watchOverlay = netnsOfPid((await runSleeper(b, 'cv-watch')).pid);
    await a.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '--subnet', BRIDGE_SUBNET, BRIDGE]);
    const watchBridge = netnsOfPid((await runSleeper(a, 'cv-watch-br', BRIDGE)).pid);

    const samples: Record<Mode, Sample[]> = { overlay: [], bridge: [] };
    const noReply: Record<Mode, number> = { overlay: 0, bridge: 0 };
    for (let i = 0; i < iterations && inTime(ctx); i++) {
      for (const mode of MODES) {
        const name = `cv-${mode}-${i}`;
        const ip = mode === 'overlay' ? `10.77.0.${FIRST_HOST_NO + i}` : `10.79.0.${FIRST_HOST_NO + i}`;
        try {
          const s = await measureOnce(a, mode === 'overlay' ? OVERLAY : BRIDGE, name, ip, mode === 'overlay' ? watchOverlay : watchBridge);
          samples[mode].push(s);
          if (s.replyMs === undefined) noReply[mode]++;
          const reply = s.replyMs === undefined ? 'no reply' : `reply ${seconds(s.replyMs)}`;
          ctx.progress(`convergence ${mode} ${i + 1}/${iterations}: run ${seconds(s.runMs)}, ${reply} (${s.attempts} pings)`);
        } finally {
          await a.docker(['rm', '-f', name], { reject: false, timeoutMs: 60_000 });
        }
      }
    }
    const runs = (m: Mode) => summary(samples[m].map((s) => s.runMs));
    const replies = (m: Mode) => summary(samples[m].flatMap((s) => (s.replyMs === undefined ? [] : [s.replyMs])));
    const lag = (m: Mode) => median(samples[m].flatMap((s) => (s.replyMs === undefined ? [] : [s.replyMs - s.runMs])));
    const [ro, rb, po, pb] = [runs('overlay'), runs('bridge'), replies('overlay'), replies('bridge')];
    const row = (metric: string, o: number, br: number, target = '') => ({ metric, knit: seconds(o), builtin: seconds(br), ratio: times(ratio(o, br)), target });
    const signed = (ms: number) => (ms < 0 ? `−${seconds(-ms)}` : `+${seconds(ms)}`);
    return {
      id: 'convergence',
      labels: { knit: 'knit overlay, A → B', builtin: 'knit bridge, one host', ratio: 'overlay/bridge' },
      rows: [
        row('(a) `docker run -d` returned, median', ro.p50, rb.p50),
        row('(a) `docker run -d` returned, p90', ro.p90, rb.p90),
        row('(a) `docker run -d` returned, max', ro.max, rb.max),
        row('(b) first ping reply, median', po.p50, pb.p50, '< 1 s'),
        row('(b) first ping reply, p90', po.p90, pb.p90),
        row('(b) first ping reply, max', po.max, pb.max),
        { metric: '(b) − (a), median', knit: signed(lag('overlay')), builtin: signed(lag('bridge')) },
      ],
      notes: [
        'Two hosts (dockerd 20.10 each) on a veth underlay, etcd 3.4 on it, knit on both (KNIT_STORE=etcd://…, KNIT_ADVERTISE=ul0). Overlay: ' +
          'host A runs `docker run -d --network ov --ip 10.77.0.N busybox sleep` while host B already has a container on `ov` (and host A a resident one); ' +
          'bridge: the same on host A on a knit bridge network (its addresses also allocated through etcd, as every knit pool is with a cluster store), pinged by a container already on it.',
        `Times from the \`docker run\` invocation. The watcher pings from its own network namespace (host's ping via nsenter, -c 1 -W ${PING_WAIT_S}), from the moment docker run starts, ` +
          `at most ${POLL_MAX_ATTEMPTS} attempts or ${POLL_LIMIT_MS / 1000} s; before each attempt its neighbour entry for the address is flushed, so each attempt sends a fresh ARP ` +
          '(an unanswered ARP is otherwise retried once a second and would round the figure up to that). Each container gets a new address, so no neighbour cache holds an old MAC.',
        `${samples.overlay.length} iterations per mode, alternated overlay, bridge, …; containers removed after each. No reply within the limit: overlay ${noReply.overlay}, bridge ${noReply.bridge}.`,
        ...stoppedEarly(samples.overlay.length, iterations),
      ],
    };
  });
}
