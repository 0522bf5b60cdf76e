// Sweeps: quarantine and reclaim the pools and addresses of hosts that went away, and repair this host's own
// address records. Each call is one attempt: undefined means a compare-and-set lost and the caller re-reads
// and tries again, so a lost race never leaves a half-done reclaim reported as done.
import { parseCidr, parseIp, subnetKey } from '../addr/cidr.js';
import { decode, encode } from '../store/records.js';
import { blockState } from './block-calls.js';
import { blocksHeld, bookOf, ensureHanded, forgetHanded, ledgerAddresses, type OwnAddress, poolEntry, type PoolReads, releaseHanded } from './block-own.js';
import { forgetHeld, heldRecords, noteHeld } from './held.js';
import type { HeldPool, Ledger } from './ledger.js';
import { type AddressRecord, keys, type PoolRecord } from './records.js';

export interface ReclaimPass {
  live: Set<string>;
  now: number;
  afterMs: number;
  /** Hosts reclaimed so far, across attempts (an attempt that lost a race keeps what it finished). */
  reclaimed: string[];
}

/** Hosts holding pools whose liveness key is gone are quarantined (ipam/lost/<host>); after `afterMs` they are reclaimed. */
export async function reclaimOnce(l: Ledger, a: ReclaimPass): Promise<true | undefined> {
  const pools = await l.pools();
  const absent = new Set(pools.flatMap((p) => p.record.hosts).filter((h) => h !== l.hostId && !a.live.has(h)));
  const lost = new Map((await l.store.list(keys.lostPrefix)).map((e) => [e.key.slice(keys.lostPrefix.length), e]));
  for (const [host, e] of lost) {
    // The host is back (or holds nothing any more): its quarantine ends, unless the marker changed under us.
    if (!absent.has(host) && (await l.store.commit([{ key: e.key, value: null, expect: e.revision }])) === null) return undefined;
  }
  for (const host of absent) {
    const e = lost.get(host);
    if (!e) {
      // Another host may quarantine it first: then its `since` stands, and the next attempt reads it.
      if (!(await quarantine(l, host, a))) return undefined;
    } else if (a.now - Date.parse(decode<{ since: string }>(e).since) >= a.afterMs) {
      if (!(await dropFromPools(l, host, pools))) return undefined;
      a.reclaimed.push(host);
      l.deps.log.warn('addresses of a lost host reclaimed', { host });
      // Lost: the next attempt finds the host in no pool and ends the quarantine as for a returning host.
      if ((await l.store.commit([{ key: e.key, value: null, expect: e.revision }])) === null) return undefined;
    }
  }
  return true;
}

async function quarantine(l: Ledger, host: string, a: ReclaimPass): Promise<boolean> {
  const ok = await l.store.commit([{ key: keys.lost(host), value: encode({ since: new Date(a.now).toISOString() }), expect: 0 }]);
  if (ok === null) return false;
  l.deps.log.warn('host lost: its addresses are quarantined', { host, reclaimAfterMs: a.afterMs });
  return true;
}

/**
 * Drops `host` from every pool it holds; false when a pool changed since it was read. The quarantine
 * marker goes only after this succeeded: were it deleted with a pool still naming the host, the next
 * sweep would see an absent host with no marker and start its quarantine afresh.
 */
async function dropFromPools(l: Ledger, host: string, pools: HeldPool[]): Promise<boolean> {
  for (const p of pools.filter((x) => x.record.hosts.includes(host))) {
    if (!(await dropHost(l, p, host))) return false;
  }
  return true;
}

/** Deletes the host's addresses (all of them when it was the last holder) and takes it off the pool record. */
async function dropHost(l: Ledger, p: HeldPool, host: string): Promise<boolean> {
  const hosts = p.record.hosts.filter((h) => h !== host);
  const addrs = await l.store.list(keys.addrs(subnetKey(p.subnet)));
  const theirs = addrs.filter((a) => {
    const r = decode<AddressRecord>(a);
    return hosts.length === 0 || (r.host === host && r.kind !== 'gateway');
  });
  // Its blocks too: quarantined with it until now, free for any host from here on.
  await l.deleteAll([...theirs, ...(await blocksHeld(l, subnetKey(p.subnet), hosts.length === 0 ? undefined : host))]);
  return (await l.commitHosts(p, hosts)) !== null;
}

/**
 * Every address record this host holds but gateways (the pool's), and the addresses it handed out from its blocks,
 * for reconciliation with endpoints. With a cluster store the records come from this host's index of them (held.ts).
 */
export async function ownAddresses(l: Ledger): Promise<OwnAddress[]> {
  return [...(await heldRecords(l)), ...(await ledgerAddresses(l))];
}

/** Whether this host holds the pool of `subnet` (a network whose pool was released is gone). */
export async function holdsPool(l: Ledger, subnet: string, reads?: PoolReads): Promise<boolean> {
  const entry = await poolEntry(l, subnetKey(parseCidr(subnet)), reads);
  return !!entry && decode<PoolRecord>(entry).hosts.includes(l.hostId);
}

/** Re-claims an address a local endpoint uses if its record is missing (a crash, a reclaim while away). */
export async function ensureOwnedOnce(l: Ledger, subnet: string, ip: string, reads?: PoolReads): Promise<'ok' | 'restored' | 'taken' | undefined> {
  const cidr = parseCidr(subnet);
  const sk = subnetKey(cidr);
  const value = parseIp(ip).value;
  const book = await bookOf(l, cidr, reads);
  const handed = await ensureHanded(l, book, value);
  if (handed) return handed;
  const entry = await l.store.get(keys.addr(sk, ip));
  if (entry) return decode<AddressRecord>(entry).host === l.hostId ? 'ok' : 'taken';
  // Not in a block of this host (any more): a record of its own, if no other host's block holds the address.
  const s = await blockState(l, cidr, book?.g.range, value);
  if (s.state === 'other') return 'taken';
  // Lost: someone claimed it (or its block) between the read and the write; the next attempt reads again.
  await noteHeld(l, sk, ip, 'static');
  if ((await l.store.commit([l.addressWrite(cidr, ip, 'static')], s.checks)) === null) return undefined;
  await forgetHanded(l, book, value);
  l.books.delete(sk);
  return 'restored';
}

/**
 * Deletes one of this host's address records found by ownAddresses (leak clean-up): 'released', or 'gone' when no
 * record of this host was left to delete (its index entry goes too).
 */
export async function releaseOwnedOnce(l: Ledger, key: string): Promise<'released' | 'gone' | undefined> {
  if (key.startsWith(keys.ledgerPrefix)) return (await releaseHanded(l, key)) && 'released';
  const entry = await l.store.get(key);
  const mine = !!entry && decode<AddressRecord>(entry).host === l.hostId;
  if (mine) {
    if ((await l.store.commit([{ key, value: null, expect: entry.revision }])) === null) return undefined;
    l.books.clear();
  }
  await forgetHeld(l, [key]);
  return mine ? 'released' : 'gone';
}
