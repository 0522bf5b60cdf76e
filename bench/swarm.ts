// 11. Docker's swarm overlay as the reference (issue 17): the same two test-bed engines run a knit overlay (etcd)
// and, joined in swarm mode, an attachable swarm overlay; measured in one run, alternated: TCP throughput across
// hosts, container lifecycle, and from `docker run -d` on host A until a container on host B reaches it (ping)
// and resolves its name.
import { IMAGE, inTime, timed, type BenchContext } from './bed.js';
import { measureOnce as reachOnce } from './convergence.js';
import { gbit, iperfBetween, netnsOfPid } from './iperf.js';
import { measureOnce as resolveOnce } from './names.js';
import { OVERLAY, runSleeper, waitReachable, withOverlayBed, type OverlayBed, type OverlayHost } from './overlay-bed.js';
import type { Figures, Row } from './report.js';
import { median, quantile, ratio, seconds, times } from './stats.js';

type Net = 'knit' | 'swarm';
const NETS: readonly Net[] = ['knit', 'swarm'];
const SWARM = 'swov';
const SWARM_PREFIX = '10.88.0';
/** Far from swarm's own VNIs (4096 and up, ingress included): both VXLAN devices share UDP port 4789 in the host namespace. */
const KNIT_VNI = 7077;
const RESOLVER = '169.254.53.53';
const network = (n: Net) => (n === 'knit' ? OVERLAY : SWARM);
const prefix = (n: Net) => (n === 'knit' ? '10.77.0' : SWARM_PREFIX);

/** Host A initialises the swarm on its underlay address, host B joins as a worker; the attachable overlay is made on A. */
async function makeSwarm(bed: OverlayBed): Promise<string> {
  const { a, b } = bed;
  await a.docker(['swarm', 'init', '--advertise-addr', a.underlayIp], { timeoutMs: 60_000 });
  const token = (await a.docker(['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
  await b.docker(['swarm', 'join', '--advertise-addr', b.underlayIp, '--token', token, `${a.underlayIp}:2377`], { timeoutMs: 60_000 });
  await a.docker(['network', 'create', '-d', 'overlay', '--attachable', '--subnet', `${SWARM_PREFIX}.0/24`, SWARM]);
  return (await a.docker(['network', 'inspect', '-f', '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}', SWARM])).stdout.trim();
}

interface Samples {
  lifecycle: number[];
  reach: number[];
  resolve: number[];
  iperf: number[];
  misses: number;
}

async function lifecycleOnce(a: OverlayHost, n: Net): Promise<number> {
  return (await timed(() => a.docker(['run', '--rm', '--network', network(n), IMAGE, 'true']))).ms;
}

async function reach(a: OverlayHost, n: Net, i: number, watcher: string, s: Samples): Promise<void> {
  const name = `sw-${n}-ip-${i}`;
  try {
    const r = await reachOnce(a, network(n), name, `${prefix(n)}.${100 + i}`, watcher);
    if (r.replyMs === undefined) s.misses++;
    else s.reach.push(r.replyMs);
  } finally {
    await a.docker(['rm', '-f', name], { reject: false, timeoutMs: 60_000 });
  }
}

async function resolve(a: OverlayHost, n: Net, i: number, watcher: string, s: Samples): Promise<void> {
  const name = `sw-${n}-nm-${i}`;
  try {
    const r = await resolveOnce(a, name, watcher, network(n));
    if (r.resolvedMs === undefined) s.misses++;
    else s.resolve.push(r.resolvedMs);
  } finally {
    await a.docker(['rm', '-f', name], { reject: false, timeoutMs: 60_000 });
  }
}

function rows(k: Samples, w: Samples): Row[] {
  const row = (metric: string, x: number, y: number, fmt = seconds): Row => ({ metric, knit: fmt(x), builtin: fmt(y), ratio: times(ratio(x, y)) });
  return [
    row('TCP throughput container on A → container on B (iperf3), median', median(k.iperf), median(w.iperf), gbit),
    row('`docker run --rm --network N busybox true` on A, median', median(k.lifecycle), median(w.lifecycle)),
    row('`docker run -d` on A until a container on B gets a ping reply, median', median(k.reach), median(w.reach)),
    row('the same, max', quantile(k.reach, 1), quantile(w.reach, 1)),
    row('`docker run -d --name X` on A until X resolves in a container on B, median', median(k.resolve), median(w.resolve)),
    row('the same, max', quantile(k.resolve, 1), quantile(w.resolve, 1)),
    { metric: 'no reply / never resolved within 30 s', knit: String(k.misses), builtin: String(w.misses), target: '0' },
  ];
}

export async function swarm(ctx: BenchContext): Promise<Figures> {
  const rounds = ctx.quick ? 3 : 10;
  const iperfRounds = ctx.quick ? 1 : 3;
  return withOverlayBed('benchsw', ctx.progress, async (bed) => {
    const vnis = await makeSwarm(bed);
    const { a, b } = bed;
    const s: Record<Net, Samples> = { knit: blank(), swarm: blank() };
    const ends: Record<Net, { client: string; server: string; serverIp: string; watcher: string }> = {} as never;
    for (const n of NETS) {
      const ca = await runSleeper(a, `sw-${n}-a`, network(n));
      const cb = await runSleeper(b, `sw-${n}-b`, network(n));
      await waitReachable(`the ${n} overlay's containers to reach each other`, netnsOfPid(ca.pid), cb.ip, 60_000);
      ends[n] = { client: netnsOfPid(ca.pid), server: netnsOfPid(cb.pid), serverIp: cb.ip, watcher: netnsOfPid(cb.pid) };
      await lifecycleOnce(a, n);
    }
    ctx.progress(`swarm: both overlays up (swarm VNI ${vnis}, knit VNI ${KNIT_VNI})`);
    for (let i = 0; i < rounds && inTime(ctx); i++) {
      for (const n of NETS) {
        s[n].lifecycle.push(await lifecycleOnce(a, n));
        await reach(a, n, i, ends[n].watcher, s[n]);
        await resolve(a, n, i, ends[n].watcher, s[n]);
      }
      ctx.progress(`swarm: round ${i + 1}/${rounds}`);
    }
    for (let i = 0; i < iperfRounds && inTime(ctx); i++) {
      for (const n of NETS) s[n].iperf.push(await iperfBetween({ ...ends[n], seconds: 5, logDir: b.host.logsDir }));
    }
    return {
      id: 'swarm',
      labels: { knit: 'knit overlay (etcd)', builtin: 'swarm overlay', ratio: 'knit/swarm' },
      rows: rows(s.knit, s.swarm),
      notes: [
        `Two hosts (dockerd 20.10 each, daemon.json "dns": ["${RESOLVER}"]) on a veth underlay, etcd 3.4 on it, knit on both (KNIT_STORE=etcd://…, KNIT_ADVERTISE=ul0); knit overlay \`ov\` (10.77.0.0/24, -o knit.vni=${KNIT_VNI}). The same engines joined in swarm mode (\`docker swarm init --advertise-addr\` on A, \`join\` on B) with \`docker network create -d overlay --attachable --subnet ${SWARM_PREFIX}.0/24 ${SWARM}\` (VNI ${vnis}). Both overlays' VXLAN devices use UDP 4789 in the host namespaces.`,
        `${s.knit.lifecycle.length} rounds, alternated knit, swarm: a lifecycle on A; \`docker run -d --ip\` on A pinged from a container already on B (as §7: the watcher's neighbour entry flushed before each ping, -W 0.1, at most 300 pings or 30 s); \`docker run -d --name\` on A looked up with busybox nslookup NAME 127.0.0.11 in that container on B (as §9: Docker's embedded resolver answers swarm names itself and forwards knit's to knit's resolver). One warm-up lifecycle per network first.`,
        `iperf3: one stream, 5 s after 1 s left out, ${s.knit.iperf.length} rounds per network, alternated, between sleeping containers on A and B (the host's iperf3 in their namespaces). knit: ${s.knit.iperf.map(gbit).join(', ')}; swarm: ${s.swarm.iperf.map(gbit).join(', ')}.`,
        `Per round: lifecycle knit ${s.knit.lifecycle.map((x) => seconds(x)).join(', ')}; swarm ${s.swarm.lifecycle.map((x) => seconds(x)).join(', ')}.`,
      ],
    };
  }, { dns: [RESOLVER], networkOptions: ['-o', `knit.vni=${KNIT_VNI}`] });
}

const blank = (): Samples => ({ lifecycle: [], reach: [], resolve: [], iperf: [], misses: 0 });
