// Address claims: the gateway, a static address and the next dynamic one, and their release. Each call is one
// attempt: undefined means a compare-and-set lost and the caller re-reads and tries again.
import { type Cidr, contains, formatCidr, formatIp, parseIp, subnetKey, usableBounds } from '../addr/cidr.js';
import { badRequest, conflict, notFound, unavailable } from '../errors.js';
import { decode, encode } from '../store/records.js';
import type { Check, Entry } from '../store/types.js';
import type { AddressBook } from './allocator.js';
import { blockBook, blockState, handOut, inOtherBlock, takeBack } from './block-calls.js';
import { forgetHeld, noteHeld } from './held.js';
import type { Ledger } from './ledger.js';
import { parsePoolId, sameRange } from './pools.js';
import { type AddressRecord, keys, type PoolRecord } from './records.js';

export interface AddressRequest {
  poolId: string;
  address?: string;
  gateway: boolean;
}

/** How many taken addresses one dynamic request steps over before it gives up. */
const DYNAMIC_ATTEMPTS = 50;

export async function requestAddressOnce(l: Ledger, req: AddressRequest): Promise<string | undefined> {
  const { subnet, range } = parsePoolId(req.poolId);
  const held = l.blockBooks.get(subnetKey(subnet));
  // This host holds blocks of the pool: a dynamic address is handed out from them without reading the pool.
  if (held && !req.gateway && !req.address && sameRange(held.g.range && formatCidr(held.g.range), range)) {
    const book = await blockBook(l, subnet, range);
    if (book) return `${formatIp(subnet.family, await handOut(l, book))}/${subnet.prefix}`;
  }
  const entry = await l.store.get(keys.pool(subnetKey(subnet)));
  if (!entry) throw notFound(`pool ${req.poolId} is not allocated (was the network removed?)`);
  const pool = decode<PoolRecord>(entry);
  if (!sameRange(pool.range, range)) throw conflict(`pool ${req.poolId} does not match the stored ip-range ${pool.range ?? '(none)'}`);
  const wanted = req.address ? checkAddress(req.address, subnet) : undefined;
  const blocks = req.gateway || wanted !== undefined ? undefined : await blockBook(l, subnet, range);
  const book = blocks ? undefined : await l.book(subnet, range);
  let ip: bigint | undefined;
  if (blocks) ip = await handOut(l, blocks);
  else if (req.gateway) ip = await claimGateway(l, { book: book!, pool, entry, wanted });
  else if (wanted !== undefined) ip = await claimStatic(l, book!, wanted);
  else ip = await claimDynamic(l, book!);
  return ip === undefined ? undefined : `${formatIp(subnet.family, ip)}/${subnet.prefix}`;
}

function checkAddress(address: string, subnet: Cidr): bigint {
  const { family, value } = parseIp(address);
  const { first, last } = usableBounds(subnet);
  if (family !== subnet.family || !contains(subnet, value)) {
    throw badRequest(`address ${address} is not in subnet ${formatCidr(subnet)}`);
  }
  if (value < first || value > last) {
    throw badRequest(`address ${address} is the network or broadcast address of ${formatCidr(subnet)}`);
  }
  return value;
}

/** The pool's one gateway: the first host sets it (with the pool record, so two hosts cannot set two). */
async function claimGateway(l: Ledger, a: { book: AddressBook; pool: PoolRecord; entry: Entry; wanted?: bigint }): Promise<bigint | undefined> {
  const { book, pool, entry, wanted } = a;
  const family = book.subnet.family;
  if (pool.gateway) {
    const current = parseIp(pool.gateway).value;
    if (wanted !== undefined && wanted !== current) {
      throw conflict(`subnet ${pool.subnet} already has gateway ${pool.gateway} (set by the first host); use --gateway ${pool.gateway}`);
    }
    return current;
  }
  const ip = wanted ?? book.lowestFree();
  if (ip === undefined) throw conflict(`no free address left in ${pool.subnet} for a gateway`);
  if (wanted !== undefined && book.isUsed(ip)) throw conflict(`gateway ${formatIp(family, ip)} is already in use in ${pool.subnet}`);
  const text = formatIp(family, ip);
  const blocks = await claimable(l, book, ip, conflict(`gateway ${text} is already in use in ${pool.subnet}`));
  const ok = await l.store.commit([
    { key: entry.key, value: encode({ ...pool, gateway: text }), expect: entry.revision },
    l.addressWrite(book.subnet, text, 'gateway'),
  ], blocks.checks);
  if (ok === null) {
    blocks.undo();
    return undefined;
  }
  book.take(ip);
  return ip;
}

async function claimStatic(l: Ledger, book: AddressBook, ip: bigint): Promise<bigint | undefined> {
  const text = formatIp(book.subnet.family, ip);
  if (l.deps.hostAddresses?.().has(text)) throw conflict(`address ${text} is an address of a knit host (on one of its interfaces); choose another`);
  const key = keys.addr(subnetKey(book.subnet), text);
  const taken = conflict(`address ${text} is already in use in ${formatCidr(book.subnet)}`);
  // The cache may be stale when other hosts share the pool: the store decides.
  if (book.isUsed(ip) && (await l.store.get(key))) throw taken;
  const blocks = await claimable(l, book, ip, taken);
  await noteHeld(l, subnetKey(book.subnet), text, 'static');
  const ok = await l.store.commit([l.addressWrite(book.subnet, text, 'static')], blocks.checks);
  book.take(ip);
  if (ok !== null) return ip;
  blocks.undo();
  // A lost guard: another claim holds the address now, or the block around it changed (then try again).
  if (await l.store.get(key)) throw taken;
  return undefined;
}

/**
 * A claim of one address through the store checks the block around it: free, or this host's (and the address
 * not handed out from it); an address in another host's block is refused. The address counts as taken in this
 * host's block until `undo` (the claim lost).
 */
async function claimable(l: Ledger, book: AddressBook, ip: bigint, taken: Error): Promise<{ checks: Check[]; undo: () => void }> {
  const s = await blockState(l, book.subnet, book.range, ip);
  if (s.state === 'other') throw inOtherBlock(formatIp(book.subnet.family, ip), s);
  if (s.state === 'none') return { checks: s.checks, undo: () => undefined };
  if (s.book.isTaken(ip)) throw taken;
  s.book.take(ip, 'record');
  return { checks: s.checks, undo: () => s.book.release(ip, 'record') };
}

async function claimDynamic(l: Ledger, first: AddressBook): Promise<bigint> {
  let book = first;
  let reloaded = false;
  for (let i = 0; i < DYNAMIC_ATTEMPTS; i++) {
    let ip = book.next();
    if (ip === undefined && !reloaded) {
      // Other hosts may have released addresses this cache still counts: look again once.
      l.books.delete(subnetKey(book.subnet));
      book = await l.book(book.subnet, book.range);
      reloaded = true;
      ip = book.next();
    }
    if (ip === undefined) {
      const where = book.range ? `ip-range ${formatCidr(book.range)}` : `subnet ${formatCidr(book.subnet)}`;
      throw conflict(`no free address left in ${where}; remove containers or use a larger subnet`);
    }
    const text = formatIp(book.subnet.family, ip);
    await noteHeld(l, subnetKey(book.subnet), text, 'dynamic');
    const ok = await l.store.commit([l.addressWrite(book.subnet, text, 'dynamic')]);
    book.take(ip);
    // A lost guard means another claim took this address first: step on to the next one.
    if (ok !== null) return ip;
    // Not this host's (its own records are in the book, never picked): the index entry goes at once.
    await forgetHeld(l, [keys.addr(subnetKey(book.subnet), text)]);
  }
  throw unavailable('the IPAM store is too busy (every address tried was taken concurrently); try again');
}

export async function releaseAddressOnce(l: Ledger, id: string, address: string): Promise<true | undefined> {
  const { subnet, range } = parsePoolId(id);
  const ip = checkAddress(address, subnet);
  const sk = subnetKey(subnet);
  const blocks = await blockBook(l, subnet, range);
  // Handed out from this host's block: it goes back to the ledger, without the store.
  if (blocks?.inLedger(ip)) {
    await takeBack(l, blocks, ip);
    return true;
  }
  const pool = await l.store.get(keys.pool(sk));
  // The gateway belongs to the pool (shared by every host) and goes with it.
  if (!pool || decode<PoolRecord>(pool).gateway === address) return true;
  const entry = await l.store.get(keys.addr(sk, formatIp(subnet.family, ip)));
  if (!entry) return true;
  const record = decode<AddressRecord>(entry);
  if (record.host !== l.hostId) {
    l.deps.log.warn('release of an address held by another host ignored', { address, holder: record.host });
    return true;
  }
  if ((await l.store.commit([{ key: entry.key, value: null, expect: entry.revision }])) === null) return undefined;
  await forgetHeld(l, [entry.key]);
  (await l.book(subnet, range)).release(ip);
  blocks?.release(ip, 'record');
  return true;
}
