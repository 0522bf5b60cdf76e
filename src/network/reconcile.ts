// Pure: compares the records with what the kernel holds and plans the repairs, with a report.
import type { LinkOp, LinkState, Op } from '../datapath/ops.js';
import { isMacvlan } from './macvlan/plan.js';
import { planMacvlanReconcile } from './macvlan/reconcile.js';
import { planEndpoint, planNetwork } from './plan.js';
import type { EndpointRecord, NetworkRecord } from './records.js';

export interface Repair {
  /** Human-readable: what was wrong. */
  finding: string;
  ops: Op[];
}

export interface ReconcilePlan {
  repairs: Repair[];
  /** Links knit made that no record owns any more. */
  orphans: LinkOp[];
  findings: string[];
  /** 802.1q sub-interfaces knit made that no network uses: removed, and so is their record. */
  unusedParents: string[];
}

const ALIAS = /^knit:(net|ep|vx):([0-9a-f]{12})$/;

export function planReconcile(a: { nets: NetworkRecord[]; eps: EndpointRecord[]; links: LinkState[]; made?: string[] }): ReconcilePlan {
  const byName = new Map(a.links.map((l) => [l.name, l]));
  const macvlan = planMacvlanReconcile({ ...a, made: a.made ?? [] });
  const repairs: Repair[] = [...macvlan.repairs];
  const findings: string[] = [...macvlan.findings];
  for (const net of a.nets.filter((n) => !isMacvlan(n))) {
    const br = byName.get(net.bridge);
    if (!br) {
      repairs.push({ finding: `bridge ${net.bridge} of network ${net.id.slice(0, 12)} was missing`, ops: planNetwork(net) });
      continue;
    }
    const ops: LinkOp[] = [];
    for (const s of [...net.ipv4, ...net.ipv6]) {
      if (s.gateway && !br.addrs.includes(s.gateway)) ops.push({ op: 'addr-add', dev: net.bridge, cidr: s.gateway });
    }
    if (!br.up) ops.push({ op: 'link-up', name: net.bridge });
    if (ops.length) repairs.push({ finding: `bridge ${net.bridge} lacked its gateway address or was down`, ops });
  }
  const netById = new Map(a.nets.map((n) => [n.id, n]));
  for (const ep of a.eps) {
    const net = netById.get(ep.networkId);
    const link = byName.get(ep.hostIf);
    if (!net) {
      findings.push(`endpoint ${ep.id.slice(0, 12)} belongs to no known network`);
    } else if (isMacvlan(net)) {
      continue;
    } else if (!link && !ep.sandboxKey) {
      repairs.push({ finding: `veth ${ep.hostIf} of endpoint ${ep.id.slice(0, 12)} was missing`, ops: planEndpoint(net, ep) });
    } else if (!link) {
      findings.push(`veth ${ep.hostIf} of joined endpoint ${ep.id.slice(0, 12)} is gone (its container's namespace went away)`);
    } else if (link.master !== net.bridge || !link.up) {
      repairs.push({
        finding: `veth ${ep.hostIf} was not attached to ${net.bridge} or was down`,
        ops: [{ op: 'link-master', name: ep.hostIf, master: net.bridge }, { op: 'link-up', name: ep.hostIf }],
      });
    }
  }
  const owned = new Set([...a.nets.map((n) => `net:${n.id.slice(0, 12)}`), ...a.eps.map((e) => `ep:${e.id.slice(0, 12)}`)]);
  const orphans: LinkOp[] = [];
  for (const l of a.links) {
    const m = l.alias ? ALIAS.exec(l.alias) : null;
    // A VXLAN device belongs to its network.
    if (!m || owned.has(`${m[1] === 'vx' ? 'net' : m[1]}:${m[2]}`)) continue;
    // A veth peer carries no alias of its own; deleting the host end removes both.
    orphans.push({ op: 'link-del', name: l.name });
    findings.push(`link ${l.name} (${l.alias}) has no record`);
  }
  return { repairs, orphans, findings: [...repairs.map((r) => r.finding), ...findings], unusedParents: macvlan.unused };
}
