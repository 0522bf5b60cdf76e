// What the sweeps and pool releases need of blocks: this host's ledger as address records, a ledger address
// given back or restored, and the blocks and ledger entries a release or a reclaim removes.
import { type Cidr, formatIp, parseCidr, parseIp, subnetKey } from '../addr/cidr.js';
import { decode } from '../store/records.js';
import { commitInBatches, type Entry } from '../store/types.js';
import { blockBook, enter, takeBack } from './block-calls.js';
import type { BlockBook } from './block-book.js';
import type { Ledger } from './ledger.js';
import { addressKeyParts, type AddressRecord, type BlockRecord, keys, type LedgerRecord, type PoolRecord } from './records.js';

export interface OwnAddress {
  key: string;
  ip: string;
  subnet: string;
  record: AddressRecord;
}


/**
 * Pool records read during one pass of the sweep, by subnet key (undefined: no pool): each pool is read once per
 * pass, not once per endpoint (a pool record lists every holding host, so it grows with the cluster).
 */
export type PoolReads = Map<string, Entry | undefined>;

/** The pool record of `sk`, from `reads` when this pass read it already. */
export async function poolEntry(l: Ledger, sk: string, reads?: PoolReads): Promise<Entry | undefined> {
  if (reads?.has(sk)) return reads.get(sk);
  const entry = await l.store.get(keys.pool(sk));
  reads?.set(sk, entry);
  return entry;
}

/** This host's book of the pool of `subnet`, with the pool's ip-range as stored; undefined without blocks. */
export async function bookOf(l: Ledger, subnet: Cidr, reads?: PoolReads): Promise<BlockBook | undefined> {
  if (!l.deps.local) return undefined;
  const pool = await poolEntry(l, subnetKey(subnet), reads);
  const range = pool ? decode<PoolRecord>(pool).range : undefined;
  return blockBook(l, subnet, range ? parseCidr(range, 'ip-range') : undefined);
}

/** The ledger's addresses, as the dynamic address records of this host they stand for. */
export async function ledgerAddresses(l: Ledger): Promise<OwnAddress[]> {
  if (!l.deps.local) return [];
  return (await l.deps.local.list(keys.ledgerPrefix)).map((e) => {
    const { ip, subnet } = addressKeyParts(e.key);
    return { key: e.key, ip, subnet, record: { host: l.hostId, kind: 'dynamic', at: decode<LedgerRecord>(e).at } };
  });
}

/** Gives back a ledger address no endpoint uses (leak clean-up). */
export async function releaseHanded(l: Ledger, key: string): Promise<true> {
  const { ip, subnet } = addressKeyParts(key);
  const book = await bookOf(l, parseCidr(subnet));
  const value = parseIp(ip).value;
  if (book?.inLedger(value)) await takeBack(l, book, value);
  else await l.deps.local!.commit([{ key, value: null }]);
  return true;
}

/**
 * An address a local endpoint uses, inside this host's blocks: 'ok' when the ledger has it, 'restored' after
 * writing it there; undefined when it is not one of this host's block addresses (the store's records decide).
 */
export async function ensureHanded(l: Ledger, book: BlockBook | undefined, ip: bigint): Promise<'ok' | 'restored' | undefined> {
  // A record in the store means another claim holds it too (the block was lost and claimed again): the record decides.
  if (!book?.holds(ip) || book.hasRecord(ip)) return undefined;
  if (book.inLedger(ip)) return 'ok';
  await enter(l, book, ip);
  return 'restored';
}

/** Drops a ledger entry whose address now has a record of its own in the store (its block was lost). */
export async function forgetHanded(l: Ledger, book: BlockBook | undefined, ip: bigint): Promise<void> {
  if (!book?.inLedger(ip)) return;
  await l.deps.local!.commit([{ key: keys.handed(subnetKey(book.g.subnet), formatIp(book.g.subnet.family, ip)), value: null }]);
  book.release(ip, 'ledger');
}

/** Block records of a pool held by `host` (every block when `host` is undefined). */
export async function blocksHeld(l: Ledger, sk: string, host?: string): Promise<Entry[]> {
  const entries = await l.store.list(keys.blocks(sk));
  return host === undefined ? entries : entries.filter((e) => decode<BlockRecord>(e).host === host);
}

/** This host lets the pool go: its ledger entries and its book go with it. */
export async function dropLedger(l: Ledger, sk: string): Promise<void> {
  l.blockBooks.delete(sk);
  if (!l.deps.local) return;
  const entries = await l.deps.local.list(keys.ledger(sk));
  await commitInBatches(l.deps.local, entries.map((e) => ({ key: e.key, value: null })));
}
