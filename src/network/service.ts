// The network driver handler: each call goes to the part that owns it (networks, endpoints, published ports),
// which loads records, plans, saves, applies to the kernel and undoes on failure.
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { IpamConfig } from './spec.js';
import type { JoinReply, NetworkDeps } from './driver/deps.js';
import { type EndpointRequest, Endpoints } from './driver/endpoints.js';
import { External } from './driver/external.js';
import { Networks } from './driver/networks.js';
import { MacvlanParents } from './macvlan/parents.js';
import { DriverState } from './driver/state.js';

export type { Datapath } from './datapath.js';
export type { Firewall, JoinReply, NetworkDeps, OverlayControl } from './driver/deps.js';

export class NetworkDriver {
  private readonly state: DriverState;
  private readonly nets: Networks;
  private readonly eps: Endpoints;
  private readonly external: External;
  /** Macvlan parents knit made, and the host legs' settings: Networks uses them, and so does the doctor. */
  readonly macvlan: MacvlanParents;

  constructor(deps: NetworkDeps) {
    this.state = new DriverState(deps);
    this.macvlan = new MacvlanParents(deps);
    this.nets = new Networks(this.state, this.macvlan);
    this.eps = new Endpoints(this.state);
    this.external = new External(this.state);
  }

  createNetwork(req: { id: string; options: Record<string, unknown>; ipv4: IpamConfig[]; ipv6: IpamConfig[] }): Promise<void> {
    return this.nets.create(req);
  }

  deleteNetwork(id: string): Promise<void> {
    return this.nets.delete(id);
  }

  /** Overlay segment memberships made to match this host's overlay networks; returns how many changed. */
  reconcileSegments(): Promise<number> {
    return this.nets.reconcileSegments();
  }

  createEndpoint(req: EndpointRequest): Promise<{ mac: string }> {
    return this.eps.create(req);
  }

  deleteEndpoint(networkId: string, endpointId: string, onlyIf?: (ep: EndpointRecord) => boolean): Promise<boolean> {
    return this.eps.delete(networkId, endpointId, onlyIf);
  }

  join(req: { networkId: string; endpointId: string; sandboxKey: string; options: Record<string, unknown> }): Promise<JoinReply> {
    return this.eps.join(req);
  }

  /** Ports go first, then the record says the endpoint left. */
  async leave(networkId: string, endpointId: string): Promise<void> {
    await this.external.revoke(networkId, endpointId);
    await this.eps.leave(networkId, endpointId);
  }

  programExternal(req: { networkId: string; endpointId: string; options: Record<string, unknown> }): Promise<void> {
    return this.external.program(req);
  }

  revokeExternal(networkId: string, endpointId: string): Promise<void> {
    return this.external.revoke(networkId, endpointId);
  }

  /** dockerd released an address of a pool of `subnet`: an endpoint still holding it drops it (Endpoints.addressReleased). */
  addressReleased(subnet: string, address: string): Promise<void> {
    return this.eps.addressReleased(subnet, address);
  }

  endpointInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>> {
    return this.eps.info(networkId, endpointId);
  }

  /** Resolves once the links of deleted endpoints are gone (DeleteEndpoint removes them in the background). */
  settled(): Promise<void> {
    return this.state.settled();
  }

  network(id: string): Promise<NetworkRecord | undefined> {
    return this.state.network(id);
  }

  networks(): Promise<NetworkRecord[]> {
    return this.state.networks();
  }

  endpoints(networkId?: string): Promise<EndpointRecord[]> {
    return this.state.endpoints(networkId);
  }
}
