// Pure: what the kernel lacks of this host's macvlan networks (parents, host legs, unjoined children), planned as repairs.
import type { LinkState, Op } from '../../datapath/ops.js';
import type { EndpointRecord, NetworkRecord } from '../records.js';
import { hostLegEntries, isMacvlan, planMacvlanEndpoint, planMacvlanNetwork } from './plan.js';

export interface MacvlanRepairs {
  repairs: Array<{ finding: string; ops: Op[] }>;
  findings: string[];
  /** Sub-interfaces knit made that no network uses any more. */
  unused: string[];
}

/**
 * Parents (a missing one knit made is made again; one the user made is only reported), host legs with their
 * routes, and children not yet moved into a container. A joined endpoint's link lives in its container.
 */
export function planMacvlanReconcile(a: { nets: NetworkRecord[]; eps: EndpointRecord[]; links: LinkState[]; made: string[] }): MacvlanRepairs {
  const byName = new Map(a.links.map((l) => [l.name, l]));
  const out: MacvlanRepairs = { repairs: [], findings: [], unused: [] };
  const nets = a.nets.filter(isMacvlan);
  for (const net of nets) {
    const { parent, vlan } = net.macvlan;
    const id = net.id.slice(0, 12);
    if (!byName.has(parent) && a.made.includes(parent) && vlan) {
      out.repairs.push({ finding: `802.1q parent ${parent} of macvlan network ${id} was missing`, ops: [{ op: 'vlan-add', name: parent, link: vlan.link, vid: vlan.vid, up: true }] });
    } else if (!byName.has(parent)) {
      out.findings.push(`parent ${parent} of macvlan network ${id} is missing: its containers lost their interfaces; bring it back and restart them`);
    }
    const eps = a.eps.filter((e) => e.networkId === net.id);
    const leg = byName.get(net.bridge);
    if (net.macvlan.hostLeg && !leg) {
      out.repairs.push({ finding: `host leg ${net.bridge} of macvlan network ${id} was missing`, ops: [...planMacvlanNetwork(net), ...eps.flatMap(hostLegEntries)] });
    } else if (net.macvlan.hostLeg && !leg!.up) {
      out.repairs.push({ finding: `host leg ${net.bridge} of macvlan network ${id} was down`, ops: [{ op: 'link-up', name: net.bridge }] });
    }
    for (const ep of eps.filter((e) => !e.sandboxKey && !byName.has(e.hostIf))) {
      out.repairs.push({ finding: `macvlan ${ep.hostIf} of endpoint ${ep.id.slice(0, 12)} was missing`, ops: planMacvlanEndpoint(net, ep) });
    }
  }
  out.unused = a.made.filter((name) => !nets.some((n) => n.macvlan.parent === name));
  out.findings.push(...out.unused.map((name) => `802.1q sub-interface ${name} that knit made is used by no network`));
  return out;
}
