// Published ports (ProgramExternalConnectivity / RevokeExternalConnectivity): assigned, saved, then firewalled.
import { badRequest } from '../../errors.js';
import { short } from '../../log.js';
import { isMacvlan } from '../macvlan/plan.js';
import { assignPorts, parsePortMap } from '../ports.js';
import { type EndpointRecord, keys, type PortMapping } from '../records.js';
import { flowsOf, PORTS, type DriverState } from './state.js';

export class External {
  constructor(private readonly s: DriverState) {}

  async program(req: { networkId: string; endpointId: string; options: Record<string, unknown> }): Promise<void> {
    await this.s.onEndpoint(req.networkId, req.endpointId, () =>
      this.s.locks.run(PORTS, async () => {
        const net = await this.s.requireNetwork(req.networkId);
        const ep = await this.s.requireEndpoint(req.networkId, req.endpointId);
        const reqs = parsePortMap(req.options['com.docker.network.portmap'], net.hostBindingIpv4 ?? '0.0.0.0');
        if (isMacvlan(net) && reqs.length) {
          // A container already on another knit network (its sandbox has another endpoint), connected to this one:
          // dockerd sends its ports to whichever network now gives its default route. Refusing would fail the
          // connect, and dockerd's undo leaves this macvlan link in the running container, where its MAC (made
          // from the address) stops the address's next container from bringing its own link up.
          const shared = ep.sandboxKey !== undefined && (await this.s.endpoints()).some((e) => e.id !== ep.id && e.sandboxKey === ep.sandboxKey);
          if (!shared) throw badRequest('macvlan networks have no published ports: each container has its own address on the LAN; leave out -p and reach it there');
          this.s.deps.log.warn('published ports are not applied on a macvlan network: the container connected to it publishes none through it', { network: short(net.id), endpoint: short(ep.id) });
          return;
        }
        if (net.internal || (reqs.length === 0 && ep.ports.length === 0)) return;
        const all = await this.s.endpoints();
        const taken = all.filter((e) => e.id !== ep.id).flatMap((e) => e.ports);
        const bound = await this.s.deps.boundPorts();
        const next: EndpointRecord = { ...ep, ports: assignPorts(reqs, taken, (proto, p) => bound[proto as PortMapping['proto']].has(p)) };
        await this.s.save(keys.endpoint(net.id, ep.id), next);
        try {
          await this.s.deps.firewall.syncNetwork(net, all.map((e) => (e.id === ep.id ? next : e)).filter((e) => e.networkId === net.id));
        } catch (err) {
          await this.s.save(keys.endpoint(net.id, ep.id), ep);
          throw err;
        }
        await this.s.deps.kernel.flushConntrack(flowsOf([...ep.ports, ...next.ports]));
        const ports = next.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`);
        this.s.deps.log.info('ports published', { network: short(net.id), endpoint: short(ep.id), ports });
      }),
    );
  }

  async revoke(networkId: string, endpointId: string): Promise<void> {
    await this.s.onEndpoint(networkId, endpointId, () => this.s.locks.run(PORTS, async () => {
      const ep = await this.s.endpoint(networkId, endpointId);
      if (!ep || ep.ports.length === 0) return;
      await this.s.save(keys.endpoint(networkId, endpointId), { ...ep, ports: [] });
      const net = await this.s.network(networkId);
      if (net) await this.s.deps.firewall.syncNetwork(net, await this.s.endpoints(networkId));
      await this.s.deps.kernel.flushConntrack(flowsOf(ep.ports));
      this.s.deps.log.info('ports unpublished', { network: short(networkId), endpoint: short(endpointId) });
    }));
  }
}
