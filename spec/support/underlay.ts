// The wires between simulated hosts: a shared underlay bridge, and "outside" machines behind one host.
import { existsSync } from 'node:fs';
import type { Host } from './host.js';
import { outsideNetns, UNDERLAY_BRIDGE, UNDERLAY_NETNS } from './layout.js';
import { run, type RunOptions, type RunResult } from './proc.js';
import { deleteNetns } from './reap.js';

/** RFC 2544's benchmarking range: nothing on it can be mistaken for a real network. */
export const DEFAULT_UNDERLAY = '198.18.0.0/24';

interface UnderlayState {
  subnet: string;
  base: number;
  prefix: number;
  next: number;
  members: Set<string>;
}

let underlay: UnderlayState | undefined;
let outsideCount = 0;

const toInt = (ip: string): number => ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

function parseSubnet(subnet: string): { base: number; prefix: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(subnet);
  const prefix = Number(m?.[2]);
  if (!m || prefix < 8 || prefix > 29) throw new Error(`underlay subnet "${subnet}" is not an IPv4 CIDR between /8 and /29`);
  const size = 2 ** (32 - prefix);
  return { base: toInt(m[1]) - (toInt(m[1]) % size), prefix };
}

async function createUnderlay(subnet: string): Promise<UnderlayState> {
  if (existsSync(`/run/netns/${UNDERLAY_NETNS}`)) {
    throw new Error(`netns ${UNDERLAY_NETNS} already exists: another test file has an underlay, or run scripts/testbed-cleanup.sh`);
  }
  await run(['ip', 'netns', 'add', UNDERLAY_NETNS]);
  const ip = (...args: string[]) => run(['ip', '-n', UNDERLAY_NETNS, ...args]);
  try {
    await ip('link', 'set', 'lo', 'up');
    await ip('link', 'add', UNDERLAY_BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await ip('link', 'set', UNDERLAY_BRIDGE, 'up');
  } catch (err) {
    await deleteNetns(UNDERLAY_NETNS);
    throw err;
  }
  return { subnet, ...parseSubnet(subnet), next: 1, members: new Set() };
}

/** Deletes the underlay this test file made (its ports, and so every host's `ul0`, go with it). */
export async function removeUnderlay(): Promise<void> {
  if (!underlay) return;
  underlay = undefined;
  await deleteNetns(UNDERLAY_NETNS);
}

/**
 * Joins hosts to one L2 underlay: a bridge in netns knt-underlay, a veth per host (`ul0` in the host,
 * `u-NAME` on the bridge). Addresses are handed out in order from `subnet`. Returns the hosts' IPs in
 * the order given; a host already joined keeps its address.
 */
export async function connectHosts(hosts: Host[], subnet = DEFAULT_UNDERLAY): Promise<string[]> {
  if (underlay && underlay.subnet !== subnet) throw new Error(`the underlay is ${underlay.subnet}, not ${subnet}`);
  underlay ??= await createUnderlay(subnet);
  const u = underlay;
  const ips: string[] = [];
  for (const host of hosts) {
    if (!host.underlayIp) {
      if (u.next >= 2 ** (32 - u.prefix) - 1) throw new Error(`underlay ${subnet} is full`);
      const address = toIp(u.base + u.next++);
      const port = `u-${host.name}`;
      await run(['ip', 'link', 'add', 'ul0', 'netns', host.netns, 'type', 'veth', 'peer', 'name', port, 'netns', UNDERLAY_NETNS]);
      await run(['ip', '-n', UNDERLAY_NETNS, 'link', 'set', port, 'master', UNDERLAY_BRIDGE, 'up']);
      await run(['ip', '-n', host.netns, 'addr', 'add', `${address}/${u.prefix}`, 'dev', 'ul0']);
      await run(['ip', '-n', host.netns, 'link', 'set', 'ul0', 'up']);
      host.underlayIp = address;
      u.members.add(host.name);
      host.attachments.push({
        what: `underlay port of ${host.name}`,
        remove: async () => {
          if (underlay !== u) return;
          u.members.delete(host.name);
          if (u.members.size === 0) await removeUnderlay();
        },
      });
    }
    ips.push(host.underlayIp);
  }
  return ips;
}

/** A machine outside the Docker host: it routes only to its own link, so it sees only NAT'd traffic. */
export interface OutsideHost {
  netns: string;
  /** The outside machine's address. */
  ip: string;
  /** The Docker host's address on the same link (for published ports). */
  hostIp: string;
  exec(argv: string[], opts?: RunOptions): Promise<RunResult>;
}

/**
 * Adds netns knt-out-NAME joined to the host by a veth (`out0` in the host, `eth0` outside) on its own
 * 198.19.N.0/30. The Docker host reaches it on the connected route; the outside netns has no route to any
 * container subnet. Removed with the host.
 */
export async function addOutsideHost(host: Host): Promise<OutsideHost> {
  const netns = outsideNetns(host.name);
  if (existsSync(`/run/netns/${netns}`)) throw new Error(`netns ${netns} already exists`);
  if (outsideCount >= 254) throw new Error('too many outside hosts in one test file');
  const n = ++outsideCount;
  const hostIp = `198.19.${n}.1`;
  const ip = `198.19.${n}.2`;
  await run(['ip', 'netns', 'add', netns]);
  host.attachments.push({ what: `outside host ${netns}`, remove: () => deleteNetns(netns) });
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  await run(['ip', 'link', 'add', 'out0', 'netns', host.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run(['ip', '-n', host.netns, 'addr', 'add', `${hostIp}/30`, 'dev', 'out0']);
  await run(['ip', '-n', host.netns, 'link', 'set', 'out0', 'up']);
  await run(['ip', '-n', netns, 'addr', 'add', `${ip}/30`, 'dev', 'eth0']);
  await run(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
  return {
    netns,
    ip,
    hostIp,
    exec: (argv, opts = {}) => run(['nsenter', `--net=/run/netns/${netns}`, '--', ...argv], opts),
  };
}
