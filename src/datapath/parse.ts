// Pure: reading what `ip` and `bridge` print, their batch failures and their JSON link and route lists, and the
// kernel's connection-tracking table.
import ipaddr from 'ipaddr.js';
import type { LinkState } from './ops.js';

/** One failed batch line; `line` is 1-based, and absent when the tool stopped without saying which line failed. */
export interface BatchFailure {
  line?: number;
  words: string;
}

const MARKER = /^Command failed -:(\d+)$/;

/** The kernel's own words: the first error line, without ip's "RTNETLINK answers:" or "Error:" prefix. */
function kernelWords(message: string[]): string {
  const first = message.find((l) => /^(RTNETLINK answers|Error): /.test(l)) ?? message[0] ?? 'no reason given';
  return first.replace(/^(RTNETLINK answers|Error): /, '').replace(/\.$/, '');
}

/**
 * ip and bridge print each failure's message followed by "Command failed -:N". A message with no
 * marker after it means the tool exited in the middle of a line (ip does this when `neigh add/del`
 * gets a netlink error, even with -force); it only counts as a failure when the exit code says so.
 */
export function parseBatchErrors(stderr: string, exitCode: number): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let message: string[] = [];
  for (const raw of stderr.split('\n')) {
    const text = raw.trim();
    const m = MARKER.exec(text);
    if (m) {
      failures.push({ line: Number(m[1]), words: kernelWords(message) });
      message = [];
    } else if (text) {
      message.push(text);
    }
  }
  if (exitCode !== 0 && (message.length || !failures.length)) failures.push({ words: kernelWords(message) });
  return failures;
}

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  address?: string;
  link_type?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: IpAddrInfo[];
}

/** Reads `ip -j -d addr show`: one entry per link with its details and addresses. */
export function parseLinks(json: string): LinkState[] {
  const links = JSON.parse(json) as IpLink[];
  return links.map((l) => {
    const state: LinkState = {
      name: l.ifname,
      // A link with no linkinfo is a plain device (a NIC or lo): its link type is the best kind there is.
      kind: l.linkinfo?.info_kind ?? l.link_type ?? 'unknown',
      mtu: l.mtu ?? 0,
      // The administrative state: a bridge with no ports is "up" though its operstate is DOWN.
      up: l.flags?.includes('UP') ?? false,
      addrs: (l.addr_info ?? []).filter((a) => a.scope === 'global' && a.local).map((a) => `${a.local}/${a.prefixlen}`),
    };
    if (l.ifalias) state.alias = l.ifalias;
    if (l.master) state.master = l.master;
    if (l.address && l.link_type === 'ether') state.mac = l.address;
    return state;
  });
}

/** Reads `ip -j route show`: the destinations as CIDRs (a host route gets its full-length prefix). */
export function parseRouteDsts(json: string): string[] {
  const routes = JSON.parse(json) as Array<{ dst?: string }>;
  return routes
    .map((r) => r.dst)
    .filter((dst): dst is string => dst !== undefined && dst !== 'default')
    .map((dst) => (dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`));
}

/** A VXLAN device's static entries as `bridge -j fdb show dev D` and `ip -j neigh show dev D` print them. */
export interface VxlanEntries {
  fdb: Set<string>; // "mac dst"
  neigh: Map<string, string>; // ip -> mac
}

/** Keeps the device's own remote entries (those with a VXLAN destination), not the bridge's learned ones. */
export function parseVxlanEntries(fdbJson: string, neighJson: string): VxlanEntries {
  const fdb = new Set<string>();
  for (const e of JSON.parse(fdbJson || '[]') as Array<{ mac?: string; dst?: string; master?: string }>) {
    if (e.mac && e.dst && !e.master) fdb.add(`${e.mac.toLowerCase()} ${e.dst}`);
  }
  const neigh = new Map<string, string>();
  for (const n of JSON.parse(neighJson || '[]') as Array<{ dst?: string; lladdr?: string; state?: string[] }>) {
    if (n.dst && n.lladdr && n.state?.includes('PERMANENT')) neigh.set(n.dst, n.lladdr.toLowerCase());
  }
  return { fdb, neigh };
}

/**
 * Which of these addresses appear as a source or destination in /proc/net/nf_conntrack. The kernel prints IPv4
 * dotted and IPv6 in full (eight groups of four hex digits), each token ending in a space; each address is looked
 * for in that form. An address that is not an IP address is returned (the caller then asks conntrack itself).
 */
export function trackedAddresses(table: string, addresses: string[]): string[] {
  return addresses.filter((text) => {
    if (!ipaddr.isValid(text)) return true;
    const addr = ipaddr.parse(text);
    const form = addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).parts.map((p) => p.toString(16).padStart(4, '0')).join(':') : addr.toString();
    return table.includes(`src=${form} `) || table.includes(`dst=${form} `);
  });
}
