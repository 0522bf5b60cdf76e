// Pure checks of a ClusterView: what must hold on every host after any fault. Each returns its failures (none: it holds).
import { contains, parseCidr, parseIp } from '../../../src/addr/cidr.js';
import type { ClusterView } from './view.js';

const ip = (cidr?: string): string => (cidr ?? '').split('/')[0];
const id12 = (id: string): string => id.slice(0, 12);

/**
 * knit endpoints dockerd does not have, not joined, made or left less than `graceMs` ago: what a crash inside
 * CreateEndpoint (or between Leave and DeleteEndpoint) leaves; knit's sweep removes them once older.
 * Keyed "host endpoint-id".
 */
export function abandonedInGrace(v: ClusterView, graceMs: number): Set<string> {
  const out = new Set<string>();
  for (const h of v.hosts) {
    const docker = new Set(h.docker.map((e) => e.endpointId));
    for (const e of h.endpoints) {
      if (!docker.has(e.id) && !e.sandboxKey && v.at - Date.parse(e.leftAt ?? e.createdAt) < graceMs) out.add(`${h.name} ${e.id}`);
    }
  }
  return out;
}

/**
 * dockerd's endpoints on knit networks and knit's endpoint records are the same set, with the same addresses;
 * `tolerated` (from abandonedInGrace) are not counted as stale.
 */
export function endpointsMatch(v: ClusterView, tolerated: Set<string> = new Set()): string[] {
  const out: string[] = [];
  for (const h of v.hosts) {
    const knit = new Map(h.endpoints.map((e) => [e.id, e]));
    const docker = new Map(h.docker.map((e) => [e.endpointId, e]));
    for (const d of h.docker) {
      const k = knit.get(d.endpointId);
      if (!k) out.push(`${h.name}: docker endpoint ${id12(d.endpointId)} (${d.container} on ${d.network}, ${d.ip}) has no knit record`);
      else if (ip(k.address) !== d.ip) out.push(`${h.name}: endpoint ${id12(d.endpointId)} is ${d.ip} in docker but ${k.address} in knit`);
    }
    for (const k of h.endpoints) {
      if (!docker.has(k.id) && !tolerated.has(`${h.name} ${k.id}`)) out.push(`${h.name}: knit endpoint ${id12(k.id)} (${k.address}) has no docker endpoint (stale)`);
    }
  }
  return out;
}

/** No address is used twice in one subnet, anywhere in the cluster (by docker's account and by knit's). */
export function uniqueAddresses(v: ClusterView): string[] {
  const out: string[] = [];
  const seen = new Map<string, string>();
  const claim = (key: string, who: string) => {
    const prev = seen.get(key);
    if (prev && prev !== who) out.push(`${key} is used by ${prev} and by ${who}`);
    seen.set(key, who);
  };
  for (const h of v.hosts) {
    // Subnets from knit's records: dockerd leaves them out for networks whose IPAM driver chose them.
    const netSubnet = new Map(h.networks.map((n) => [n.id, n.ipv4[0]?.subnet]));
    for (const d of h.docker) claim(`${netSubnet.get(d.networkId) ?? d.networkId} ${d.ip}`, `${h.name}/${id12(d.endpointId)}`);
    for (const e of h.endpoints) if (e.address) claim(`${netSubnet.get(e.networkId)} ${ip(e.address)}`, `${h.name}/${id12(e.id)}`);
  }
  // Nor is a host's own address (a macvlan network shares the hosts' LAN).
  const hostIps = new Map(v.hosts.filter((h) => h.underlayIp).map((h) => [h.underlayIp, h.name]));
  for (const h of v.hosts) {
    for (const d of h.docker) if (hostIps.has(d.ip)) out.push(`${d.ip} of ${h.name}/${d.container} is the own address of host ${hostIps.get(d.ip)}`);
  }
  return out;
}

export interface IpamResult {
  failures: string[];
  /** Addresses held with no endpoint that are still inside knit's grace period (too young for the leak sweep). */
  inGrace: Array<{ host: string; address: string; at: string }>;
}

/**
 * Every address a host's endpoints use is held by that host (none missing), and every address a host holds is
 * used by one of its endpoints or is a gateway or aux address (none leaked); with `graceMs`, an unused address
 * younger than that is reported in `inGrace` instead of as a leak. Pools are held exactly by the hosts whose
 * networks use them.
 */
export function ipamMatches(v: ClusterView, graceMs?: number, tolerated: Set<string> = new Set()): IpamResult {
  const failures: string[] = [];
  const inGrace: IpamResult['inGrace'] = [];
  const byId = new Map(v.hosts.map((h) => [h.hostId, h]));
  for (const a of v.addresses) if (!byId.has(a.host)) failures.push(`${a.subnet} ${a.ip} is held by unknown host ${a.host}`);
  for (const h of v.hosts) {
    const held = new Map(v.addresses.filter((a) => a.host === h.hostId).map((a) => [`${a.subnet} ${a.ip}`, a]));
    const used = new Set<string>();
    const subnets = new Map(h.networks.map((n) => [n.id, n.ipv4[0]?.subnet]));
    // An abandoned endpoint's address was released by dockerd: it may be missing (or held again by a newer endpoint).
    const abandoned = new Set<string>();
    for (const e of h.endpoints) {
      if (!e.address) continue;
      const key = `${subnets.get(e.networkId)} ${ip(e.address)}`;
      used.add(key);
      if (tolerated.has(`${h.name} ${e.id}`)) abandoned.add(key);
    }
    for (const n of h.networks) for (const s of n.ipv4) for (const a of Object.values(s.aux ?? {})) used.add(`${s.subnet} ${a}`);
    for (const key of used) if (!held.has(key) && !abandoned.has(key)) failures.push(`${h.name}: ${key} is used by an endpoint but not held in IPAM (missing)`);
    for (const [key, a] of held) {
      if (a.kind === 'gateway' || used.has(key)) continue;
      if (graceMs !== undefined && v.at - Date.parse(a.at) < graceMs) inGrace.push({ host: h.name, address: key, at: a.at });
      else failures.push(`${h.name}: ${key} (${a.kind}, since ${a.at}) is held but no endpoint uses it (leaked)`);
    }
    const mine = h.networks.filter((n) => n.knitIpam).map((n) => n.ipv4[0]?.subnet);
    for (const s of mine) if (!v.pools.some((p) => p.subnet === s && p.hosts.includes(h.hostId))) failures.push(`${h.name}: network on ${s} but its pool is not held by this host`);
    for (const p of v.pools) if (p.hosts.includes(h.hostId) && !mine.includes(p.subnet)) failures.push(`${h.name}: holds pool ${p.subnet} but has no network on it (leaked pool)`);
  }
  for (const a of v.addresses) if (!v.pools.some((p) => p.subnet === a.subnet)) failures.push(`${a.subnet} ${a.ip}: address record of a pool that does not exist`);
  return { failures, inGrace };
}

/**
 * Blocks: each lies in an existing pool and is held by a known host; every address a host handed out from a
 * block (its ledger) lies in a block that host holds; no address is in IPAM's books twice (ledger or record).
 */
export function blocksHold(v: ClusterView): string[] {
  const out: string[] = [];
  const hosts = new Set(v.hosts.map((h) => h.hostId));
  for (const b of v.blocks) {
    if (!hosts.has(b.host)) out.push(`block ${b.block} is held by unknown host ${b.host}`);
    if (!v.pools.some((p) => p.subnet === b.subnet)) out.push(`block ${b.block}: a block of a pool that does not exist`);
  }
  const seen = new Map<string, string>();
  for (const a of v.addresses) {
    const key = `${a.subnet} ${a.ip}`;
    const who = `${a.host}${a.ledger ? ' (ledger)' : ` (${a.kind} record)`}`;
    if (seen.has(key)) out.push(`${key} is held by ${seen.get(key)} and by ${who}`);
    seen.set(key, who);
    if (!a.ledger) continue;
    const ip = parseIp(a.ip).value;
    const block = v.blocks.find((b) => b.subnet === a.subnet && contains(parseCidr(b.block), ip));
    if (block?.host !== a.host) out.push(`${key} is in the ledger of ${a.host} but its block is ${block ? `held by ${block.host}` : 'held by nobody'}`);
  }
  return out;
}

/** knit's links (kn-*, knh*, knc*, knv*) are exactly those its records call for. */
export function linksMatch(v: ClusterView): string[] {
  const out: string[] = [];
  for (const h of v.hosts) {
    const want = new Map<string, string>();
    for (const n of h.networks) {
      // A macvlan network has a link on the host only with its host leg, named as a bridge would be.
      if (!n.macvlan || n.macvlan.hostLeg) want.set(n.bridge, `${n.macvlan ? 'host leg' : 'bridge'} of ${id12(n.id)}`);
      if (n.mode === 'overlay' && n.vni) want.set(`knv${n.vni}`, `VXLAN of ${id12(n.id)}`);
    }
    const peers = new Set<string>();
    for (const e of h.endpoints) {
      // A macvlan endpoint has one link (hostIf = peerIf), which is in its container once joined.
      if (e.hostIf !== e.peerIf || !e.sandboxKey) want.set(e.hostIf, `${e.hostIf === e.peerIf ? 'macvlan' : 'veth'} of ${id12(e.id)}`);
      // The container end lives in the container once joined; before that it is in the host.
      if (!e.sandboxKey) want.set(e.peerIf, `veth peer of ${id12(e.id)}`);
      peers.add(e.peerIf);
    }
    const have = new Set(h.links.map((l) => l.name));
    for (const l of h.links) {
      if (/^kn[-hcv]/.test(l.name) && !want.has(l.name) && !peers.has(l.name)) out.push(`${h.name}: orphan link ${l.name} (${l.kind ?? '?'})`);
    }
    for (const [name, what] of want) if (!have.has(name)) out.push(`${h.name}: ${what} (${name}) is missing`);
  }
  return out;
}

/** Each overlay's VXLAN device holds exactly the other hosts' endpoints: FDB (plus one flood entry per host) and neighbours. */
export function overlayEntriesMatch(v: ClusterView): string[] {
  const out: string[] = [];
  for (const h of v.hosts) {
    for (const n of h.networks.filter((x) => x.mode === 'overlay' && x.vni)) {
      const dev = `knv${n.vni}`;
      const fdb = new Set<string>();
      const neigh = new Set<string>();
      for (const other of v.hosts.filter((o) => o !== h)) {
        const net = other.networks.find((x) => x.mode === 'overlay' && x.ipv4[0]?.subnet === n.ipv4[0]?.subnet);
        const eps = other.endpoints.filter((e) => e.networkId === net?.id);
        for (const e of eps) {
          fdb.add(`${e.mac} ${other.underlayIp}`);
          if (e.address) neigh.add(`${ip(e.address)} ${e.mac}`);
        }
        if (eps.length) fdb.add(`00:00:00:00:00:00 ${other.underlayIp}`);
      }
      out.push(...setDiff(`${h.name} ${dev} fdb`, h.fdb.get(dev) ?? new Set(), fdb), ...setDiff(`${h.name} ${dev} neighbour`, h.neigh.get(dev) ?? new Set(), neigh));
    }
    for (const dev of [...h.fdb.keys(), ...h.neigh.keys()]) {
      if (dev.startsWith('knv') && !h.networks.some((n) => `knv${n.vni}` === dev)) out.push(`${h.name}: entries on ${dev}, which no network has`);
    }
  }
  return out;
}

/** knit's iptables chains and rules are those of the networks and published ports it has records of. */
export function firewallMatches(v: ClusterView): string[] {
  const out: string[] = [];
  for (const h of v.hosts) {
    const lines = h.iptables.split('\n');
    const chains = new Set(lines.map((l) => /^:KNIT-(?:IN|OUT)-([0-9a-f]{12}) /.exec(l)?.[1]).filter((x): x is string => !!x));
    // Macvlan networks have no chains: their traffic does not pass the host's netfilter.
    const nets = new Set(h.networks.filter((n) => !n.macvlan).map((n) => id12(n.id)));
    out.push(...setDiff(`${h.name} per-network chains`, chains, nets));
    const bridges = new Set(h.networks.map((n) => n.bridge));
    for (const l of lines.filter((x) => x.startsWith('-A KNIT-FORWARD'))) {
      const br = /-[io] (\S+)/.exec(l)?.[1];
      if (br && !bridges.has(br)) out.push(`${h.name}: stale rule ${l}`);
    }
    const subnets = new Set(h.networks.flatMap((n) => n.ipv4.map((s) => s.subnet)));
    for (const l of lines.filter((x) => x.startsWith('-A KNIT-POSTROUTING'))) {
      const s = /-s (\S+)/.exec(l)?.[1];
      if (s && !subnets.has(s)) out.push(`${h.name}: stale rule ${l}`);
    }
    const dnat = new Set(lines.filter((x) => x.startsWith('-A KNIT-DNAT')).map((l) => `${/--dport (\d+)/.exec(l)?.[1]} ${/--to-destination (\S+)/.exec(l)?.[1]}`));
    const ports = new Set(h.endpoints.flatMap((e) => e.ports.map((p) => `${p.hostPort} ${ip(e.address)}:${p.containerPort}`)));
    out.push(...setDiff(`${h.name} DNAT rules`, dnat, ports));
  }
  return out;
}

function setDiff(what: string, have: Set<string>, want: Set<string>): string[] {
  const out: string[] = [];
  for (const x of have) if (!want.has(x)) out.push(`${what}: unexpected ${x}`);
  for (const x of want) if (!have.has(x)) out.push(`${what}: missing ${x}`);
  return out;
}
