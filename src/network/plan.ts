// Pure planners: the kernel operations that make (or unmake) a network or an endpoint.
import type { LinkOp, Op } from '../datapath/ops.js';
import { aliasFor, vethNames, vxlanName } from '../datapath/names.js';
import { isMacvlan, macvlanEndpointNames, planMacvlanEndpoint, planMacvlanNetwork, planMacvlanNetworkRemoval } from './macvlan/plan.js';
import { VXLAN_PORT } from './overlay/plan.js';
import { ENCRYPTED_VXLAN_PORT } from './overlay/wg-plan.js';
import type { EndpointRecord, NetworkRecord } from './records.js';

export const DEFAULT_MTU = 1500;

export const mtuOf = (net: NetworkRecord): number => net.mtu ?? DEFAULT_MTU;

export { endpointMac } from '../datapath/names.js';

export function planNetwork(net: NetworkRecord): LinkOp[] {
  if (isMacvlan(net)) return planMacvlanNetwork(net);
  const ops: LinkOp[] = [{ op: 'bridge-add', name: net.bridge, mtu: mtuOf(net), alias: aliasFor('net', net.id), up: true }];
  for (const s of [...net.ipv4, ...net.ipv6]) if (s.gateway) ops.push({ op: 'addr-add', dev: net.bridge, cidr: s.gateway });
  if (net.mode === 'overlay' && net.vni && net.vtep) ops.push(vxlanOp(net));
  return ops;
}

export function vxlanOp(net: NetworkRecord): LinkOp {
  return {
    op: 'vxlan-add', name: vxlanName(net.vni!), vni: net.vni!, local: net.vtep!, port: net.encrypted ? ENCRYPTED_VXLAN_PORT : VXLAN_PORT,
    mtu: mtuOf(net), master: net.bridge, alias: aliasFor('vx', net.id), up: true,
  };
}

export function endpointNames(endpointId: string, net: NetworkRecord): { hostIf: string; peerIf: string } {
  if (isMacvlan(net)) return macvlanEndpointNames(endpointId);
  const v = vethNames(endpointId);
  return { hostIf: v.host, peerIf: v.peer };
}

export function planEndpoint(net: NetworkRecord, ep: EndpointRecord): Op[] {
  if (isMacvlan(net)) return planMacvlanEndpoint(net, ep);
  return [{ op: 'veth-add', name: ep.hostIf, peer: ep.peerIf, mtu: mtuOf(net), master: net.bridge, alias: aliasFor('ep', ep.id), peerMac: ep.mac, up: true }];
}

/** Its routes and neighbour entries (a macvlan endpoint's, through the host leg). */
export const planEndpointRoutesRemoval = (ep: EndpointRecord): Op[] =>
  (ep.hostRoutes ?? []).flatMap((r): Op[] => [{ op: 'route-del', dst: r.dst, dev: r.dev }, { op: 'neigh-del', dev: r.dev, ip: r.dst.split('/')[0] }]);

/** Its routes, then its link. */
export const planEndpointRemoval = (ep: EndpointRecord): Op[] => [...planEndpointRoutesRemoval(ep), { op: 'link-del', name: ep.hostIf }];

/** Its endpoints' veths, its VXLAN device (an overlay's: enslaved to the bridge, it would outlive it), its bridge. */
export function planNetworkRemoval(net: NetworkRecord, eps: EndpointRecord[]): Op[] {
  if (isMacvlan(net)) return [...eps.flatMap(planEndpointRemoval), ...planMacvlanNetworkRemoval(net)];
  const vxlan: LinkOp[] = net.mode === 'overlay' && net.vni ? [{ op: 'link-del', name: vxlanName(net.vni) }] : [];
  return [...eps.flatMap(planEndpointRemoval), ...vxlan, { op: 'link-del', name: net.bridge }];
}
