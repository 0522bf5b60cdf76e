// The overlay benchmarks' test bed: two simulated Docker hosts (bench*) on an underlay of their own, a real etcd on
// that underlay, knit on both hosts with KNIT_STORE=etcd://… and KNIT_ADVERTISE=ul0, and one knit overlay network.
// The underlay is a namespace of the benchmark's own (knt-bench*U), not the test bed's shared knt-underlay, so an
// e2e overlay suite running at the same time is not disturbed (and does not disturb this).
import { join } from 'node:path';
import { startEtcd, type EtcdServer } from '../spec/support/etcd.js';
import { deleteNetns } from '../spec/support/reap.js';
import { run, startHost, waitFor, type Host, type RunResult } from '../spec/support/testbed.js';
import { HOST_PREFIX, IMAGE, knitStatus, type KnitStatus } from './bed.js';
import { inNetns, netnsOfPid } from './iperf.js';
import { BenchKnit } from './knit-run.js';

/** RFC 2544's benchmarking range again, but a /24 the e2e suites do not use, so their addresses never look like ours. */
const UNDERLAY_PREFIX = '198.18.77';
const ETCD_IP = `${UNDERLAY_PREFIX}.250`;
export const OVERLAY_SUBNET = '10.77.0.0/24';
export const OVERLAY = 'ov';

export interface OverlayHost {
  host: Host;
  knit: BenchKnit;
  underlayIp: string;
  docker(args: string[], opts?: { timeoutMs?: number; reject?: boolean }): Promise<RunResult>;
  status(): Promise<KnitStatus>;
}

export interface OverlayBed {
  a: OverlayHost;
  b: OverlayHost;
  etcd: EtcdServer;
  /** knit's VXLAN ID for the overlay network (the same on both hosts). */
  vni: number;
}


/**
 * Starts hosts `${prefix}a` and `${prefix}b` (prefix: bench…, at most 9 characters), their underlay
 * (netns knt-${prefix}u), etcd in the underlay namespace, knit on both, and the overlay network `ov`; runs `fn`;
 * and always takes all of it down again, in reverse order, whatever failed.
 */
export async function withOverlayBed<T>(
  prefix: string,
  progress: (m: string) => void,
  fn: (bed: OverlayBed) => Promise<T>,
  /** daemon.json "dns" of both engines (knit's resolver, for the names benchmark); more KNIT_* settings for each knit; extra `-o` options of `ov` (knit.vni). */
  o: { dns?: string[]; knitEnv?: (host: Host) => Record<string, string>; networkOptions?: string[] } = {},
): Promise<T> {
  if (!prefix.startsWith(HOST_PREFIX)) throw new Error(`benchmark host prefix "${prefix}" must start with "${HOST_PREFIX}"`);
  const underlayNs = `knt-${prefix}u`;
  const hosts: Host[] = [];
  const knits: BenchKnit[] = [];
  let etcd: EtcdServer | undefined;
  let underlayMade = false;
  try {
    for (const side of ['a', 'b']) {
      const host = await startHost({ name: `${prefix}${side}`, dns: o.dns });
      hosts.push(host);
      // As dockerd leaves it on a real host; knit opens what its networks need.
      await host.exec(['iptables', '-P', 'FORWARD', 'DROP']);
      // The underlay (and etcd in it) must go if the runner stops this host under a benchmark that ran out of time.
      host.attachments.push({ what: `benchmark underlay ${underlayNs}`, remove: () => deleteNetns(underlayNs) });
    }
    progress(`overlay bed ${prefix}: hosts up, joining the underlay`);
    await run(['ip', 'netns', 'add', underlayNs]);
    underlayMade = true;
    const ul = (...args: string[]) => run(['ip', '-n', underlayNs, ...args]);
    await ul('link', 'set', 'lo', 'up');
    await ul('link', 'add', 'ul', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await ul('link', 'set', 'ul', 'up');
    await ul('addr', 'add', `${ETCD_IP}/24`, 'dev', 'ul');
    const ips: string[] = [];
    for (const [i, host] of hosts.entries()) {
      const ip = `${UNDERLAY_PREFIX}.${i + 1}`;
      const port = `u-${host.name}`;
      await run(['ip', 'link', 'add', 'ul0', 'netns', host.netns, 'type', 'veth', 'peer', 'name', port, 'netns', underlayNs]);
      await ul('link', 'set', port, 'master', 'ul', 'up');
      await host.exec(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'ul0']);
      await host.exec(['ip', 'link', 'set', 'ul0', 'up']);
      host.underlayIp = ip;
      ips.push(ip);
    }
    etcd = await startEtcd({ netns: underlayNs, host: ETCD_IP });
    const store = `etcd://${etcd.endpoint}`;
    progress(`overlay bed ${prefix}: etcd at ${etcd.endpoint}, starting knit on both hosts`);
    for (const host of hosts) {
      const knit = new BenchKnit(host, { KNIT_STORE: store, KNIT_ADVERTISE: 'ul0', KNIT_DOCKER_HOST: `unix://${join(host.dir, 'docker.sock')}`, ...o.knitEnv?.(host) });
      knits.push(knit);
      await knit.start();
    }
    const ohs: OverlayHost[] = hosts.map((host, i) => ({
      host,
      knit: knits[i],
      underlayIp: ips[i],
      docker: (args, opts = {}) => host.docker(args, opts),
      status: () => knitStatus(knits[i].socket),
    }));
    // dockerd never tells a driver a network's name: the same create on every host, the subnet names the segment.
    for (const oh of ohs) {
      await oh.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', ...(o.networkOptions ?? []), '--subnet', OVERLAY_SUBNET, OVERLAY]);
    }
    const vx = (await hosts[0].exec(['ip', '-d', '-o', 'link', 'show', 'type', 'vxlan'])).stdout;
    const vni = Number(/vxlan id (\d+)/.exec(vx)?.[1]);
    if (!Number.isInteger(vni)) throw new Error(`no knit VXLAN device on ${hosts[0].name}: ${vx.slice(0, 300)}`);
    return await fn({ a: ohs[0], b: ohs[1], etcd, vni });
  } finally {
    for (const k of knits) await k.stop().catch(() => undefined);
    await etcd?.dispose().catch(() => undefined);
    const errors: string[] = [];
    for (const host of hosts.reverse()) await host.stop().catch((err: Error) => errors.push(err.message));
    if (underlayMade) await deleteNetns(underlayNs).catch((err: Error) => errors.push(err.message));
    if (errors.length > 0) progress(`overlay bed ${prefix}: clean-up: ${errors.join('; ')}`);
  }
}

/** `docker run -d` of a sleeping container on the overlay; its PID, overlay IP and eth0 MTU. */
export async function runSleeper(
  oh: OverlayHost,
  name: string,
  network = OVERLAY,
  extra: string[] = [],
): Promise<{ pid: number; ip: string; mtu: number }> {
  await oh.docker(['run', '-d', '--name', name, '--network', network, '--stop-timeout', '1', ...extra, IMAGE, 'sleep', '3600']);
  const pid = Number((await oh.docker(['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim());
  const ip = (await oh.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name])).stdout.trim();
  // From netlink, not /sys/class/net: under nsenter --net, /sys is still the root namespace's sysfs.
  const link = (await run([...inNetns(netnsOfPid(pid)), 'ip', '-o', 'link', 'show', 'dev', 'eth0'])).stdout;
  const mtu = Number(/ mtu (\d+)/.exec(link)?.[1]);
  if (!Number.isInteger(mtu)) throw new Error(`no MTU for eth0 of ${name}: ${link.slice(0, 200)}`);
  return { pid, ip, mtu };
}

/** One `ping -c1` from namespace `from` to `ip`; true on a reply. */
export async function pingOnce(from: string, ip: string, waitSeconds = 1): Promise<boolean> {
  const r = await run([...inNetns(from), 'ping', '-n', '-q', '-c', '1', '-W', String(waitSeconds), ip], { reject: false, timeoutMs: 10_000 });
  return r.exitCode === 0;
}

/** Waits (bounded) until `from` gets a reply from `ip`; throws with `what` if it never does. */
export async function waitReachable(what: string, from: string, ip: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(what, () => pingOnce(from, ip), { timeoutMs, intervalMs: 200 });
}
