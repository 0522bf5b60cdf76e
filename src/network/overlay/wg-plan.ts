// Pure: encrypted overlays' WireGuard parts. Where the records live, the peers a device must hold for the records
// the other hosts publish (hostile or stale ones left out), the diff against the device, the choice of a tunnel
// address, and the fail-closed firewall chains.
import type { Chain, Jump } from '../../datapath/firewall.js';
import { validateEndpoint, validateWgKey, type WgPeerSpec, type WgPeerState } from '../../datapath/wireguard.js';
import { badRequest } from '../../errors.js';
import { type Cidr, contains, formatIp, parseCidr, parseIp, usableBounds } from '../../addr/cidr.js';

/**
 * `wireguard/hosts/<id>` lives under the host's lease (its peer goes with it); `wireguard/addresses/<ip>` names the
 * host a tunnel address belongs to and stays until that host is reclaimed as lost, so a restart keeps its address.
 */
export const WG = {
  hosts: 'wireguard/hosts/',
  host: (id: string) => `wireguard/hosts/${id}`,
  addresses: 'wireguard/addresses/',
  address: (ip: string) => `wireguard/addresses/${ip}`,
};

/**
 * Encrypted segments' VXLAN uses its own UDP port, only ever between tunnel addresses: the kernel looks VNIs up per
 * port, so plain VXLAN sent to 4789 for an encrypted VNI finds no device, and the firewall drops this port on every
 * interface but the tunnel.
 */
export const ENCRYPTED_VXLAN_PORT = 4790;
/** WireGuard's outer headers over an IPv4 underlay: IP 20 + UDP 8 + WireGuard 32; 80 over IPv6. */
export const WG_OVERHEAD = { 4: 60, 6: 80 } as const;

/** One device per host; its name carries the host ID because wireguard-go's control sockets are shared machine-wide. */
export const wgDeviceName = (hostId: string): string => `kwg${hostId.slice(0, 12)}`;

/** What a host publishes: its public key, where its WireGuard listens, its tunnel address; `next` while it rotates. */
export interface WgRecord {
  publicKey: string;
  endpoint: string;
  address: string;
  next?: string;
}

/** A record as read from the store, with its host and revision (the oldest wins a duplicated key). */
export interface PublishedWg {
  host: string;
  record: WgRecord;
  revision: number;
}

/** A record's value checked field by field; undefined for anything malformed (it is then ignored). */
export function parseWgRecord(value: string | undefined, subnet: Cidr): WgRecord | undefined {
  try {
    const r = JSON.parse(value ?? '') as Partial<WgRecord>;
    const address = parseIp(String(r.address));
    if (address.family !== subnet.family || !contains(subnet, address.value)) return undefined;
    const out: WgRecord = { publicKey: validateWgKey(r.publicKey), endpoint: validateEndpoint(r.endpoint), address: formatIp(address.family, address.value) };
    if (r.next !== undefined) out.next = validateWgKey(r.next);
    return out;
  } catch {
    return undefined;
  }
}

export interface WantedPeer {
  endpoint: string;
  allowedIps: string[];
}

/**
 * The peers the device must hold. A record counts only if its tunnel address is claimed by its host; a public key
 * is used once (the oldest record keeps it; this host's own key is never a peer). A rotating host's `next` key is
 * a peer with no addresses, so its first handshake with the new key is accepted before the addresses move to it.
 */
export function desiredPeers(a: { published: PublishedWg[]; claims: Map<string, string>; ownKey: string }): Map<string, WantedPeer> {
  const out = new Map<string, WantedPeer>([[a.ownKey, { endpoint: '', allowedIps: [] }]]);
  for (const { host, record } of [...a.published].sort((x, y) => x.revision - y.revision)) {
    if (a.claims.get(record.address) !== host || out.has(record.publicKey)) continue;
    out.set(record.publicKey, { endpoint: record.endpoint, allowedIps: [`${record.address}/32`] });
    if (record.next && !out.has(record.next)) out.set(record.next, { endpoint: record.endpoint, allowedIps: [] });
  }
  out.delete(a.ownKey);
  return out;
}

/** One `wg set` worth of changes: peers that should not be there removed, the others (re)set where they differ. */
export function diffPeers(current: WgPeerState[], desired: Map<string, WantedPeer>): WgPeerSpec[] {
  const removals: WgPeerSpec[] = current.filter((p) => !desired.has(p.publicKey)).map((p) => ({ publicKey: p.publicKey, remove: true }));
  const byKey = new Map(current.map((p) => [p.publicKey, p]));
  const sets: WgPeerSpec[] = [];
  for (const [publicKey, want] of desired) {
    const have = byKey.get(publicKey);
    const same = have && have.endpoint === want.endpoint && [...have.allowedIps].sort().join(',') === [...want.allowedIps].sort().join(',');
    if (!same) sets.push({ publicKey, endpoint: want.endpoint, allowedIps: want.allowedIps });
  }
  return [...removals, ...sets];
}

/** The lowest usable address of the tunnel subnet that no host has claimed. */
export function chooseAddress(subnet: Cidr, taken: Set<string>): string {
  const { first, last } = usableBounds(subnet);
  for (let v = first; v <= last; v++) {
    const ip = formatIp(subnet.family, v);
    if (!taken.has(ip)) return ip;
  }
  throw badRequest(`every WireGuard tunnel address in ${formatIp(subnet.family, subnet.base)}/${subnet.prefix} is taken; set a larger KNIT_WG_SUBNET on every host`);
}

export const WG_CHAINS = { pre: 'KNIT-WG-PRE', forward: 'KNIT-WG-FWD', post: 'KNIT-WG-POST' };

export const wgJumps: Jump[] = [
  { table: 'raw', from: 'PREROUTING', to: WG_CHAINS.pre },
  { table: 'mangle', from: 'FORWARD', to: WG_CHAINS.forward },
  { table: 'mangle', from: 'POSTROUTING', to: WG_CHAINS.post },
];

/**
 * Fail closed. In: the tunnel carries only encrypted VXLAN, and that port is dropped from anywhere else. Through:
 * nothing is routed into or out of the tunnel (a container must not reach the peers' VXLAN sockets). Out: encrypted
 * VXLAN and anything from or to a tunnel address leaves only through the tunnel; with the device gone it drops.
 */
export function wgChains(dev: string, subnet: string): Chain[] {
  parseCidr(subnet, 'KNIT_WG_SUBNET');
  const vxlan = { proto: 'udp' as const, dport: ENCRYPTED_VXLAN_PORT };
  return [
    { table: 'raw', name: WG_CHAINS.pre, rules: [{ in: dev, ...vxlan, target: 'RETURN' }, { in: dev, target: 'DROP' }, { ...vxlan, target: 'DROP' }] },
    { table: 'mangle', name: WG_CHAINS.forward, rules: [{ in: dev, target: 'DROP' }, { out: dev, target: 'DROP' }] },
    {
      table: 'mangle',
      name: WG_CHAINS.post,
      rules: [{ ...vxlan, notOut: dev, target: 'DROP' }, { src: subnet, notOut: dev, target: 'DROP' }, { dst: subnet, notOut: dev, target: 'DROP' }],
    },
  ];
}
