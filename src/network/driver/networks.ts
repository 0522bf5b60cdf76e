// Network lifecycle: create (with its overlay segment), replay, delete, and segment memberships at sweep time.
import { badRequest, conflict } from '../../errors.js';
import { bridgeName, validateIfName } from '../../datapath/names.js';
import { short } from '../../log.js';
import { VXLAN_OVERHEAD } from '../overlay/plan.js';
import type { MacvlanParents } from '../macvlan/parents.js';
import { planNetwork, planNetworkRemoval } from '../plan.js';
import { keys, type NetworkRecord } from '../records.js';
import { buildSpec, type IpamConfig, type NetworkSpec } from '../spec.js';
import { ALL, type DriverState } from './state.js';

export class Networks {
  constructor(private readonly s: DriverState, private readonly parents: MacvlanParents) {}

  async create(req: { id: string; options: Record<string, unknown>; ipv4: IpamConfig[]; ipv6: IpamConfig[] }): Promise<void> {
    const spec = buildSpec({ ...req, defaultBridge: bridgeName(req.id) });
    validateIfName(spec.bridge);
    await this.s.locks.run(ALL, () => this.s.locks.run(req.id, async () => {
      const existing = await this.s.network(req.id);
      if (existing) return replay(existing, spec);
      await this.checkBridge(spec.bridge);
      const net: NetworkRecord = { ...spec, createdAt: new Date().toISOString() };
      if (net.mode === 'overlay') await this.joinSegment(net);
      await this.parents.prepare(net, await this.s.networks());
      await this.s.save(keys.network(net.id), net);
      try {
        await this.s.deps.kernel.apply(planNetwork(net));
        await this.parents.tuneHostLeg(net);
        await this.s.deps.firewall.syncNetwork(net, []);
        if (net.mode === 'overlay') await this.s.overlayFor(net).attach(net);
      } catch (err) {
        await this.undoCreate(net);
        throw err;
      }
      const subnets = [...net.ipv4, ...net.ipv6].map((s) => s.subnet);
      this.s.deps.log.info('network created', { network: short(net.id), bridge: net.bridge, mode: net.mode, subnets });
    }));
  }

  private async checkBridge(bridge: string): Promise<void> {
    const clash = (await this.s.networks()).find((n) => n.bridge === bridge);
    if (clash) throw conflict(`bridge ${bridge} is already used by knit network ${short(clash.id)}; choose another com.docker.network.bridge.name`);
    const taken = (await this.s.deps.kernel.links()).find((l) => l.name === bridge);
    if (taken) throw conflict(`a link named ${bridge} already exists on this host and knit did not make it; choose another com.docker.network.bridge.name`);
  }

  private async undoCreate(net: NetworkRecord): Promise<void> {
    await this.s.undo(() => this.s.deps.kernel.remove(planNetworkRemoval(net, [])));
    await this.s.undo(() => this.s.deps.firewall.removeNetwork(net));
    await this.s.forget(keys.network(net.id));
    if (net.mode === 'overlay') {
      await this.s.undo(async () => this.s.deps.overlay?.detach(net));
      await this.s.undo(() => this.s.overlayFor(net).leaveSegment(net.ipv4[0].subnet));
    }
    await this.s.undo(async () => this.parents.release(net, await this.s.networks()));
    if (net.encrypted) await this.s.undo(() => this.stopTunnelIfUnused());
  }

  /** The segment's VNI, this host's VTEP and the MTU the VXLAN headers leave, into the record. */
  private async joinSegment(net: NetworkRecord): Promise<void> {
    const ov = this.s.deps.overlay;
    if (!ov) throw badRequest('overlay networks need KNIT_ADVERTISE (this host\'s underlay address or interface)');
    // Only knit's IPAM tells the driver a pool's --ip-range; with another IPAM it is unknown and not compared.
    if (net.knitIpam && this.s.deps.poolRange) net.ipRange = (await this.s.deps.poolRange(net.ipv4[0].subnet)) ?? '';
    net.vni = await ov.defineSegment(net);
    if (!net.encrypted) {
      net.vtep = ov.vtep;
      net.mtu ??= ov.underlayMtu - VXLAN_OVERHEAD;
      return;
    }
    try {
      const tunnel = await ov.encrypt();
      net.vtep = tunnel.vtep;
      net.mtu ??= tunnel.mtu;
    } catch (err) {
      await this.s.undo(() => ov.leaveSegment(net.ipv4[0].subnet));
      await this.s.undo(() => this.stopTunnelIfUnused());
      throw err;
    }
  }

  /** The WireGuard tunnel stays while any encrypted overlay's record does. */
  private async stopTunnelIfUnused(): Promise<void> {
    const ov = this.s.deps.overlay;
    if (ov && !(await this.s.networks()).some((n) => n.encrypted)) await ov.stopTunnel();
  }

  /** This host's segment memberships made to match its overlay networks; returns how many changed. */
  async reconcileSegments(): Promise<number> {
    const control = this.s.deps.overlay;
    if (!control) return 0;
    // Under the lock of every network: no CreateNetwork is between joining its segment and saving its record.
    return this.s.locks.run(ALL, async () => control.reconcileSegments((await this.s.networks()).filter((n) => n.mode === 'overlay')));
  }

  async delete(id: string): Promise<void> {
    await this.s.locks.run(ALL, () =>
      this.s.locks.run(id, async () => {
        const net = await this.s.network(id);
        if (!net) return;
        const eps = await this.s.endpoints(id);
        await this.s.deps.store.commit([...eps.map((e) => ({ key: keys.endpoint(id, e.id), value: null })), { key: keys.network(id), value: null }]);
        const ov = net.mode === 'overlay' ? this.s.deps.overlay : undefined;
        if (net.mode === 'overlay' && !ov) {
          this.s.deps.log.warn('overlay network deleted without KNIT_ADVERTISE: its segment membership stays until knit runs with it', { network: short(id) });
        }
        ov?.detach(net);
        if (ov) for (const ep of eps) await this.s.undo(() => ov.unpublish(net, ep));
        await this.s.settled(id);
        await this.s.deps.kernel.remove(planNetworkRemoval(net, eps));
        await this.s.deps.firewall.removeNetwork(net);
        // Best effort: a sub-interface left behind is removed by the next reconcile (no network uses it).
        await this.s.undo(async () => this.parents.release(net, await this.s.networks()));
        // Best effort: if the store is away, the sweep leaves the segment later (reconcileSegments).
        if (ov) await this.s.undo(() => ov.leaveSegment(net.ipv4[0].subnet));
        if (net.encrypted) await this.s.undo(() => this.stopTunnelIfUnused());
        this.s.deps.log.info('network deleted', { network: short(id), bridge: net.bridge, staleEndpoints: eps.length });
      }),
    );
  }
}

/** dockerd re-sends a call whose reply it lost; the same request again is a success. */
function replay(existing: NetworkRecord, spec: NetworkSpec): void {
  const derived = new Set(['vni', 'mtu']);
  const same = (Object.keys(spec) as Array<keyof typeof spec>).every(
    (k) => (derived.has(k) && spec[k] === undefined) || JSON.stringify(existing[k]) === JSON.stringify(spec[k]),
  );
  if (!same) throw conflict(`network ${short(spec.id)} already exists with other settings`);
}
