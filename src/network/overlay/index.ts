// The overlay control plane, as the driver uses it: segments defined once cluster-wide, this host's endpoints
// published under its lease, and the other hosts' endpoints programmed into the local VXLAN devices.
//
// The parts: segments.ts (define, leave, forget, reconcile), publication.ts (an endpoint's record),
// lease.ts (HostLease: this host's lease, liveness key and published records), watch.ts (HostRecordWatch:
// the other hosts' records, per prefix), peers.ts (those endpoints into the kernel), plan.ts (pure).
//
// A new kind of per-host record (names, WireGuard public keys) plugs in beside the endpoints, without this
// class: give it a prefix below which every key names its host; before `lease.start()`, `lease.keep(key, value)`
// for each record this host already has (from its local state) and `watch.add({ prefix, hostOf, reset, change })`
// for the others'; while running, `lease.put(key, value)` / `lease.drop(key)`. Records go under the lease and are
// re-written after an outage; this host's keys under the prefix that the lease does not hold are deleted at each
// reconnect; `reset` gets every other host's records after each reconnect, then `change` each watch event.
// `lease.onConnected(hook)` runs after each reconnect, for anything else that must follow one.
import { vxlanName } from '../../datapath/names.js';
import { describe, KnitError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Store } from '../../store/types.js';
import type { Datapath } from '../datapath.js';
import type { EndpointRecord, NetworkRecord } from '../records.js';
import { segmentKey } from './keys.js';
import type { HostLease } from './lease.js';
import { Peers, type SegmentStats } from './peers.js';
import { endpointKey, endpointValue } from './publication.js';
import { Segments, type SegmentSpec } from './segments.js';
import type { HostRecordWatch } from './watch.js';
import type { LiveHosts } from './live-hosts.js';
import { SegmentMembers } from './members.js';
import type { Tunnel } from './tunnel.js';

export interface OverlayDeps {
  cluster: Store;
  hostId: string;
  /** This host's underlay (KNIT_ADVERTISE): without it there is no Overlay, only the lease. */
  underlay: { vtep: string; mtu: number };
  kernel: Datapath;
  log: Logger;
  lease: HostLease;
  watch: HostRecordWatch;
  /** The other live hosts (with a cluster store): where watches re-read their prefix, each one's records on each
   * shared segment are watched apart. */
  live?: LiveHosts;
  /** Encrypted overlays' WireGuard tunnel (made before the Overlay, which it does not need). */
  tunnel: Tunnel;
}

/** An overlay network's VXLAN device: it carries the network's VNI. */
const device = (net: NetworkRecord): string => {
  if (net.vni === undefined) throw new KnitError('internal', `overlay network ${net.id.slice(0, 12)} has no VNI in its record`);
  return vxlanName(net.vni);
};

export class Overlay {
  readonly segments: Segments;
  private readonly peers: Peers;

  constructor(private readonly deps: OverlayDeps) {
    this.segments = new Segments(deps);
    // Only where watches re-read their prefix are the others' endpoints watched per host and segment.
    const members = deps.cluster.watchRereadsPrefix && deps.live ? new SegmentMembers({ cluster: deps.cluster, onChange: () => deps.watch.refresh() }) : undefined;
    this.peers = new Peers({ ...deps, members });
    deps.watch.add(this.peers);
  }

  get vtep(): string {
    return this.deps.underlay.vtep;
  }

  get underlayMtu(): number {
    return this.deps.underlay.mtu;
  }

  /** Per local segment: the other hosts and endpoints on it and the entries programmed (for metrics). */
  segmentStats(): SegmentStats[] {
    return this.peers.stats();
  }

  /** Before the lease starts: this host's overlay networks and endpoints, from its local records. */
  load(nets: NetworkRecord[], eps: EndpointRecord[]): void {
    for (const net of nets.filter((n) => n.mode === 'overlay' && n.vni !== undefined)) {
      this.peers.adopt(segmentKey(net), device(net));
      this.deps.lease.joinSegment(segmentKey(net));
      for (const ep of eps.filter((e) => e.networkId === net.id)) this.deps.lease.keep(this.key(net, ep), endpointValue(net.vtep ?? this.vtep, ep));
    }
  }

  defineSegment(spec: SegmentSpec): Promise<number> {
    return this.segments.define(spec);
  }

  leaveSegment(subnet: string): Promise<void> {
    return this.segments.leave(subnet);
  }

  reconcileSegments(local: SegmentSpec[]): Promise<number> {
    return this.segments.reconcile(local);
  }

  /**
   * A local overlay network now exists: program what the other hosts publish for its segment, and write this host's
   * anchor there (now if the store answers, else with the next record or reconnect).
   */
  async attach(net: NetworkRecord): Promise<void> {
    this.deps.lease.joinSegment(segmentKey(net));
    await this.flush();
    await this.peers.attach(segmentKey(net), device(net));
    this.deps.watch.refresh();
  }

  detach(net: NetworkRecord): void {
    this.peers.detach(segmentKey(net), device(net));
    this.deps.lease.leaveSegment(segmentKey(net));
    this.deps.watch.refresh();
    void this.flush();
  }

  private async flush(): Promise<void> {
    await this.deps.lease.flush().catch((err) => void this.deps.log.warn('this host\'s anchor on a segment could not be written yet; it will be with the next write', { error: describe(err) }));
  }

  /** An encrypted overlay's endpoints are published with this host's tunnel address as their VTEP. */
  publish(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    return this.deps.lease.put(this.key(net, ep), endpointValue(net.vtep ?? this.vtep, ep));
  }

  /** The tunnel up for an encrypted overlay: the VXLAN device's local address and the MTU left inside. */
  async encrypt(): Promise<{ vtep: string; mtu: number }> {
    return { vtep: await this.deps.tunnel.ensure(), mtu: this.deps.tunnel.overlayMtu };
  }

  /** This host's last encrypted overlay is gone. */
  stopTunnel(): Promise<void> {
    return this.deps.tunnel.stop();
  }

  unpublish(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    return this.deps.lease.drop(this.key(net, ep));
  }

  private key(net: NetworkRecord, ep: EndpointRecord): string {
    return endpointKey({ hostId: this.deps.hostId, net, ep });
  }
}
