// 10. Encrypted overlays: an encrypted knit overlay (-o encrypted, VXLAN inside WireGuard) against the plain knit
// overlay between the same two hosts, in one run: TCP throughput across hosts, container lifecycle, and the time
// from a host's first encrypted container (tunnel made from nothing) to a reply from the other host.
import { IMAGE, inTime, stoppedEarly, timed, type BenchContext } from './bed.js';
import { gbit, iperfBetween, netnsOfPid } from './iperf.js';
import { OVERLAY, pingOnce, runSleeper, waitReachable, withOverlayBed, type OverlayHost } from './overlay-bed.js';
import type { Figures } from './report.js';
import { median, quantile, ratio, seconds, spreadSeconds, times } from './stats.js';

const ENC = 'enc';
const ENC_SUBNET = '10.79.0.0/24';
const createEncrypted = (oh: OverlayHost) => oh.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '-o', 'encrypted', '--subnet', ENC_SUBNET, ENC]);

/** `docker run -d` on B's encrypted overlay right after B made it (its tunnel from nothing), until A's container gets a reply. */
async function firstReach(b: OverlayHost, from: string, round: number): Promise<number> {
  const { ms } = await timed(async () => {
    await createEncrypted(b);
    const c = await runSleeper(b, `first${round}`, ENC);
    await waitReachable('A to reach B\'s first encrypted container', from, c.ip, 30_000);
  });
  await b.docker(['rm', '-f', `first${round}`]);
  await b.docker(['network', 'rm', ENC]);
  return ms;
}

export async function encrypted(ctx: BenchContext): Promise<Figures> {
  const rounds = ctx.quick ? 2 : 5;
  const secs = ctx.quick ? 3 : 5;
  return withOverlayBed('benchen', ctx.progress, async ({ a, b }) => {
    for (const oh of [a, b]) await createEncrypted(oh);
    const ends = async (net: string) => {
      const ca = await runSleeper(a, `${net}-a`, net);
      const cb = await runSleeper(b, `${net}-b`, net);
      await waitReachable(`A to reach B over ${net}`, netnsOfPid(ca.pid), cb.ip);
      return { client: netnsOfPid(ca.pid), server: netnsOfPid(cb.pid), serverIp: cb.ip, mtu: ca.mtu };
    };
    const paths = { encrypted: await ends(ENC), plain: await ends(OVERLAY) };
    const tput: Record<'encrypted' | 'plain', number[]> = { encrypted: [], plain: [] };
    for (let i = 0; i < rounds && inTime(ctx); i++) {
      for (const p of ['encrypted', 'plain'] as const) {
        tput[p].push(await iperfBetween({ ...paths[p], seconds: secs, logDir: b.host.logsDir }));
        ctx.progress(`encrypted bench: ${p} round ${i + 1}/${rounds}: ${gbit(tput[p].at(-1)!)}`);
      }
    }
    const life: Record<'encrypted' | 'plain', number[]> = { encrypted: [], plain: [] };
    const lifeRuns = ctx.quick ? 4 : 12;
    for (let i = 0; i < lifeRuns && inTime(ctx); i++) {
      for (const [p, net] of [['encrypted', ENC], ['plain', OVERLAY]] as const) life[p].push((await timed(() => a.docker(['run', '--rm', '--network', net, IMAGE, 'true']))).ms);
    }
    // B leaves the encrypted overlay (its tunnel goes); each round makes it again from nothing.
    await b.docker(['rm', '-f', `${ENC}-b`]);
    await b.docker(['network', 'rm', ENC]);
    const first: number[] = [];
    let firstFailed = '';
    for (let i = 0; i < (ctx.quick ? 2 : 5) && inTime(ctx) && !firstFailed; i++) {
      // A failure here is a figure too: the sections above are kept, and the note says what went wrong.
      await firstReach(b, paths.encrypted.client, i).then((ms) => first.push(ms), (err: Error) => (firstFailed = err.message));
    }
    const backend = ((await a.status()) as { wireguard?: { backend?: string } }).wireguard?.backend ?? 'unknown';
    const [te, tp, le, lp] = [median(tput.encrypted), median(tput.plain), median(life.encrypted), median(life.plain)];
    const spread = (s: number[]) => `min ${gbit(quantile(s, 0))}, max ${gbit(quantile(s, 1))}`;
    const stillPings = await pingOnce(paths.plain.client, paths.plain.serverIp);
    return {
      id: 'encrypted',
      labels: { knit: 'encrypted', builtin: 'plain knit overlay', ratio: 'encrypted/plain' },
      rows: [
        { metric: `TCP throughput container on host A → host B, median (WireGuard: ${backend})`, knit: gbit(te), builtin: gbit(tp), ratio: times(ratio(te, tp)), target: '' },
        { metric: '`docker run --rm --network N busybox true` on host A, median', knit: seconds(le), builtin: seconds(lp), ratio: times(ratio(le, lp)), target: '≤ 1.05×' },
        { metric: `host B's first encrypted container (network, tunnel, container) until host A gets a reply, median of ${first.length}`, knit: seconds(median(first)), builtin: '', ratio: '', target: '' },
      ],
      notes: [
        `The overlay bed of section 5 (two dockerd 20.10 hosts, veth underlay MTU 1500, etcd 3.4); the plain overlay ${OVERLAY} (MTU ${paths.plain.mtu}) and an encrypted one ${ENC} (${ENC_SUBNET}, MTU ${paths.encrypted.mtu}) side by side, one container of each on each host.`,
        `iperf3, one stream, ${secs} s after 1 s left out, ${tput.encrypted.length} rounds per path alternated encrypted, plain. Encrypted: ${spread(tput.encrypted)}; plain: ${spread(tput.plain)}.`,
        `Lifecycle: ${life.encrypted.length} runs per network, alternated. Encrypted: ${spreadSeconds(life.encrypted)}; plain: ${spreadSeconds(life.plain)}.`,
        `First reach: ${first.map((ms) => seconds(ms)).join(', ')} (network create + docker run -d + first ping reply from host A, which keeps its tunnel).${firstFailed ? ` FAILED in round ${first.length + 1}: ${firstFailed}` : ''}`,
        `wireguard-go is userspace: every encrypted packet crosses into a Go process and back, on the same 2 CPUs as everything else. Plain overlay still pinging at the end: ${stillPings}.`,
        ...stoppedEarly(tput.encrypted.length, rounds),
      ],
    };
  });
}
