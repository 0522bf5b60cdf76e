// Pool lifecycle: create, join and release a subnet's pool record. Each call is one attempt: undefined means a
// compare-and-set lost and the caller re-reads and tries again.
import { type Cidr, containsCidr, type Family, formatCidr, parseCidr, sameCidr, subnetKey } from '../addr/cidr.js';
import { badRequest, conflict } from '../errors.js';
import { decode, encode } from '../store/records.js';
import { blocksHeld, dropLedger } from './block-own.js';
import { forgetHeldSubnet } from './held.js';
import type { HeldPool, Ledger } from './ledger.js';
import { chooseSubnet, isAnySubnet, overlapping, parsePoolId, poolId, type PoolSpec, resized, sameRange } from './pools.js';
import { type AddressRecord, keys, type PoolRecord } from './records.js';

export interface PoolRequest {
  pool?: string;
  subPool?: string;
  v6: boolean;
}

export type PoolAnswer = { poolId: string; pool: string };

export async function requestPoolOnce(l: Ledger, req: PoolRequest): Promise<PoolAnswer | undefined> {
  const family: Family = req.v6 ? 6 : 4;
  const held = await l.pools();
  if (!req.pool) {
    if (req.subPool) throw badRequest('an --ip-range (SubPool) needs a --subnet (Pool)');
    return createDynamicPool(l, family, held);
  }
  const subnet = parseCidr(req.pool, 'subnet');
  if (subnet.family !== family) {
    throw badRequest(`subnet ${req.pool} is IPv${subnet.family} but the request is for an IPv${family} pool`);
  }
  if (isAnySubnet(subnet)) return createSizedPool(l, subnet, req.subPool, held);
  const range = req.subPool ? parseCidr(req.subPool, 'ip-range') : undefined;
  if (range && !containsCidr(subnet, range)) throw badRequest(`ip-range ${req.subPool} is not inside subnet ${req.pool}`);
  const same = held.find((h) => sameCidr(h.subnet, subnet));
  if (same) return joinPool(l, same, range);
  const clash = overlapping(subnet, held.map((h) => h.subnet));
  if (clash) {
    throw conflict(`subnet ${req.pool} overlaps ${formatCidr(clash)}, which knit already holds; choose another --subnet`);
  }
  return createPool(l, subnet, range);
}

/** "0.0.0.0/N" (dockerd 29+): a /N subnet from the default ranges, however KNIT_DEFAULT_POOLS cuts them. */
async function createSizedPool(l: Ledger, any: Cidr, subPool: string | undefined, held: HeldPool[]): Promise<PoolAnswer | undefined> {
  if (subPool) throw badRequest(`an --ip-range (SubPool ${subPool}) needs a given subnet, not ${formatCidr(any)}`);
  const specs = resized(l.deps.defaultPools, any.family, any.prefix);
  if (specs.length === 0) {
    throw badRequest(`no KNIT_DEFAULT_POOLS range can hold a /${any.prefix} IPv${any.family} subnet (asked for ${formatCidr(any)}); ask for another size or give --subnet`);
  }
  return createDynamicPool(l, any.family, held, specs);
}

async function createDynamicPool(l: Ledger, family: Family, held: HeldPool[], defaultPools: PoolSpec[] = l.deps.defaultPools): Promise<PoolAnswer | undefined> {
  const { reservedNetworks } = l.deps;
  const avoid = [...held.map((h) => h.subnet), ...(await reservedNetworks())];
  const subnet = chooseSubnet(defaultPools, family, avoid);
  if (!subnet) {
    const ranges = defaultPools.filter((p) => p.base.family === family).map((p) => `${formatCidr(p.base)}:${p.size}`);
    throw conflict(`no free IPv${family} pool left in KNIT_DEFAULT_POOLS (${ranges.join(', ') || 'none for IPv' + family}); give --subnet or widen KNIT_DEFAULT_POOLS`);
  }
  return createPool(l, subnet);
}

async function createPool(l: Ledger, subnet: Cidr, range?: Cidr): Promise<PoolAnswer | undefined> {
  const record: PoolRecord = { subnet: formatCidr(subnet), family: subnet.family, hosts: [l.hostId] };
  if (range) record.range = formatCidr(range);
  const ok = await l.store.commit([{ key: keys.pool(subnetKey(subnet)), value: encode(record), expect: 0 }]);
  if (ok === null) return undefined;
  l.deps.log.info('pool created', { pool: record.subnet, range: record.range });
  return { poolId: poolId(subnet, range), pool: record.subnet };
}

async function joinPool(l: Ledger, held: HeldPool, range: Cidr | undefined): Promise<PoolAnswer | undefined> {
  const { record, entry, subnet } = held;
  if (record.hosts.includes(l.hostId)) {
    throw conflict(`subnet ${record.subnet} is already used by another knit network on this host; choose another --subnet`);
  }
  if (!sameRange(record.range, range)) {
    throw conflict(`subnet ${record.subnet} is already defined with ip-range ${record.range ?? '(none)'} by another host; use the same --ip-range`);
  }
  const next: PoolRecord = { ...record, hosts: [...record.hosts, l.hostId] };
  const ok = await l.store.commit([{ key: entry.key, value: encode(next), expect: entry.revision }]);
  if (ok === null) return undefined;
  l.deps.log.info('pool joined', { pool: record.subnet, hosts: next.hosts.length });
  return { poolId: poolId(subnet, range), pool: record.subnet };
}

/** This host lets the pool go; its addresses go first, and the pool record with the last host. */
export async function releasePoolOnce(l: Ledger, id: string): Promise<true | undefined> {
  const { subnet, range } = parsePoolId(id);
  const sk = subnetKey(subnet);
  const entry = await l.store.get(keys.pool(sk));
  if (!entry) return true;
  const record = decode<PoolRecord>(entry);
  if (!sameRange(record.range, range)) {
    throw conflict(`pool ${id} does not match the stored ip-range ${record.range ?? '(none)'}; nothing was released`);
  }
  const hosts = record.hosts.filter((h) => h !== l.hostId);
  const addrs = await l.store.list(keys.addrs(sk));
  const mine = addrs.filter((a) => hosts.length === 0 || decode<AddressRecord>(a).host === l.hostId);
  const keep = hosts.length > 0 && record.gateway ? keys.addr(sk, record.gateway) : undefined;
  // Addresses and blocks go before the pool record, so a crash in between leaves a pool, never orphans.
  await dropLedger(l, sk);
  await l.deleteAll([...mine.filter((a) => a.key !== keep), ...(await blocksHeld(l, sk, hosts.length ? l.hostId : undefined))]);
  await forgetHeldSubnet(l, sk);
  if ((await l.commitHosts({ entry, record }, hosts)) === null) return undefined;
  l.books.delete(sk);
  l.deps.log.info('pool released', { pool: record.subnet, remainingHosts: hosts.length });
  l.deps.onPoolReleased?.(record.subnet);
  return true;
}
