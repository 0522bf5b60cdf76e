// Endpoint lifecycle: create (with its overlay record), delete, join, leave, and what EndpointOperInfo shows.
import { conflict } from '../../errors.js';
import { validateMac } from '../../datapath/names.js';
import { contains, parseAddrCidr } from '../../addr/cidr.js';
import { short } from '../../log.js';
import { hostRoutes, isMacvlan } from '../macvlan/plan.js';
import { endpointMac, endpointNames, planEndpoint, planEndpointRemoval, planEndpointRoutesRemoval } from '../plan.js';
import { type EndpointRecord, keys, type NetworkRecord } from '../records.js';
import type { JoinReply } from './deps.js';
import { dnsServersOf, planDnsRoute, type StaticRoute } from '../dns.js';
import { flowsOf, PORTS, type DriverState } from './state.js';

export interface EndpointRequest {
  networkId: string;
  endpointId: string;
  address?: string;
  addressV6?: string;
  mac?: string;
  options: Record<string, unknown>;
}

export class Endpoints {
  constructor(private readonly s: DriverState) {}

  async create(req: EndpointRequest): Promise<{ mac: string }> {
    return this.s.onEndpoint(req.networkId, req.endpointId, async () => {
      const net = await this.s.requireNetwork(req.networkId);
      // A link of a deleted endpoint may still be going: a macvlan child with the same MAC could not be made, and
      // its host route's removal could take the new one's.
      await this.s.settled(req.networkId);
      const mac = req.mac ? validateMac(req.mac) : endpointMac(req.endpointId, req.address);
      checkAddress(net, req.address, 4);
      checkAddress(net, req.addressV6, 6);
      // Before anything is written: an overlay on a knit without KNIT_ADVERTISE is refused here.
      const overlay = net.mode === 'overlay' ? this.s.overlayFor(net) : undefined;
      const existing = await this.s.endpoint(req.networkId, req.endpointId);
      if (existing) {
        // A replay without a MAC gets the one recorded (an endpoint made by an earlier knit may have another kind).
        if (existing.address !== req.address || existing.addressV6 !== req.addressV6 || (req.mac && existing.mac !== mac)) {
          throw conflict(`endpoint ${short(req.endpointId)} already exists with other addresses`);
        }
        return { mac: existing.mac };
      }
      const ep: EndpointRecord = { id: req.endpointId, networkId: net.id, ...endpointNames(req.endpointId, net), mac, ...dnsServersOf(net, req.options), ports: [], createdAt: new Date().toISOString() };
      if (req.address) ep.address = req.address;
      if (req.addressV6) ep.addressV6 = req.addressV6;
      if (isMacvlan(net) && net.macvlan.hostLeg) ep.hostRoutes = hostRoutes(net, ep);
      await this.s.save(keys.endpoint(net.id, ep.id), ep);
      try {
        await this.s.deps.kernel.apply(planEndpoint(net, ep));
      } catch (err) {
        await this.s.forget(keys.endpoint(net.id, ep.id));
        throw err;
      }
      try {
        await overlay?.publish(net, ep);
      } catch (err) {
        await this.s.undo(() => this.s.deps.kernel.remove(planEndpointRemoval(ep)));
        await this.s.forget(keys.endpoint(net.id, ep.id));
        throw err;
      }
      this.s.deps.log.info('endpoint created', { network: short(net.id), endpoint: short(ep.id), address: ep.address, addressV6: ep.addressV6, mac, veth: ep.hostIf });
      return { mac };
    });
  }

  /** `onlyIf` is checked under the network's lock against the record as it is then (the sweep decides on an older read). */
  async delete(networkId: string, endpointId: string, onlyIf?: (ep: EndpointRecord) => boolean): Promise<boolean> {
    return this.s.onEndpoint(networkId, endpointId, async () => {
      const ep = await this.s.endpoint(networkId, endpointId);
      if (!ep || (onlyIf && !onlyIf(ep))) return false;
      // The record goes first: a crash after it leaves an unowned link, which reconcile removes.
      await this.s.forget(keys.endpoint(networkId, endpointId));
      // Routes at once (the container's address is gone with it); the link itself in the background.
      const routes = planEndpointRoutesRemoval(ep);
      if (routes.length) await this.s.deps.kernel.remove(routes);
      this.s.removeLater(networkId, [{ op: 'link-del', name: ep.hostIf }]);
      const net = await this.s.network(networkId);
      // Without KNIT_ADVERTISE nothing of this knit's was published (its records expire with the lease they had).
      const overlay = net?.mode === 'overlay' ? this.s.deps.overlay : undefined;
      if (net && overlay) await this.s.undo(() => overlay.unpublish(net, ep));
      if (net && ep.ports.length) await this.s.locks.run(PORTS, async () => this.s.deps.firewall.syncNetwork(net, await this.s.endpoints(networkId)));
      // The addresses' flows go too (their next holder must not inherit them); macvlan traffic is not the host's.
      const addresses = net && isMacvlan(net) ? [] : [ep.address, ep.addressV6].flatMap((a) => (a ? [a.split('/')[0]] : []));
      if (ep.ports.length || addresses.length) await this.s.deps.kernel.flushConntrack(flowsOf(ep.ports), addresses);
      this.s.deps.log.info('endpoint deleted', { network: short(networkId), endpoint: short(endpointId) });
      return true;
    });
  }

  async join(req: { networkId: string; endpointId: string; sandboxKey: string; options: Record<string, unknown> }): Promise<JoinReply> {
    return this.s.onEndpoint(req.networkId, req.endpointId, async () => {
      const net = await this.s.requireNetwork(req.networkId);
      const ep = await this.s.requireEndpoint(req.networkId, req.endpointId);
      if (ep.sandboxKey !== req.sandboxKey || ep.leftAt) {
        const { leftAt: _, ...joined } = ep;
        await this.s.save(keys.endpoint(net.id, ep.id), { ...joined, sandboxKey: req.sandboxKey });
      }
      const reply: JoinReply = { srcName: ep.peerIf, disableGatewayService: net.internal, staticRoutes: await this.dnsRoutes(net, ep, req.sandboxKey) };
      if (!net.internal) {
        const gw4 = net.ipv4.find((s) => s.gateway)?.gateway;
        const gw6 = net.ipv6.find((s) => s.gateway)?.gateway;
        if (gw4) reply.gateway = gw4.split('/')[0];
        if (gw6 && ep.addressV6) reply.gatewayV6 = gw6.split('/')[0];
      }
      this.s.deps.log.info('endpoint joined', { network: short(net.id), endpoint: short(ep.id), sandbox: req.sandboxKey.split('/').pop() });
      return reply;
    });
  }

  /**
   * Internal networks have no default route: the first knit endpoint of a sandbox gets a /32 to knit's resolver.
   * Not on macvlan: the route's next hop would be the LAN's router, which cannot reach the host's resolver.
   */
  private async dnsRoutes(net: NetworkRecord, ep: EndpointRecord, sandboxKey: string): Promise<StaticRoute[]> {
    if (!net.internal || !this.s.deps.dnsResolver || isMacvlan(net)) return [];
    const internal = new Set((await this.s.networks()).filter((n) => n.internal).map((n) => n.id));
    const others = (await this.s.endpoints()).map((e) => ({ ep: e, internal: internal.has(e.networkId) }));
    return planDnsRoute({ resolver: this.s.deps.dnsResolver, net, ep, sandboxKey, others });
  }

  /** The record says the endpoint left: if knit dies before DeleteEndpoint, dockerd forgets it, and the sweep then does too. */
  async leave(networkId: string, endpointId: string): Promise<void> {
    await this.s.onEndpoint(networkId, endpointId, async () => {
      const ep = await this.s.endpoint(networkId, endpointId);
      if (!ep || ep.sandboxKey === undefined) return;
      const { sandboxKey: _, ...left } = ep;
      await this.s.save(keys.endpoint(networkId, endpointId), { ...left, leftAt: new Date().toISOString() });
    });
  }

  /**
   * dockerd released `address` through IPAM. Every path of dockerd's releases an address after it is done with the
   * endpoint (after DeleteEndpoint, or after a CreateEndpoint that failed), so an endpoint still holding it that no
   * container joined is one dockerd gave up on (a crash lost the CreateEndpoint reply or the DeleteEndpoint): it
   * goes now, or the address could be handed out again while its veth and overlay entry still announce it. A joined
   * endpoint keeps running: dockerd 29+ releases a live endpoint's IPv6 address when a sysctl took it off the
   * interface (built-in drivers are told, remote ones are not), so its record, published ports and overlay entries
   * drop that address. A release after DeleteEndpoint (every other case) finds no endpoint. `subnet`: the pool's;
   * only networks on it that use knit's IPAM are looked at.
   */
  async addressReleased(subnet: string, address: string): Promise<void> {
    const nets = new Set((await this.s.networks()).filter((n) => n.knitIpam && [...n.ipv4, ...n.ipv6].some((c) => c.subnet === subnet)).map((n) => n.id));
    const holds = (e: EndpointRecord | undefined) => [e?.address, e?.addressV6].some((a) => a?.split('/')[0] === address);
    for (const found of (await this.s.endpoints()).filter((e) => nets.has(e.networkId) && holds(e))) {
      if (found.sandboxKey === undefined) {
        const gone = await this.delete(found.networkId, found.id, (ep) => ep.sandboxKey === undefined && holds(ep));
        if (gone) this.s.deps.log.info('endpoint dropped: dockerd released its address without deleting it', { network: short(found.networkId), endpoint: short(found.id), address });
      } else if (address.includes(':')) {
        await this.dropV6(found, address);
      } else {
        this.s.deps.log.warn('dockerd released the IPv4 address of a joined endpoint: kept until the endpoint goes', { network: short(found.networkId), endpoint: short(found.id), address });
      }
    }
  }

  private async dropV6(found: EndpointRecord, address: string): Promise<void> {
    await this.s.onEndpoint(found.networkId, found.id, async () => {
      const ep = await this.s.endpoint(found.networkId, found.id);
      const net = await this.s.network(found.networkId);
      if (!ep || !net || ep.addressV6?.split('/')[0] !== address) return;
      const { addressV6: _dropped, ...kept } = ep;
      const overlay = net.mode === 'overlay' ? this.s.deps.overlay : undefined;
      await overlay?.unpublish(net, ep);
      await this.s.save(keys.endpoint(net.id, ep.id), kept);
      await overlay?.publish(net, kept);
      if (ep.ports.length) await this.s.locks.run(PORTS, async () => this.s.deps.firewall.syncNetwork(net, await this.s.endpoints(net.id)));
      this.s.deps.log.warn('IPv6 address released by dockerd while the endpoint lives: dropped from it', { network: short(net.id), endpoint: short(ep.id), address });
    });
  }

  async info(networkId: string, endpointId: string): Promise<Record<string, unknown>> {
    const ep = await this.s.endpoint(networkId, endpointId);
    if (!ep) return {};
    return { hostInterface: ep.hostIf, mac: ep.mac, address: ep.address, addressV6: ep.addressV6, ports: ep.ports };
  }
}

function checkAddress(net: NetworkRecord, cidr: string | undefined, family: 4 | 6): void {
  if (!cidr) return;
  const { ip } = parseAddrCidr(cidr, family === 4 ? 'Interface.Address' : 'Interface.AddressIPv6');
  const subnets = family === 4 ? net.ipv4 : net.ipv6;
  const inside = subnets.some((s) => {
    const sub = parseAddrCidr(s.subnet).cidr;
    return sub.family === family && contains(sub, ip);
  });
  if (!inside) throw conflict(`address ${cidr} is not in any IPv${family} subnet of network ${short(net.id)}`);
}
