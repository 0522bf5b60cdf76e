// Which sources that are not knit containers may use the resolver: the host itself and Docker's own bridges.
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { canonicalIp } from './reverse.js';

/** Docker's default bridge and its user-defined bridge networks (br-<12 hex>): their containers forward through knit too. */
const DOCKER_BRIDGE = /^(docker\d+|br-[0-9a-f]{12})$/;
/** Interfaces come and go (Docker networks are created at any time): looked at again at most this often. */
const REFRESH_MS = 2000;

export interface InterfaceAddress {
  name: string;
  address: string;
  cidr: string | null;
}

/** Pure: the host's own addresses, and the subnets of Docker's bridges. */
export function trustedFrom(interfaces: InterfaceAddress[]): { own: Set<string>; subnets: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> } {
  const own = new Set<string>();
  const subnets: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
  for (const i of interfaces) {
    const ip = canonicalIp(i.address);
    if (ip !== undefined) own.add(ip);
    if (i.cidr && DOCKER_BRIDGE.test(i.name)) subnets.push(ipaddr.parseCIDR(i.cidr));
  }
  return { own, subnets };
}

function currentInterfaces(): InterfaceAddress[] {
  return Object.entries(networkInterfaces()).flatMap(([name, addrs]) => (addrs ?? []).map((a) => ({ name, address: a.address, cidr: a.cidr })));
}

/**
 * The default `trusted` predicate: the host's own addresses (host-network containers, `docker build`, the
 * host's tools) and containers on Docker's own bridges, so that external names keep working for every
 * container of an engine whose `dns` points at knit. Anything else that is not a knit container is refused.
 */
export function localSources(read: () => InterfaceAddress[] = currentInterfaces): (ip: string) => boolean {
  let table = trustedFrom(read());
  let at = Date.now();
  return (ip) => {
    if (Date.now() - at > REFRESH_MS) {
      table = trustedFrom(read());
      at = Date.now();
    }
    if (table.own.has(ip)) return true;
    let addr: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      addr = ipaddr.parse(ip);
    } catch {
      return false;
    }
    return table.subnets.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
  };
}
