// Every kernel change knit makes, as a value. Planners return lists of these; kernel.ts applies them.

/** Links knit creates carry an alias "knit:<role>:<id12>" so restarts can find what knit owns. */
export type LinkRole = 'net' | 'ep' | 'vx';

/** Docker's macvlan_mode values, which are the kernel's own mode names. */
export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';

/** `up` on a creating op brings the link up in the same command, saving a separate link-up. */
export type LinkOp =
  | { op: 'bridge-add'; name: string; mtu: number; alias: string; mac?: string; up?: boolean }
  | { op: 'vxlan-add'; name: string; vni: number; local: string; port: number; mtu: number; alias: string; master: string; up?: boolean }
  /** A veth pair: `name` stays on the host (attached to `master`), `peer` goes to the container. */
  | { op: 'veth-add'; name: string; peer: string; mtu: number; master: string; alias: string; peerMac?: string; up?: boolean }
  /** A macvlan child of `link` (a container's interface, or the host leg of a macvlan network). */
  | { op: 'macvlan-add'; name: string; link: string; mode: MacvlanMode; mtu: number; alias: string; mac?: string; up?: boolean }
  /** An 802.1q sub-interface `name` of `link` (a macvlan parent named IF.VID that did not exist). */
  | { op: 'vlan-add'; name: string; link: string; vid: number; up?: boolean }
  /** A host route for one address (`dst` is a /32 or /128) through `dev`. */
  | { op: 'route-add'; dst: string; dev: string; src?: string }
  | { op: 'route-del'; dst: string; dev: string }
  /** `label` (IPv4 only, "<dev>:<word>") marks an address knit put on a link it does not own, such as lo. */
  | { op: 'addr-add'; dev: string; cidr: string; label?: string }
  | { op: 'addr-del'; dev: string; cidr: string }
  | { op: 'link-master'; name: string; master: string }
  | { op: 'link-up'; name: string }
  | { op: 'link-mtu'; name: string; mtu: number }
  | { op: 'link-del'; name: string };

export type FdbOp =
  | { op: 'fdb-add'; dev: string; mac: string; dst: string }
  | { op: 'fdb-del'; dev: string; mac: string; dst: string };

export type NeighOp =
  | { op: 'neigh-add'; dev: string; ip: string; mac: string }
  | { op: 'neigh-del'; dev: string; ip: string };

export type Op = LinkOp | FdbOp | NeighOp;

/** What the kernel holds of a link knit cares about (from `ip -j -d link show`). */
export interface LinkState {
  name: string;
  kind: string; // 'bridge', 'veth', 'vxlan', ...
  alias?: string;
  master?: string;
  mtu: number;
  up: boolean;
  mac?: string;
  addrs: string[]; // CIDRs, global scope only
}
