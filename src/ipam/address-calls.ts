// Address claims: the gateway, a static address and the next dynamic one, and their release. Each call is one
// attempt: undefined means a compare-and-set lost and the caller re-reads and tries again.
import { type Cidr, contains, formatCidr, formatIp, parseIp, subnetKey, usableBounds } from '../addr/cidr.js';
import { badRequest, conflict, notFound, unavailable } from '../errors.js';
import { decode, encode } from '../store/records.js';
import type { Entry } from '../store/types.js';
import type { AddressBook } from './allocator.js';
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
  const entry = await l.store.get(keys.pool(subnetKey(subnet)));
  if (!entry) throw notFound(`pool ${req.poolId} is not allocated (was the network removed?)`);
  const pool = decode<PoolRecord>(entry);
  if (!sameRange(pool.range, range)) throw conflict(`pool ${req.poolId} does not match the stored ip-range ${pool.range ?? '(none)'}`);
  const book = await l.book(subnet, range);
  const wanted = req.address ? checkAddress(req.address, subnet) : undefined;
  let ip: bigint | undefined;
  if (req.gateway) ip = await claimGateway(l, { book, pool, entry, wanted });
  else if (wanted !== undefined) ip = await claimStatic(l, book, wanted);
  else ip = await claimDynamic(l, book);
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
  const ok = await l.store.commit([
    { key: entry.key, value: encode({ ...pool, gateway: text }), expect: entry.revision },
    l.addressWrite(book.subnet, text, 'gateway'),
  ]);
  if (ok === null) return undefined;
  book.take(ip);
  return ip;
}

async function claimStatic(l: Ledger, book: AddressBook, ip: bigint): Promise<bigint> {
  const text = formatIp(book.subnet.family, ip);
  if (l.deps.hostAddresses?.().has(text)) throw conflict(`address ${text} is an address of a knit host (on one of its interfaces); choose another`);
  const key = keys.addr(subnetKey(book.subnet), text);
  const taken = conflict(`address ${text} is already in use in ${formatCidr(book.subnet)}`);
  // The cache may be stale when other hosts share the pool: the store decides.
  if (book.isUsed(ip) && (await l.store.get(key))) throw taken;
  const ok = await l.store.commit([l.addressWrite(book.subnet, text, 'static')]);
  book.take(ip);
  // The only guard is "absent": a lost one means another claim holds the address now.
  if (ok === null) throw taken;
  return ip;
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
    const ok = await l.store.commit([l.addressWrite(book.subnet, formatIp(book.subnet.family, ip), 'dynamic')]);
    book.take(ip);
    // A lost guard means another claim took this address first: step on to the next one.
    if (ok !== null) return ip;
  }
  throw unavailable('the IPAM store is too busy (every address tried was taken concurrently); try again');
}

export async function releaseAddressOnce(l: Ledger, id: string, address: string): Promise<true | undefined> {
  const { subnet, range } = parsePoolId(id);
  const ip = checkAddress(address, subnet);
  const sk = subnetKey(subnet);
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
  (await l.book(subnet, range)).release(ip);
  return true;
}
