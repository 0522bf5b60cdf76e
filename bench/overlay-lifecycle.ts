// 10. Container lifecycle on a knit overlay (through etcd) against a knit bridge network on the same host: the wall
// time of `docker run --rm --network N busybox true` on each, alternated, with one knit serving both. At the end, with
// one container left running on each host, knit's metrics are scraped (KNIT_METRICS on a unix socket) and kept as
// docs/metrics.md's sample.
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { testbedDir } from '../spec/support/layout.js';
import { value } from '../spec/support/prom-text.js';
import { waitFor } from '../spec/support/proc.js';
import { IMAGE, inTime, stoppedEarly, timed, type BenchContext } from './bed.js';
import { OVERLAY, OVERLAY_SUBNET, runSleeper, withOverlayBed } from './overlay-bed.js';
import type { Figures } from './report.js';
import { median, ratio, seconds, spreadSeconds, times } from './stats.js';

const WARMUP = 2;
const BRIDGE = 'lo-bridge';
type Path = 'overlay' | 'bridge';
const PATHS: readonly Path[] = ['overlay', 'bridge'];
/** Where the scrape taken at the end is kept (a run's output, not part of the repository). */
export const METRICS_SAMPLE = join(testbedDir, 'bench', 'metrics-sample.txt');

function scrapeUnix(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics', timeout: 10_000 }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET /metrics answered ${res.statusCode}: ${text.slice(0, 300)}`))));
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
    req.end();
  });
}

export async function overlayLifecycle(ctx: BenchContext): Promise<Figures> {
  const runs = ctx.quick ? 6 : 24;
  const metricsSocket = (dir: string) => join(dir, 'knit-metrics.sock');
  return withOverlayBed('benchlo', ctx.progress, async ({ a, b, vni }) => {
    await a.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', BRIDGE]);
    const net: Record<Path, string> = { overlay: OVERLAY, bridge: BRIDGE };
    const once = async (p: Path) => (await timed(() => a.docker(['run', '--rm', '--network', net[p], IMAGE, 'true']))).ms;
    for (let i = 0; i < WARMUP && inTime(ctx); i++) for (const p of PATHS) await once(p);
    const samples: Record<Path, number[]> = { overlay: [], bridge: [] };
    for (let i = 0; i < runs && inTime(ctx); i++) {
      for (const p of PATHS) samples[p].push(await once(p));
      if ((i + 1) % 6 === 0) ctx.progress(`overlay lifecycle ${i + 1}/${runs}`);
    }
    // After the timing: a container on each host, so the sample shows a peer, its entries and a published record.
    await runSleeper(a, 'lo-a');
    await runSleeper(b, 'lo-b');
    const sample = await waitFor('host A\'s metrics to show host B\'s container', async () => {
      const text = await scrapeUnix(metricsSocket(a.host.dir));
      return value(text, 'knit_overlay_remote_endpoints', { segment: OVERLAY_SUBNET.replace('/', '_') }) === 1 ? text : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    await mkdir(join(testbedDir, 'bench'), { recursive: true });
    await writeFile(METRICS_SAMPLE, sample);
    const o = median(samples.overlay);
    const br = median(samples.bridge);
    return {
      id: 'overlay-lifecycle',
      labels: { knit: 'knit overlay (etcd)', builtin: 'knit bridge', ratio: 'overlay/bridge' },
      rows: [{ metric: '`docker run --rm --network N busybox true`, median', knit: seconds(o), builtin: seconds(br), ratio: times(ratio(o, br)), target: '≤ 1.10×' }],
      notes: [
        `One host (dockerd 20.10) of the overlay bed: knit with KNIT_STORE=etcd://… (etcd 3.4 on the underlay) and KNIT_ADVERTISE=ul0, serving the overlay network ${OVERLAY} (${OVERLAY_SUBNET}, VNI ${vni}, also on a second host that programs each new endpoint) and a knit bridge network (subnet chosen by knit). Both networks' IPAM goes through etcd (a cluster store makes every knit pool cluster-wide); the overlay adds its segment's VXLAN device and publishing each endpoint under the host's lease.`,
        `${samples.overlay.length} runs per network after ${WARMUP} warm-up runs each, alternated overlay, bridge, …; wall time of the docker CLI, client to exit.`,
        `Overlay: ${spreadSeconds(samples.overlay)}; bridge: ${spreadSeconds(samples.bridge)}.`,
        'knit ran with KNIT_METRICS on a unix socket (both networks alike), scraped after the last run with one container left on each host.',
        ...stoppedEarly(samples.overlay.length, runs),
      ],
    };
  }, { knitEnv: (host) => ({ KNIT_METRICS: `unix://${metricsSocket(host.dir)}` }) });
}
