// Pure planners of macvlan networks: containers' macvlan children, the host leg and 802.1q parents.
import { conflict, notFound, badRequest } from '../../errors.js';
import { aliasFor, macFor, vethNames } from '../../datapath/names.js';
import type { LinkOp, LinkState, Op } from '../../datapath/ops.js';
import { contains, parseAddrCidr, parseCidr } from '../../addr/cidr.js';
import type { EndpointRecord, HostRoute, NetworkRecord } from '../records.js';

export type Macvlan = NetworkRecord & { macvlan: NonNullable<NetworkRecord['macvlan']> };

export const isMacvlan = (net: NetworkRecord | undefined): net is Macvlan => net?.macvlan !== undefined;

/** A macvlan endpoint has one link, made on the host and moved into the container by dockerd at Join. */
export function macvlanEndpointNames(endpointId: string): { hostIf: string; peerIf: string } {
  const { peer } = vethNames(endpointId);
  return { hostIf: peer, peerIf: peer };
}

/** With the host leg, each local container's addresses are routed through it (the parent cannot reach its children). */
export function hostRoutes(net: Macvlan, ep: Pick<EndpointRecord, 'address' | 'addressV6'>): HostRoute[] {
  if (!net.macvlan.hostLeg) return [];
  const routes: HostRoute[] = [];
  if (ep.address) routes.push({ dst: `${ep.address.split('/')[0]}/32`, dev: net.bridge, ...(net.hostLegSource ? { src: net.hostLegSource } : {}) });
  if (ep.addressV6) routes.push({ dst: `${ep.addressV6.split('/')[0]}/128`, dev: net.bridge });
  return routes;
}

/**
 * The host leg: a bridge-mode macvlan of the parent named as the network's bridge would be, with no address. Its MAC
 * is derived from the network ID: one made again (a repair) keeps it, so the containers' neighbour entries stay right.
 */
export function planMacvlanNetwork(net: Macvlan): LinkOp[] {
  if (!net.macvlan.hostLeg) return [];
  const mac = macFor(`host-leg/${net.id}`);
  return [{ op: 'macvlan-add', name: net.bridge, link: net.macvlan.parent, mode: 'bridge', mtu: net.mtu ?? 1500, mac, alias: aliasFor('net', net.id), up: true }];
}

export function planMacvlanEndpoint(net: Macvlan, ep: EndpointRecord): Op[] {
  const child: LinkOp = { op: 'macvlan-add', name: ep.peerIf, link: net.macvlan.parent, mode: net.macvlan.mode, mtu: net.mtu ?? 1500, mac: ep.mac, alias: aliasFor('ep', ep.id) };
  return [child, ...hostLegEntries(ep)];
}

/**
 * Through the host leg: a route to each of the endpoint's addresses and a permanent neighbour entry with its MAC.
 * Without the entry the host would ARP from the leg with its own address as sender, and the LAN's hosts, hearing
 * the broadcast, would re-point that address at the leg's MAC (seen here: the host lost its store when the leg went).
 */
export function hostLegEntries(ep: EndpointRecord): Op[] {
  return (ep.hostRoutes ?? []).flatMap((r): Op[] => [
    { op: 'route-add', ...r },
    { op: 'neigh-add', dev: r.dev, ip: r.dst.split('/')[0], mac: ep.mac },
  ]);
}

/** What creating a macvlan network needs of its parent: the parent's MTU, and the 802.1q sub-interface to make, if any. */
export interface ParentPlan {
  mtu: number;
  /** The parent's own IPv4 address in the network's subnet: the host leg's routes use it as their source. */
  source?: string;
  make?: Extract<LinkOp, { op: 'vlan-add' }>;
}

/**
 * `made` lists the sub-interfaces knit made (and may remove); any other existing link is the user's and stays.
 * passthru gives the parent to one child, so it shares the parent with no other network.
 */
export function planParent(a: { net: Macvlan; others: NetworkRecord[]; links: LinkState[] }): ParentPlan {
  const { parent, mode, vlan } = a.net.macvlan;
  const sharing = a.others.filter(isMacvlan).filter((n) => n.macvlan.parent === parent);
  const passthru = mode === 'passthru' ? sharing[0] : sharing.find((n) => n.macvlan.mode === 'passthru');
  if (passthru) {
    throw conflict(`parent ${parent} is already used by knit macvlan network ${passthru.id.slice(0, 12)}, and macvlan_mode=passthru gives a parent to one network only`);
  }
  const existing = a.links.find((l) => l.name === parent);
  const base = existing ?? (vlan ? a.links.find((l) => l.name === vlan.link) : undefined);
  if (!base) {
    const hint = vlan ? `, and neither does ${vlan.link} to make it from` : '; give an existing interface (or IF.VID to have knit make an 802.1q sub-interface of IF)';
    throw notFound(`parent interface ${parent} does not exist on this host${hint}`);
  }
  if (a.net.mtu !== undefined && a.net.mtu > base.mtu) {
    throw badRequest(`MTU ${a.net.mtu} is larger than the MTU ${base.mtu} of parent ${parent}; a macvlan cannot exceed its parent`);
  }
  const plan: ParentPlan = { mtu: base.mtu };
  const subnet = a.net.ipv4[0] ? parseCidr(a.net.ipv4[0].subnet) : undefined;
  const source = existing?.addrs.find((c) => !c.includes(':') && subnet && contains(subnet, parseAddrCidr(c).ip));
  if (source && a.net.macvlan.hostLeg) plan.source = source.split('/')[0];
  if (!existing && vlan) plan.make = { op: 'vlan-add', name: parent, link: vlan.link, vid: vlan.vid, up: true };
  return plan;
}

/** The sub-interface to remove with a network: only one knit made, and only when no other network uses it. */
export function parentToRelease(a: { net: Macvlan; others: NetworkRecord[]; made: string[] }): string | undefined {
  const { parent } = a.net.macvlan;
  return a.made.includes(parent) && !a.others.some((n) => isMacvlan(n) && n.macvlan.parent === parent) ? parent : undefined;
}

/** The host leg (its routes go with it); the endpoints' links are planEndpointRemoval's. */
export function planMacvlanNetworkRemoval(net: Macvlan): LinkOp[] {
  return net.macvlan.hostLeg ? [{ op: 'link-del', name: net.bridge }] : [];
}
