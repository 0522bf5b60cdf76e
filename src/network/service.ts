// The network driver handler: load records, plan, save, apply to the kernel, undo on failure.
import { badRequest, conflict, describe, notFound } from '../errors.js';
import type { Overlay } from './overlay.js';
import { VXLAN_OVERHEAD } from './overlay-plan.js';
import type { Op, LinkState } from '../datapath/ops.js';
import type { VxlanEntries } from '../datapath/parse.js';
import { bridgeName, validateIfName } from '../datapath/names.js';
import { short, type Logger } from '../log.js';
import { parseAddrCidr } from '../ipam/cidr.js';
import { decode, encode } from '../store/records.js';
import type { Store } from '../store/types.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { endpointNames, macFor, planEndpoint, planEndpointRemoval, planNetwork, planNetworkRemoval } from './plan.js';
import { type EndpointRecord, keys, type NetworkRecord, type PortMapping } from './records.js';
import { assignPorts, parsePortMap } from './ports.js';
import { buildSpec, type IpamConfig } from './spec.js';
import { MacvlanParents } from './macvlan.js';
import { hostRoutes, isMacvlan } from './macvlan-plan.js';
import { validateMac } from '../datapath/names.js';

export interface Datapath {
  apply(ops: Op[]): Promise<void>;
  remove(ops: Op[]): Promise<void>;
  links(): Promise<LinkState[]>;
  vxlanEntries(dev: string): Promise<VxlanEntries>;
  flushConntrack(flows: Array<{ proto: string; port: number; family: 4 | 6 }>): Promise<void>;
  setSysctl(name: string, value: string): Promise<void>;
}

/** The flows to forget when mappings come or go (see Kernel.flushConntrack). */
const flowsOf = (ports: PortMapping[]) => ports.map((p) => ({ proto: p.proto, port: p.hostPort, family: (p.hostIp.includes(':') ? 6 : 4) as 4 | 6 }));

/** Keeps knit's iptables state in step with the records of one network. */
export interface Firewall {
  syncNetwork(net: NetworkRecord, eps: EndpointRecord[]): Promise<void>;
  removeNetwork(net: NetworkRecord): Promise<void>;
}

export interface NetworkDeps {
  store: Store;
  kernel: Datapath;
  firewall: Firewall;
  log: Logger;
  /** Ports that sockets on the host hold, so a mapping never steals one. */
  boundPorts: () => Promise<Record<PortMapping['proto'], Set<number>>>;
  /** Present when KNIT_ADVERTISE names this host's underlay: overlay networks are possible. */
  overlay?: { control: Overlay; vtep: string; underlayMtu: number };
}

export interface JoinReply {
  srcName: string;
  gateway?: string;
  gatewayV6?: string;
  disableGatewayService: boolean;
}

const ALL = '*';
const PORTS = 'ports';

export class NetworkDriver {
  private readonly locks = new KeyedLock();
  readonly macvlan: MacvlanParents;

  constructor(private readonly deps: NetworkDeps) {
    this.macvlan = new MacvlanParents(deps);
  }

  async createNetwork(req: { id: string; options: Record<string, unknown>; ipv4: IpamConfig[]; ipv6: IpamConfig[] }): Promise<void> {
    const spec = buildSpec({ ...req, defaultBridge: bridgeName(req.id) });
    validateIfName(spec.bridge);
    await this.locks.run(ALL, () => this.locks.run(req.id, async () => {
      const existing = await this.network(req.id);
      if (existing) return this.replayNetwork(existing, spec);
      const others = await this.networks();
      const clash = others.find((n) => n.bridge === spec.bridge);
      if (clash) throw conflict(`bridge ${spec.bridge} is already used by knit network ${short(clash.id)}; choose another com.docker.network.bridge.name`);
      const taken = (await this.deps.kernel.links()).find((l) => l.name === spec.bridge);
      if (taken) throw conflict(`a link named ${spec.bridge} already exists on this host and knit did not make it; choose another com.docker.network.bridge.name`);
      const net: NetworkRecord = { ...spec, createdAt: new Date().toISOString() };
      if (net.mode === 'overlay') await this.joinSegment(net);
      await this.macvlan.prepare(net, others);
      await this.save(keys.network(net.id), net);
      try {
        await this.deps.kernel.apply(planNetwork(net));
        await this.macvlan.tuneHostLeg(net);
        await this.deps.firewall.syncNetwork(net, []);
        if (net.mode === 'overlay') await this.deps.overlay!.control.attach(net);
      } catch (err) {
        await this.undo(() => this.deps.kernel.remove(planNetworkRemoval(net, [])));
        await this.undo(() => this.deps.firewall.removeNetwork(net));
        await this.deps.store.commit([{ key: keys.network(net.id), value: null }]);
        if (net.mode === 'overlay') await this.undo(() => this.deps.overlay!.control.leaveSegment(net.ipv4[0].subnet));
        await this.undo(() => this.macvlan.release(net, others));
        throw err;
      }
      this.deps.log.info('network created', { network: short(net.id), bridge: net.bridge, mode: net.mode, subnets: [...net.ipv4, ...net.ipv6].map((s) => s.subnet) });
    }));
  }

  /** Overlay.reconcileSegments with this host's overlay networks; returns how many memberships changed. */
  async reconcileSegments(): Promise<number> {
    const control = this.deps.overlay?.control;
    if (!control) return 0;
    // Under the lock of every network: no CreateNetwork is between joining its segment and saving its record.
    return this.locks.run(ALL, async () => control.reconcileSegments((await this.networks()).filter((n) => n.mode === 'overlay')));
  }

  private async joinSegment(net: NetworkRecord): Promise<void> {
    const ov = this.deps.overlay;
    if (!ov) throw badRequest('overlay networks need KNIT_ADVERTISE (this host\'s underlay address or interface)');
    net.vni = await ov.control.defineSegment(net);
    net.vtep = ov.vtep;
    net.mtu ??= ov.underlayMtu - VXLAN_OVERHEAD;
  }

  /** dockerd re-sends a call whose reply it lost; the same request again is a success. */
  private async replayNetwork(existing: NetworkRecord, spec: ReturnType<typeof buildSpec>): Promise<void> {
    const derived = new Set(['vni', 'mtu']);
    const same = (Object.keys(spec) as Array<keyof typeof spec>).every(
      (k) => (derived.has(k) && spec[k] === undefined) || JSON.stringify(existing[k]) === JSON.stringify(spec[k]),
    );
    if (!same) throw conflict(`network ${short(spec.id)} already exists with other settings`);
  }

  async deleteNetwork(id: string): Promise<void> {
    await this.locks.run(ALL, () =>
      this.locks.run(id, async () => {
        const net = await this.network(id);
        if (!net) return;
        const eps = await this.endpoints(id);
        await this.deps.store.commit([...eps.map((e) => ({ key: keys.endpoint(id, e.id), value: null })), { key: keys.network(id), value: null }]);
        if (net.mode === 'overlay') this.deps.overlay?.control.detach(net);
        for (const ep of eps) if (net.mode === 'overlay') await this.undo(() => this.deps.overlay!.control.unpublish(net, ep));
        await this.deps.kernel.remove(planNetworkRemoval(net, eps));
        await this.deps.firewall.removeNetwork(net);
        // Best effort: a sub-interface left behind is removed by the next reconcile (no network uses it).
        await this.undo(async () => this.macvlan.release(net, await this.networks()));
        // Best effort: if the store is away, the sweep leaves the segment later (reconcileSegments).
        if (net.mode === 'overlay') await this.undo(() => this.deps.overlay!.control.leaveSegment(net.ipv4[0].subnet));
        this.deps.log.info('network deleted', { network: short(id), bridge: net.bridge, staleEndpoints: eps.length });
      }),
    );
  }

  async createEndpoint(req: { networkId: string; endpointId: string; address?: string; addressV6?: string; mac?: string; options: Record<string, unknown> }): Promise<{ mac: string }> {
    return this.onEndpoint(req.networkId, req.endpointId, async () => {
      const net = await this.requireNetwork(req.networkId);
      const mac = req.mac ? validateMac(req.mac) : macFor(req.endpointId);
      this.checkAddress(net, req.address, 4);
      this.checkAddress(net, req.addressV6, 6);
      const existing = await this.endpoint(req.networkId, req.endpointId);
      if (existing) {
        if (existing.address !== req.address || existing.addressV6 !== req.addressV6 || existing.mac !== mac) {
          throw conflict(`endpoint ${short(req.endpointId)} already exists with other addresses`);
        }
        return { mac };
      }
      const ep: EndpointRecord = { id: req.endpointId, networkId: net.id, ...endpointNames(req.endpointId, net), mac, ports: [], createdAt: new Date().toISOString() };
      if (req.address) ep.address = req.address;
      if (req.addressV6) ep.addressV6 = req.addressV6;
      if (isMacvlan(net) && net.macvlan.hostLeg) ep.hostRoutes = hostRoutes(net, ep);
      await this.save(keys.endpoint(net.id, ep.id), ep);
      try {
        await this.deps.kernel.apply(planEndpoint(net, ep));
      } catch (err) {
        await this.deps.store.commit([{ key: keys.endpoint(net.id, ep.id), value: null }]);
        throw err;
      }
      if (net.mode === 'overlay') {
        try {
          await this.deps.overlay!.control.publish(net, ep);
        } catch (err) {
          await this.undo(() => this.deps.kernel.remove(planEndpointRemoval(ep)));
          await this.deps.store.commit([{ key: keys.endpoint(net.id, ep.id), value: null }]);
          throw err;
        }
      }
      this.deps.log.info('endpoint created', { network: short(net.id), endpoint: short(ep.id), address: ep.address, addressV6: ep.addressV6, mac, veth: ep.hostIf });
      return { mac };
    });
  }

  private checkAddress(net: NetworkRecord, cidr: string | undefined, family: 4 | 6): void {
    if (!cidr) return;
    const { ip } = parseAddrCidr(cidr, family === 4 ? 'Interface.Address' : 'Interface.AddressIPv6');
    const subnets = family === 4 ? net.ipv4 : net.ipv6;
    const inside = subnets.some((s) => {
      const sub = parseAddrCidr(s.subnet).cidr;
      return sub.family === family && ip >= sub.base && ip < sub.base + (1n << BigInt((family === 4 ? 32 : 128) - sub.prefix));
    });
    if (!inside) throw conflict(`address ${cidr} is not in any IPv${family} subnet of network ${short(net.id)}`);
  }

  /** `onlyIf` is checked under the network's lock against the record as it is then (the sweep decides on an older read). */
  async deleteEndpoint(networkId: string, endpointId: string, onlyIf?: (ep: EndpointRecord) => boolean): Promise<boolean> {
    return this.onEndpoint(networkId, endpointId, async () => {
      const ep = await this.endpoint(networkId, endpointId);
      if (!ep || (onlyIf && !onlyIf(ep))) return false;
      // The record goes first: a crash after it leaves an unowned link, which reconcile removes.
      await this.deps.store.commit([{ key: keys.endpoint(networkId, endpointId), value: null }]);
      await this.deps.kernel.remove(planEndpointRemoval(ep));
      const net = await this.network(networkId);
      if (net?.mode === 'overlay') await this.undo(() => this.deps.overlay!.control.unpublish(net, ep));
      if (net && ep.ports.length) {
        await this.locks.run(PORTS, async () => this.deps.firewall.syncNetwork(net, await this.endpoints(networkId)));
        await this.deps.kernel.flushConntrack(flowsOf(ep.ports));
      }
      this.deps.log.info('endpoint deleted', { network: short(networkId), endpoint: short(endpointId) });
      return true;
    });
  }

  async join(req: { networkId: string; endpointId: string; sandboxKey: string; options: Record<string, unknown> }): Promise<JoinReply> {
    return this.onEndpoint(req.networkId, req.endpointId, async () => {
      const net = await this.requireNetwork(req.networkId);
      const ep = await this.endpoint(req.networkId, req.endpointId);
      if (!ep) throw notFound(`endpoint ${short(req.endpointId)} is not known to knit on network ${short(req.networkId)}`);
      if (ep.sandboxKey !== req.sandboxKey || ep.leftAt) {
        const { leftAt: _, ...joined } = ep;
        await this.save(keys.endpoint(net.id, ep.id), { ...joined, sandboxKey: req.sandboxKey });
      }
      const reply: JoinReply = { srcName: ep.peerIf, disableGatewayService: net.internal };
      if (!net.internal) {
        const gw4 = net.ipv4.find((s) => s.gateway)?.gateway;
        const gw6 = net.ipv6.find((s) => s.gateway)?.gateway;
        if (gw4) reply.gateway = gw4.split('/')[0];
        if (gw6 && ep.addressV6) reply.gatewayV6 = gw6.split('/')[0];
      }
      this.deps.log.info('endpoint joined', { network: short(net.id), endpoint: short(ep.id), sandbox: req.sandboxKey.split('/').pop() });
      return reply;
    });
  }

  /** Ports go, and the record says the endpoint left: if knit dies before DeleteEndpoint, dockerd forgets it, and the sweep then does too. */
  async leave(networkId: string, endpointId: string): Promise<void> {
    await this.revokeExternal(networkId, endpointId);
    await this.onEndpoint(networkId, endpointId, async () => {
      const ep = await this.endpoint(networkId, endpointId);
      if (!ep || ep.sandboxKey === undefined) return;
      const { sandboxKey: _, ...left } = ep;
      await this.save(keys.endpoint(networkId, endpointId), { ...left, leftAt: new Date().toISOString() });
    });
  }

  async programExternal(req: { networkId: string; endpointId: string; options: Record<string, unknown> }): Promise<void> {
    await this.onEndpoint(req.networkId, req.endpointId, () =>
      this.locks.run(PORTS, async () => {
        const net = await this.requireNetwork(req.networkId);
        const ep = await this.endpoint(req.networkId, req.endpointId);
        if (!ep) throw notFound(`endpoint ${short(req.endpointId)} is not known to knit on network ${short(req.networkId)}`);
        const reqs = parsePortMap(req.options['com.docker.network.portmap'], net.hostBindingIpv4 ?? '0.0.0.0');
        if (isMacvlan(net) && reqs.length) {
          throw badRequest('macvlan networks have no published ports: each container has its own address on the LAN; leave out -p and reach it there');
        }
        if (net.internal || (reqs.length === 0 && ep.ports.length === 0)) return;
        const all = await this.endpoints();
        const taken = all.filter((e) => e.id !== ep.id).flatMap((e) => e.ports);
        const bound = await this.deps.boundPorts();
        const next: EndpointRecord = { ...ep, ports: assignPorts(reqs, taken, (proto, p) => bound[proto as PortMapping['proto']].has(p)) };
        await this.save(keys.endpoint(net.id, ep.id), next);
        try {
          await this.deps.firewall.syncNetwork(net, all.map((e) => (e.id === ep.id ? next : e)).filter((e) => e.networkId === net.id));
        } catch (err) {
          await this.save(keys.endpoint(net.id, ep.id), ep);
          throw err;
        }
        await this.deps.kernel.flushConntrack(flowsOf([...ep.ports, ...next.ports]));
        const ports = next.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`);
        this.deps.log.info('ports published', { network: short(net.id), endpoint: short(ep.id), ports });
      }),
    );
  }

  async revokeExternal(networkId: string, endpointId: string): Promise<void> {
    await this.onEndpoint(networkId, endpointId, () => this.locks.run(PORTS, async () => {
      const ep = await this.endpoint(networkId, endpointId);
      if (!ep || ep.ports.length === 0) return;
      const next = { ...ep, ports: [] };
      await this.save(keys.endpoint(networkId, endpointId), next);
      const net = await this.network(networkId);
      if (net) await this.deps.firewall.syncNetwork(net, await this.endpoints(networkId));
      await this.deps.kernel.flushConntrack(flowsOf(ep.ports));
      this.deps.log.info('ports unpublished', { network: short(networkId), endpoint: short(endpointId) });
    }));
  }

  async endpointInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>> {
    const ep = await this.endpoint(networkId, endpointId);
    if (!ep) return {};
    return { hostInterface: ep.hostIf, mac: ep.mac, address: ep.address, addressV6: ep.addressV6, ports: ep.ports };
  }

  async network(id: string): Promise<NetworkRecord | undefined> {
    const e = await this.deps.store.get(keys.network(id));
    return e ? decode<NetworkRecord>(e) : undefined;
  }

  async networks(): Promise<NetworkRecord[]> {
    return (await this.deps.store.list(keys.networks)).map((e) => decode<NetworkRecord>(e));
  }

  async endpoints(networkId?: string): Promise<EndpointRecord[]> {
    const prefix = networkId ? keys.endpoints(networkId) : keys.allEndpoints;
    return (await this.deps.store.list(prefix)).map((e) => decode<EndpointRecord>(e));
  }

  private async endpoint(networkId: string, id: string): Promise<EndpointRecord | undefined> {
    const e = await this.deps.store.get(keys.endpoint(networkId, id));
    return e ? decode<EndpointRecord>(e) : undefined;
  }

  private async requireNetwork(id: string): Promise<NetworkRecord> {
    const net = await this.network(id);
    if (!net) throw notFound(`network ${short(id)} is not known to knit (was it created while knit used another state directory?)`);
    return net;
  }

  /**
   * Endpoint calls hold their network shared (it cannot be created or deleted meanwhile, but the endpoints of
   * a burst are made side by side) and their endpoint alone. Lock order: network, endpoint, ports.
   */
  private onEndpoint<T>(networkId: string, endpointId: string, work: () => Promise<T>): Promise<T> {
    return this.locks.shared(networkId, () => this.locks.run(`ep/${networkId}/${endpointId}`, work));
  }

  private async save(key: string, record: object): Promise<void> {
    await this.deps.store.commit([{ key, value: encode(record) }]);
  }

  private async undo(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.deps.log.error('undo failed', { error: describe(err) });
    }
  }
}
