// How full knit's pools are, per pool: addresses taken (by anyone, and by this host) and those held in quarantine
// for hosts whose lease lapsed. Read from the store on demand (metrics), never cached: the store is the truth.
import { decode } from '../store/records.js';
import type { Entry, Store } from '../store/types.js';
import { type AddressRecord, keys, type PoolRecord } from './records.js';

export interface PoolUsage {
  subnet: string;
  /** Whether this host is among the pool's holders. */
  held: boolean;
  /** Address records of the pool, every host's (gateway included). */
  inUse: number;
  /** Of those, this host's. */
  mine: number;
  /** Of those, the records of quarantined hosts (not handed out again until they return or are reclaimed). */
  quarantined: number;
}

export interface IpamUsage {
  pools: PoolUsage[];
  quarantinedHosts: number;
}

/** Pure: pool, address and quarantine records in, per-pool counts out. */
export function summarizeUsage(a: { hostId: string; pools: Entry[]; addrs: Entry[]; lost: Entry[] }): IpamUsage {
  const lost = new Set(a.lost.map((e) => e.key.slice(keys.lostPrefix.length)));
  const bySubnetKey = new Map<string, PoolUsage>();
  for (const e of a.pools) {
    const record = decode<PoolRecord>(e);
    bySubnetKey.set(e.key.slice(keys.pools.length), { subnet: record.subnet, held: record.hosts.includes(a.hostId), inUse: 0, mine: 0, quarantined: 0 });
  }
  for (const e of a.addrs) {
    // ipam/addrs/<subnet key>/<ip>
    const pool = bySubnetKey.get(e.key.split('/')[2] ?? '');
    if (!pool) continue;
    const host = decode<AddressRecord>(e).host;
    pool.inUse++;
    if (host === a.hostId) pool.mine++;
    if (lost.has(host)) pool.quarantined++;
  }
  return { pools: [...bySubnetKey.values()], quarantinedHosts: lost.size };
}

/** Three reads of the store (pools, addresses, quarantine markers). */
export async function readUsage(store: Store, hostId: string): Promise<IpamUsage> {
  const [pools, addrs, lost] = await Promise.all([store.list(keys.pools), store.list('ipam/addrs/'), store.list(keys.lostPrefix)]);
  return summarizeUsage({ hostId, pools, addrs, lost });
}
