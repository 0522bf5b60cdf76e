// Host-local records of networks and endpoints, kept in the embedded store under the state dir.
import type { NetworkSpec } from './spec.js';

/**
 * `vni` and `vtep` are set for overlays once the segment is known; `ipRange` is the --ip-range knit's IPAM holds
 * for an overlay's pool ('' for none), which every host of the segment must share; `hostLegSource` is set for a
 * macvlan network with a host leg whose parent holds an address in its IPv4 subnet (the source of the host's
 * traffic to its containers).
 */
export type NetworkRecord = NetworkSpec & { createdAt: string; vtep?: string; ipRange?: string; hostLegSource?: string };

export interface PortMapping {
  proto: 'tcp' | 'udp' | 'sctp';
  containerPort: number;
  hostIp: string;
  hostPort: number;
}

/** A host route knit added for an endpoint (a macvlan network's host leg). */
export interface HostRoute {
  dst: string;
  dev: string;
  /** The host's own address to reach it from (else the kernel picks one, perhaps on another network). */
  src?: string;
}

export interface EndpointRecord {
  id: string;
  networkId: string;
  /** Host end (on the bridge) and container end of the veth pair; on a macvlan network both name its one macvlan link. */
  hostIf: string;
  peerIf: string;
  mac: string;
  /** CIDRs as IPAM gave them. */
  address?: string;
  addressV6?: string;
  sandboxKey?: string;
  /** When it left its sandbox (Leave); dockerd deletes it right after, so an endpoint left long ago was forgotten. */
  leftAt?: string;
  /** Routes to its addresses through its network's host leg, removed with it. */
  hostRoutes?: HostRoute[];
  /** DNS servers dockerd gave it in CreateEndpoint (non-internal networks only): does it use knit's resolver? */
  dnsServers?: string[];
  /** Published ports, present while external connectivity is programmed. */
  ports: PortMapping[];
  createdAt: string;
}

export const keys = {
  networks: 'net/',
  network: (id: string) => `net/${id}`,
  endpoints: (networkId: string) => `ep/${networkId}/`,
  allEndpoints: 'ep/',
  endpoint: (networkId: string, id: string) => `ep/${networkId}/${id}`,
  hostId: 'meta/host-id',
};
