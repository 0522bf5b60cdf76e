// Block allocation through a cluster store (Calico's design): a host claims a block of a pool with one
// compare-and-set, hands out its addresses from a ledger in its own store, and gives a block back once it is
// empty (keeping one spare). The cluster store is touched per block, not per address.
import { type Cidr, formatCidr, formatIp, parseIp, subnetKey } from '../addr/cidr.js';
import { conflict, notFound, unavailable } from '../errors.js';
import { decode, encode } from '../store/records.js';
import type { Check, Entry } from '../store/types.js';
import { BlockBook } from './block-book.js';
import { heldIps } from './host-addresses.js';
import { blockOf, blockText, freeBlock, geometry, type Geometry } from './blocks.js';
import type { Ledger } from './ledger.js';
import { type BlockRecord, keys, type LedgerRecord, type PoolRecord } from './records.js';

/**
 * How long a host trusts its held blocks without reading them back. A host cut off from the store stops handing
 * out addresses within this time, long before a grace period (KNIT_RECLAIM_AFTER) lets others reclaim its blocks.
 */
export const CHECK_MS = 1_000;
/** How many blocks taken concurrently by other hosts one claim steps over before it gives up. */
const CLAIM_ATTEMPTS = 20;

const baseOfKey = (key: string): bigint => parseIp(key.slice(key.lastIndexOf('/') + 1)).value;

/** This host's book of the pool, its blocks read back at most CHECK_MS ago; undefined when the pool has no blocks. */
export async function blockBook(l: Ledger, subnet: Cidr, range?: Cidr): Promise<BlockBook | undefined> {
  if (!l.deps.local) return undefined;
  const sk = subnetKey(subnet);
  let book = l.blockBooks.get(sk);
  if (book && (book.g.range ? formatCidr(book.g.range) : '') !== (range ? formatCidr(range) : '')) {
    // Another ip-range: a pool made again while this host was away may start afresh, once nothing of the old one
    // is held or being handed out (a hand-out enters the ledger before it awaits anything); else it is a mistake.
    if (book.blocks().length > 0 || book.ledgerEntries().length > 0) {
      throw conflict(`pool ${formatCidr(subnet)} hands out from ${book.g.range ? `ip-range ${formatCidr(book.g.range)}` : 'the whole subnet'} on this host, not ${range ? `ip-range ${formatCidr(range)}` : 'the whole subnet'}; nothing was changed`);
    }
    l.blockBooks.delete(sk);
    book = undefined;
  }
  if (!book) {
    const g = geometry(subnet, range);
    if (!g) return undefined;
    book = await l.blockLocks.run(sk, () => loadBook(l, g));
  }
  if (Date.now() - book.checkedAt >= CHECK_MS) {
    const b = book;
    await l.blockLocks.run(sk, () => (Date.now() - b.checkedAt >= CHECK_MS ? readBack(l, b) : Promise.resolve()));
  }
  return book;
}

/** The book from the host's ledger (what it handed out before a restart) and the store (its blocks). */
async function loadBook(l: Ledger, g: Geometry): Promise<BlockBook> {
  const sk = subnetKey(g.subnet);
  const loaded = l.blockBooks.get(sk);
  if (loaded) return loaded;
  const book = new BlockBook(g);
  for (const e of await l.deps.local!.list(keys.ledger(sk))) book.take(baseOfKey(e.key), 'ledger');
  await readBack(l, book);
  l.blockBooks.set(sk, book);
  return book;
}

/** Reads the pool's blocks: those no longer this host's are dropped (reclaimed while it was away), new ones taken up. */
async function readBack(l: Ledger, book: BlockBook): Promise<void> {
  const sk = subnetKey(book.g.subnet);
  const started = Date.now();
  const mine = new Map<bigint, number>();
  for (const e of await l.store.list(keys.blocks(sk))) {
    if (decode<BlockRecord>(e).host === l.hostId) mine.set(baseOfKey(e.key), e.revision);
  }
  const found = [...mine.keys()].filter((base) => book.revision(base) === undefined);
  const records = found.length ? await recordsIn(l, book.g, found) : [];
  for (const base of book.blocks()) {
    if (mine.has(base)) continue;
    book.disown(base);
    l.deps.log.warn('a block of this host is gone from the store (reclaimed while it was away?); no longer handing out from it', { block: blockText(book.g, base) });
  }
  for (const base of found) book.own(base, mine.get(base)!);
  for (const ip of records) book.take(ip, 'record');
  book.checkedAt = started;
}

/** Addresses with a record in the cluster store inside the blocks at `bases` (static addresses, gateways). */
async function recordsIn(l: Ledger, g: Geometry, bases: bigint[]): Promise<bigint[]> {
  const sk = subnetKey(g.subnet);
  const wanted = new Set(bases);
  const prefix = keys.addrs(sk);
  return (await l.store.list(prefix))
    .map((e) => parseIp(e.key.slice(prefix.length)).value)
    .filter((ip) => {
      const base = blockOf(g, ip);
      return base !== undefined && wanted.has(base);
    });
}

/** Hands out the next free address of this host's blocks, claiming a block when they are full. */
export async function handOut(l: Ledger, book: BlockBook): Promise<bigint> {
  const sk = subnetKey(book.g.subnet);
  for (let i = 0; i < CLAIM_ATTEMPTS; i++) {
    skipHostAddresses(l, book);
    const ip = book.next();
    if (ip !== undefined) return enter(l, book, ip);
    await l.blockLocks.run(sk, () => (book.hasFree() ? Promise.resolve() : claimBlock(l, book)));
  }
  throw unavailable('the IPAM store is too busy (blocks claimed kept filling up); try again');
}

/**
 * Knit hosts' own addresses (a macvlan network shares the LAN with the hosts) are never handed out: inside a held
 * block they count as taken, like addresses with a record, and stop counting when the block goes.
 */
function skipHostAddresses(l: Ledger, book: BlockBook): void {
  for (const { family, value } of heldIps(l.deps.hostAddresses?.())) {
    if (family === book.g.subnet.family && book.holds(value) && !book.isTaken(value)) book.take(value, 'record');
  }
}

/** Writes a free address of a held block into the ledger: handed out. */
export async function enter(l: Ledger, book: BlockBook, ip: bigint): Promise<bigint> {
  // Taken in memory before the write: a concurrent request must not get it meanwhile.
  book.take(ip, 'ledger');
  const record: LedgerRecord = { at: new Date().toISOString() };
  try {
    await l.deps.local!.commit([{ key: keys.handed(subnetKey(book.g.subnet), formatIp(book.g.subnet.family, ip)), value: encode(record) }]);
  } catch (err) {
    book.release(ip, 'ledger');
    throw err;
  }
  return ip;
}

/** One compare-and-set claims the highest free block; then the records already inside it are taken. */
async function claimBlock(l: Ledger, book: BlockBook): Promise<void> {
  const g = book.g;
  const sk = subnetKey(g.subnet);
  for (let i = 0; i < CLAIM_ATTEMPTS; i++) {
    const pool = await l.store.get(keys.pool(sk));
    if (!pool || !decode<PoolRecord>(pool).hosts.includes(l.hostId)) throw notFound(`this host holds no pool ${formatCidr(g.subnet)} (was the network removed?)`);
    const entries = await l.store.list(keys.blocks(sk));
    const base = freeBlock(g, new Set(entries.map((e) => baseOfKey(e.key))));
    if (base === undefined) throw exhausted(g, entries, l.hostId);
    const record: BlockRecord = { host: l.hostId, block: blockText(g, base), at: new Date().toISOString() };
    const key = keys.block(sk, formatIp(g.subnet.family, base));
    // The pool must stay as read: a block is never claimed in a pool being released.
    const revision = await l.store.commit([{ key, value: encode(record), expect: 0 }], [{ key: pool.key, expect: pool.revision }]);
    // Lost: another host claimed that block first (or joined the pool); the next attempt reads again.
    if (revision === null) continue;
    // A static address may have been claimed in it before; none can be after (those check the block is free).
    const records = await recordsIn(l, g, [base]);
    book.own(base, revision);
    for (const ip of records) book.take(ip, 'record');
    l.deps.log.info('block claimed', { block: record.block });
    return;
  }
  throw unavailable('the IPAM store is too busy (every free block was claimed concurrently); try again');
}

function exhausted(g: Geometry, entries: Entry[], hostId: string): Error {
  const others = [...new Set(entries.map((e) => decode<BlockRecord>(e).host).filter((h) => h !== hostId))];
  const where = g.range ? `ip-range ${formatCidr(g.range)}` : `subnet ${formatCidr(g.subnet)}`;
  return conflict(
    `no free address left for this host in ${where}: its blocks are full and every other block is held by ${others.length ? `host ${others.join(', ')}` : 'this host'}; ` +
      'remove containers, or use a larger subnet',
  );
}

/** Takes back an address this host handed out from a block; an emptied block beyond the one spare goes back. */
export async function takeBack(l: Ledger, book: BlockBook, ip: bigint): Promise<void> {
  const sk = subnetKey(book.g.subnet);
  await l.deps.local!.commit([{ key: keys.handed(sk, formatIp(book.g.subnet.family, ip)), value: null }]);
  // Free in memory only once the ledger no longer holds it, or a new hand-out's entry could be deleted here.
  book.release(ip, 'ledger');
  if (book.surplus().length === 0) return;
  await l.blockLocks.run(sk, () => giveBack(l, book)).catch((err: Error) => {
    l.deps.log.warn('could not give an empty block back; the next release tries again', { error: err.message });
  });
}

/** Gives back the empty blocks beyond the spare: no hand-out from them once this starts, then one guarded delete each. */
async function giveBack(l: Ledger, book: BlockBook): Promise<void> {
  const sk = subnetKey(book.g.subnet);
  for (const base of book.surplus()) {
    const revision = book.revision(base)!;
    book.disown(base);
    // A guard that fails means the block is no longer this host's record (reclaimed): nothing to give back.
    await l.store.commit([{ key: keys.block(sk, formatIp(book.g.subnet.family, base)), value: null, expect: revision }]);
    l.deps.log.info('empty block given back', { block: blockText(book.g, base) });
  }
}

/** Who may hand out `ip`, for a claim of that one address (static, gateway, restore) through the store. */
export type BlockState =
  | { state: 'none'; checks: Check[] }
  | { state: 'mine'; checks: Check[]; book: BlockBook }
  | { state: 'other'; holder: string; block: string };

/**
 * A claim of one address must not land in another host's block (that host hands out its addresses without
 * the store); in a free block it checks the block stays free, in this host's own it checks the block stays ours.
 */
export async function blockState(l: Ledger, subnet: Cidr, range: Cidr | undefined, ip: bigint): Promise<BlockState> {
  const g = l.deps.local ? geometry(subnet, range) : undefined;
  const base = g ? blockOf(g, ip) : undefined;
  if (!g || base === undefined) return { state: 'none', checks: [] };
  const key = keys.block(subnetKey(subnet), formatIp(subnet.family, base));
  const entry = await l.store.get(key);
  if (!entry) return { state: 'none', checks: [{ key, expect: 0 }] };
  const holder = decode<BlockRecord>(entry).host;
  if (holder !== l.hostId) return { state: 'other', holder, block: blockText(g, base) };
  const book = await blockBook(l, subnet, range);
  if (!book?.holds(ip)) return { state: 'none', checks: [{ key, expect: entry.revision }] };
  return { state: 'mine', checks: [{ key, expect: entry.revision }], book };
}

/** The error for an address in another host's block. */
export function inOtherBlock(ip: string, s: { holder: string; block: string }): Error {
  return conflict(
    `address ${ip} is possibly already in use: it lies in block ${s.block}, which host ${s.holder} holds and hands out from itself; ` +
      'choose an address outside the blocks in use (knit claims them from the top of the range down), or give the network an --ip-range and use --ip outside it',
  );
}
