// Pure: what an overlay's VXLAN device must hold for the remote endpoints the store lists, and the diff.
import type { FdbOp, NeighOp } from '../../datapath/ops.js';
import type { VxlanEntries } from '../../datapath/parse.js';
import { ZERO_MAC } from '../../datapath/names.js';
import { badRequest, conflict } from '../../errors.js';

/** An endpoint another host publishes for a segment. */
export interface RemoteEndpoint {
  id: string;
  host: string;
  vtep: string;
  mac: string;
  ip?: string;
  ipv6?: string;
}

/** One overlay segment, the same on every host; the first definition wins. */
export interface SegmentRecord {
  subnet: string;
  vni: number;
  range?: string;
  gateway?: string;
  /** `-o encrypted`: its VXLAN travels only inside WireGuard; every host must agree. */
  encrypted?: boolean;
  /** The hosts that have a network on it; the last to leave removes it. Records written before
   *  hosts were listed lack it and are kept forever. */
  hosts?: string[];
}

/** What a VXLAN device holds: FDB entries "mac dst" and neighbours ip -> mac (the kernel's own reading has this shape). */
export type Entries = VxlanEntries;

export const VXLAN_PORT = 4789;
/** VXLAN over IPv4 adds 50 bytes of headers to every frame. */
export const VXLAN_OVERHEAD = 50;
export const FIRST_VNI = 4096;

/** Remote MACs point at their host; one all-zero (flood) entry per host that has endpoints here. */
export function desiredEntries(remotes: RemoteEndpoint[]): Entries {
  const fdb = new Set<string>();
  const neigh = new Map<string, string>();
  for (const r of remotes) {
    fdb.add(`${r.mac} ${r.vtep}`);
    fdb.add(`${ZERO_MAC} ${r.vtep}`);
    if (r.ip) neigh.set(r.ip, r.mac);
    if (r.ipv6) neigh.set(r.ipv6, r.mac);
  }
  return { fdb, neigh };
}

export function diffEntries(dev: string, current: Entries, desired: Entries): { add: Array<FdbOp | NeighOp>; del: Array<FdbOp | NeighOp> } {
  const add: Array<FdbOp | NeighOp> = [];
  const del: Array<FdbOp | NeighOp> = [];
  const fdbOp = (op: 'fdb-add' | 'fdb-del', entry: string): FdbOp => {
    const [mac, dst] = entry.split(' ');
    return { op, dev, mac, dst };
  };
  for (const e of desired.fdb) if (!current.fdb.has(e)) add.push(fdbOp('fdb-add', e));
  for (const e of current.fdb) if (!desired.fdb.has(e)) del.push(fdbOp('fdb-del', e));
  for (const [ip, mac] of desired.neigh) if (current.neigh.get(ip) !== mac) add.push({ op: 'neigh-add', dev, ip, mac });
  for (const ip of current.neigh.keys()) if (!desired.neigh.has(ip)) del.push({ op: 'neigh-del', dev, ip });
  return { add, del };
}

/** The segment this host's definition joins: checks it against the first one, or makes a new one. */
/** What a host asks of a segment. `range`: its --ip-range, '' for none, undefined when its IPAM is not knit's (unknown). */
export interface SegmentWanted {
  subnet: string;
  vni?: number;
  range?: string;
  gateway?: string;
  encrypted?: boolean;
}

export function mergeSegment(existing: SegmentRecord | undefined, wanted: SegmentWanted): SegmentRecord | undefined {
  if (!existing) return undefined;
  const differs = (what: string, theirs: unknown, ours: unknown) => {
    throw conflict(`overlay ${wanted.subnet} already exists with ${what} ${String(theirs ?? '(none)')}, not ${String(ours ?? '(none)')}; create it with the same settings on every host`);
  };
  if (wanted.vni !== undefined && wanted.vni !== existing.vni) differs('knit.vni', existing.vni, wanted.vni);
  if (wanted.range !== undefined && wanted.range !== (existing.range ?? '')) differs('ip-range', existing.range, wanted.range || undefined);
  if (wanted.gateway && existing.gateway && wanted.gateway !== existing.gateway) differs('gateway', existing.gateway, wanted.gateway);
  // Never silently in clear: a host must not join an encrypted segment without encryption, nor the other way round.
  if ((wanted.encrypted ?? false) !== (existing.encrypted ?? false)) differs('encrypted', existing.encrypted ?? false, wanted.encrypted ?? false);
  return existing;
}

/** The lowest VNI from FIRST_VNI up that no segment uses. */
export function chooseVni(taken: Set<number>): number {
  for (let v = FIRST_VNI; v <= 16_777_215; v++) if (!taken.has(v)) return v;
  throw badRequest('every VXLAN ID is in use');
}
