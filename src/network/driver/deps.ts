// What the network driver is built from: the stores, the datapath, the firewall and (with KNIT_ADVERTISE) the
// overlay control plane, as interfaces.
import type { Logger } from '../../log.js';
import type { Store } from '../../store/types.js';
import type { Datapath } from '../datapath.js';
import type { EndpointRecord, NetworkRecord, PortMapping } from '../records.js';
import type { SegmentSpec } from '../overlay/segments.js';
import type { StaticRoute } from '../dns.js';

/** Keeps knit's iptables state in step with the records of one network. */
export interface Firewall {
  syncNetwork(net: NetworkRecord, eps: EndpointRecord[]): Promise<void>;
  removeNetwork(net: NetworkRecord): Promise<void>;
}

/** The overlay control plane as the driver uses it (network/overlay's Overlay). */
export interface OverlayControl {
  /** This host's underlay address (KNIT_ADVERTISE) and the MTU of the link that holds it. */
  readonly vtep: string;
  readonly underlayMtu: number;
  defineSegment(spec: SegmentSpec): Promise<number>;
  leaveSegment(subnet: string): Promise<void>;
  reconcileSegments(local: SegmentSpec[]): Promise<number>;
  attach(net: NetworkRecord): Promise<void>;
  detach(net: NetworkRecord): void;
  publish(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  unpublish(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** `-o encrypted`: the WireGuard tunnel up; its address is the VXLAN device's local address. */
  encrypt(): Promise<{ vtep: string; mtu: number }>;
  /** This host's last encrypted overlay is gone: the tunnel goes. */
  stopTunnel(): Promise<void>;
}

export interface NetworkDeps {
  store: Store;
  kernel: Datapath;
  firewall: Firewall;
  log: Logger;
  /** Ports that sockets on the host hold, so a mapping never steals one. */
  boundPorts: () => Promise<Record<PortMapping['proto'], Set<number>>>;
  /** Present when KNIT_ADVERTISE names this host's underlay: overlay networks are possible. */
  overlay?: OverlayControl;
  /** The --ip-range of a pool knit's IPAM holds ('' for none); for overlays, whose hosts must agree on it. */
  poolRange?: (subnet: string) => Promise<string | undefined>;
  /** knit's resolver address (KNIT_DNS_ADDRESS), when it runs: internal networks get a route to it. */
  dnsResolver?: string;
}

export interface JoinReply {
  srcName: string;
  gateway?: string;
  gatewayV6?: string;
  disableGatewayService: boolean;
  staticRoutes: StaticRoute[];
}
