// 5. Datapath (overlay half): TCP throughput from a container on host A to one on host B across a knit overlay,
// against a hand-made VXLAN between the SAME two host namespaces (a plain bridge, a VXLAN device with static FDB and
// neighbour entries, a veth into a namespace of our own on each side), with the same MTU. Alternated, as datapath.ts.
import { deleteNetns } from '../spec/support/reap.js';
import { run } from '../spec/support/testbed.js';
import { inTime, stoppedEarly, type BenchContext } from './bed.js';
import { gbit, iperfBetween, netnsOfPid } from './iperf.js';
import { OVERLAY_SUBNET, runSleeper, waitReachable, withOverlayBed, type OverlayHost } from './overlay-bed.js';
import type { Figures } from './report.js';
import { median, quantile, ratio, times } from './stats.js';

type Path = 'knit' | 'hand';
const PATHS: readonly Path[] = ['knit', 'hand'];

const HAND_SUBNET = '10.78.0';
const HAND_MACS = ['02:00:00:4e:78:01', '02:00:00:4e:78:02'];
const ZERO_MAC = '00:00:00:00:00:00';

interface HandEnd {
  /** The namespace standing in for a container: knt-<host>x, so a killed run's leftover is removed as a bench host. */
  netns: string;
  ip: string;
}

/**
 * In each host namespace: bridge hmbr, VXLAN hmvx (VNI `vni`, UDP 4789, bound to the underlay address, nolearning
 * proxy, as knit makes its own), and a veth hmv0 whose other end is eth0 in a new namespace. Each side gets the
 * other's MAC as a static FDB entry (plus the all-zero flood entry) and its IP as a permanent neighbour on the VXLAN
 * device — what knit programs from the store. Everything has MTU `mtu`. The namespaces go with their hosts.
 */
async function makeHandVxlan(hosts: OverlayHost[], vni: number, mtu: number): Promise<HandEnd[]> {
  const ends: HandEnd[] = hosts.map((oh, i) => ({ netns: `knt-${oh.host.name}x`, ip: `${HAND_SUBNET}.${i + 1}` }));
  for (const [i, oh] of hosts.entries()) {
    const { host } = oh;
    const end = ends[i];
    const peer = 1 - i;
    await run(['ip', 'netns', 'add', end.netns]);
    host.attachments.push({ what: `hand-made VXLAN end ${end.netns}`, remove: () => deleteNetns(end.netns) });
    const ip = (...args: string[]) => host.exec(['ip', ...args]);
    const m = String(mtu);
    await ip('link', 'add', 'hmbr', 'mtu', m, 'type', 'bridge');
    await ip('link', 'set', 'hmbr', 'up');
    await ip('link', 'add', 'hmvx', 'mtu', m, 'master', 'hmbr', 'type', 'vxlan', 'id', String(vni), 'local', oh.underlayIp, 'dstport', '4789', 'nolearning', 'proxy');
    await ip('link', 'set', 'hmvx', 'up');
    await ip('link', 'add', 'hmv0', 'mtu', m, 'master', 'hmbr', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', m, 'address', HAND_MACS[i], 'netns', end.netns);
    await ip('link', 'set', 'hmv0', 'up');
    const inEnd = (...args: string[]) => run(['ip', '-n', end.netns, ...args]);
    await inEnd('link', 'set', 'lo', 'up');
    await inEnd('addr', 'add', `${end.ip}/24`, 'dev', 'eth0');
    await inEnd('link', 'set', 'eth0', 'up');
    const bridge = (...args: string[]) => host.exec(['bridge', ...args]);
    await bridge('fdb', 'append', ZERO_MAC, 'dev', 'hmvx', 'dst', hosts[peer].underlayIp, 'self', 'permanent');
    await bridge('fdb', 'replace', HAND_MACS[peer], 'dev', 'hmvx', 'dst', hosts[peer].underlayIp, 'self', 'permanent');
    await ip('neigh', 'replace', ends[peer].ip, 'lladdr', HAND_MACS[peer], 'dev', 'hmvx', 'nud', 'permanent');
    // dockerd left FORWARD at DROP, and with br_netfilter bridged frames go through it: let this bridge's own
    // traffic through, as knit's chains let its overlay's members talk.
    await host.exec(['iptables', '-I', 'FORWARD', '1', '-i', 'hmbr', '-o', 'hmbr', '-j', 'ACCEPT']);
  }
  return ends;
}


export async function overlay(ctx: BenchContext): Promise<Figures> {
  const rounds = ctx.quick ? 2 : 5;
  const seconds = ctx.quick ? 3 : 5;
  return withOverlayBed('benchov', ctx.progress, async ({ a, b, vni }) => {
    const ca = await runSleeper(a, 'ov-a');
    const cb = await runSleeper(b, 'ov-b');
    const knitEnds = { client: netnsOfPid(ca.pid), server: netnsOfPid(cb.pid), serverIp: cb.ip };
    await waitReachable('the container on host A to reach the one on host B over the knit overlay', knitEnds.client, cb.ip);
    // The same MTU as knit's overlay endpoints, so both carry the same payload per packet.
    const mtu = ca.mtu;
    const handVni = vni === 4242 ? 4243 : 4242;
    const hand = await makeHandVxlan([a, b], handVni, mtu);
    const handEnds = { client: `/run/netns/${hand[0].netns}`, server: `/run/netns/${hand[1].netns}`, serverIp: hand[1].ip };
    await waitReachable('the hand-made VXLAN ends to reach each other', handEnds.client, hand[1].ip);
    const nf = (await b.host.exec(['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], { reject: false })).stdout.trim() || 'n/a';
    const vxLinks = (await a.host.exec(['ip', '-o', 'link', 'show', 'type', 'vxlan'])).stdout;
    const vxMtu = (dev: string) => new RegExp(`\\d+: ${dev}[:@][^\\n]* mtu (\\d+)`).exec(vxLinks)?.[1] ?? 'n/a';

    const samples: Record<Path, number[]> = { knit: [], hand: [] };
    for (let i = 0; i < rounds && inTime(ctx); i++) {
      for (const path of PATHS) {
        const ends = path === 'knit' ? knitEnds : handEnds;
        const bps = await iperfBetween({ ...ends, seconds, logDir: b.host.logsDir });
        samples[path].push(bps);
        ctx.progress(`overlay ${path === 'knit' ? 'knit' : 'hand-made'} round ${i + 1}/${rounds}: ${gbit(bps)}`);
      }
    }
    const k = median(samples.knit);
    const h = median(samples.hand);
    const spread = (s: number[]) => `min ${gbit(quantile(s, 0))}, max ${gbit(quantile(s, 1))}`;
    return {
      id: 'overlay',
      labels: { builtin: 'hand-made VXLAN', ratio: 'knit/hand-made' },
      rows: [
        {
          metric: 'TCP throughput container on host A → container on host B, median',
          knit: gbit(k),
          builtin: gbit(h),
          ratio: times(ratio(k, h)),
          target: '≥ 0.95×',
        },
      ],
      notes: [
        `Two hosts (dockerd 20.10 each, in its own namespace) on a veth underlay (MTU 1500) through a bridge in a third namespace; etcd 3.4 on that underlay; knit on both with KNIT_STORE=etcd://… KNIT_ADVERTISE=ul0; one overlay network (${OVERLAY_SUBNET}, VNI ${vni}).`,
        `Hand-made: in the same two host namespaces, bridge + VXLAN (VNI ${handVni}, dstport 4789, local = underlay address, nolearning proxy) + static FDB and neighbour entries + a veth into a namespace of its own; MTU ${mtu} everywhere, as knit's container eth0 (knit's VXLAN device knv${vni}: ${vxMtu(`knv${vni}`)}; hand-made hmvx: ${vxMtu('hmvx')}). Its bridge has one ACCEPT rule at the top of FORWARD; bridge-nf-call-iptables in the host namespace: ${nf}.`,
        `iperf3 (one stream, ${seconds} s after 1 s left out), ${samples.knit.length} rounds per path, alternated knit, hand-made, …. The host's iperf3 runs in the containers' (and the hand-made ends') network namespaces with nsenter.`,
        `knit: ${spread(samples.knit)}; hand-made: ${spread(samples.hand)}.`,
        'All four namespaces share the same 2 CPUs (encapsulation, both TCP ends), so this is CPU-bound and sensitive to other load on the machine.',
        ...stoppedEarly(samples.knit.length, rounds),
      ],
    };
  });
}
