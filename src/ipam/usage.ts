// How full knit's pools are, per pool: addresses taken (with a record in the cluster store, and those this host
// handed out from its blocks), blocks claimed, and what is held in quarantine for hosts whose lease lapsed. Read
// from the stores on demand (metrics), never cached: the stores are the truth.
import { decode } from '../store/records.js';
import type { Entry, Store } from '../store/types.js';
import { keys, type PoolRecord } from './records.js';

export interface PoolUsage {
  subnet: string;
  /** Whether this host is among the pool's holders. */
  held: boolean;
  /**
   * Addresses taken: every host's records in the cluster store (gateways, static addresses, pools too small for
   * blocks) plus those this host handed out from its blocks. Other hosts' block addresses are in their own
   * stores: their blocks are counted instead.
   */
  inUse: number;
  /** Of those, this host's. */
  mine: number;
  /** Address records of quarantined hosts (not handed out again until they return or are reclaimed). */
  quarantined: number;
  /** Blocks of the pool claimed by every host, by this host, and by quarantined hosts. */
  blocks: number;
  blocksMine: number;
  blocksQuarantined: number;
}

export interface IpamUsage {
  pools: PoolUsage[];
  quarantinedHosts: number;
}

/** The subnet key of `ipam/<kind>/<subnet key>/<rest>`. */
const subnetKeyOf = (key: string) => key.split('/')[2] ?? '';

/** Pure: pool, address, block and quarantine records and this host's ledger in, per-pool counts out. */
export function summarizeUsage(a: { hostId: string; pools: Entry[]; addrs: Entry[]; lost: Entry[]; blocks?: Entry[]; ledger?: Entry[] }): IpamUsage {
  const lost = new Set(a.lost.map((e) => e.key.slice(keys.lostPrefix.length)));
  const bySubnetKey = new Map<string, PoolUsage>();
  for (const e of a.pools) {
    const record = decode<PoolRecord>(e);
    bySubnetKey.set(e.key.slice(keys.pools.length), {
      subnet: record.subnet, held: record.hosts.includes(a.hostId), inUse: 0, mine: 0, quarantined: 0, blocks: 0, blocksMine: 0, blocksQuarantined: 0,
    });
  }
  /** Each record counted into its pool's figures, with the host it names (records of unknown pools left out). */
  const count = (entries: Entry[] | undefined, bump: (pool: PoolUsage, host: string) => void, hostOf = (e: Entry) => decode<{ host: string }>(e).host) => {
    for (const e of entries ?? []) {
      const pool = bySubnetKey.get(subnetKeyOf(e.key));
      if (pool) bump(pool, hostOf(e));
    }
  };
  count(a.addrs, (pool, host) => {
    pool.inUse++;
    if (host === a.hostId) pool.mine++;
    if (lost.has(host)) pool.quarantined++;
  });
  count(a.blocks, (pool, host) => {
    pool.blocks++;
    if (host === a.hostId) pool.blocksMine++;
    if (lost.has(host)) pool.blocksQuarantined++;
  });
  // This host's ledger: addresses it handed out from its blocks.
  count(a.ledger, (pool) => {
    pool.inUse++;
    pool.mine++;
  }, () => a.hostId);
  return { pools: [...bySubnetKey.values()], quarantinedHosts: lost.size };
}

/** Four reads of the cluster store (pools, addresses, blocks, quarantine markers) and one of this host's ledger. */
export async function readUsage(store: Store, hostId: string, local?: Store): Promise<IpamUsage> {
  const [pools, addrs, blocks, lost, ledger] = await Promise.all([
    store.list(keys.pools), store.list('ipam/addrs/'), store.list('ipam/blocks/'), store.list(keys.lostPrefix),
    local && local !== store ? local.list(keys.ledgerPrefix) : Promise.resolve([]),
  ]);
  return summarizeUsage({ hostId, pools, addrs, blocks, lost, ledger });
}
