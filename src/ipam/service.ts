// The IPAM handler: loads pool and address records, lets the pure parts decide, saves with CAS.
import { badRequest, conflict, notFound, unavailable } from '../errors.js';
import type { Logger } from '../log.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { decode, encode } from '../store/records.js';
import type { Entry, Store, Write } from '../store/types.js';
import { AddressBook } from './allocator.js';
import { type Cidr, type Family, contains, containsCidr, formatCidr, formatIp, parseCidr, parseIp, sameCidr, usableBounds } from './cidr.js';
import { chooseSubnet, overlapping, parsePoolId, poolId, type PoolSpec, subnetKey } from './pools.js';
import { type AddressKind, type AddressRecord, keys, type PoolRecord } from './records.js';

export interface IpamDeps {
  store: Store;
  hostId: string;
  defaultPools: PoolSpec[];
  /** Networks on the host's links that a chosen pool must not overlap (on-link routes). */
  reservedNetworks: () => Promise<Cidr[]>;
  log: Logger;
  /** Addresses knit hosts hold on their interfaces (host-addresses.ts): never handed out. */
  hostAddresses?: () => ReadonlySet<string>;
  /** Told after this host let a pool go (the network using it may now be an orphan). */
  onPoolReleased?: (subnet: string) => void;
}

export interface PoolRequest {
  pool?: string;
  subPool?: string;
  v6: boolean;
}

export interface AddressRequest {
  poolId: string;
  address?: string;
  gateway: boolean;
}

const CAS_ATTEMPTS = 50;
const IPAM = 'ipam';

export class Ipam {
  /**
   * Address calls run side by side (each claim is a compare-and-set in the store, and the cache hands
   * concurrent callers different addresses); pool changes and clean-ups run alone.
   */
  private readonly locks = new KeyedLock();
  private readonly exclusive = <T>(work: () => Promise<T>): Promise<T> => this.locks.run(IPAM, work);
  private readonly shared = <T>(work: () => Promise<T>): Promise<T> => this.locks.shared(IPAM, work);
  private readonly books = new Map<string, AddressBook>();

  constructor(private readonly deps: IpamDeps) {}

  requestPool(req: PoolRequest): Promise<{ poolId: string; pool: string }> {
    return this.exclusive(() => this.retry(() => this.tryRequestPool(req)));
  }

  async releasePool(id: string): Promise<void> {
    await this.exclusive(() => this.retry(() => this.tryReleasePool(id)));
  }

  requestAddress(req: AddressRequest): Promise<string> {
    return this.shared(() => this.retry(() => this.tryRequestAddress(req)));
  }

  async releaseAddress(id: string, address: string): Promise<void> {
    await this.shared(() => this.retry(() => this.tryReleaseAddress(id, address)));
  }

  /** Every address record this host holds, for reconciliation with endpoints. */
  async ownAddresses(): Promise<Array<{ key: string; ip: string; subnet: string; record: AddressRecord }>> {
    const entries = await this.deps.store.list('ipam/addrs/');
    return entries
      .map((e) => ({ e, record: decode<AddressRecord>(e) }))
      .filter(({ record }) => record.host === this.deps.hostId)
      .map(({ e, record }) => {
        const [, , sk, ip] = e.key.split('/');
        return { key: e.key, ip, subnet: sk.replace('_', '/'), record };
      });
  }

  /** Whether this host holds the pool of `subnet` (a network whose pool was released is gone). */
  async holdsPool(subnet: string): Promise<boolean> {
    const entry = await this.deps.store.get(keys.pool(subnetKey(parseCidr(subnet))));
    return !!entry && decode<PoolRecord>(entry).hosts.includes(this.deps.hostId);
  }

  /**
   * Hosts holding pools whose liveness key is gone are quarantined (ipam/lost/<host>); after
   * `afterMs` their addresses and pool memberships are reclaimed. Returns the hosts reclaimed.
   */
  async reclaimLost(a: { live: Set<string>; now: number; afterMs: number }): Promise<string[]> {
    return this.exclusive(async () => {
      const pools = await this.pools();
      const absent = new Set(pools.flatMap((p) => p.record.hosts).filter((h) => h !== this.deps.hostId && !a.live.has(h)));
      const lost = new Map((await this.deps.store.list(keys.lostPrefix)).map((e) => [e.key.slice(keys.lostPrefix.length), e]));
      for (const [host, e] of lost) if (!absent.has(host)) await this.deps.store.commit([{ key: e.key, value: null, expect: e.revision }]);
      const reclaimed: string[] = [];
      for (const host of absent) {
        const e = lost.get(host);
        if (!e) {
          await this.deps.store.commit([{ key: keys.lost(host), value: encode({ since: new Date(a.now).toISOString() }), expect: 0 }]);
          this.deps.log.warn('host lost: its addresses are quarantined', { host, reclaimAfterMs: a.afterMs });
        } else if (a.now - Date.parse(decode<{ since: string }>(e).since) >= a.afterMs) {
          for (const p of pools.filter((x) => x.record.hosts.includes(host))) await this.dropHost(p, host);
          await this.deps.store.commit([{ key: e.key, value: null }]);
          reclaimed.push(host);
          this.deps.log.warn('addresses of a lost host reclaimed', { host });
        }
      }
      if (reclaimed.length) this.books.clear();
      return reclaimed;
    });
  }

  private async dropHost(p: HeldPool, host: string): Promise<void> {
    const sk = subnetKey(p.subnet);
    const hosts = p.record.hosts.filter((h) => h !== host);
    const addrs = await this.deps.store.list(keys.addrs(sk));
    const theirs = addrs.filter((a) => hosts.length === 0 || (decode<AddressRecord>(a).host === host && decode<AddressRecord>(a).kind !== 'gateway'));
    await this.deleteAll(theirs);
    const write: Write = hosts.length ? { key: p.entry.key, value: encode({ ...p.record, hosts }), expect: p.entry.revision } : { key: p.entry.key, value: null, expect: p.entry.revision };
    await this.deps.store.commit([write]);
  }

  /** Re-claims an address a local endpoint uses if its record is missing (a crash, a reclaim while away). */
  async ensureOwned(subnet: string, ip: string): Promise<'ok' | 'restored' | 'taken'> {
    return this.exclusive(async () => {
      const sk = subnetKey(parseCidr(subnet));
      const entry = await this.deps.store.get(keys.addr(sk, ip));
      if (entry) return decode<AddressRecord>(entry).host === this.deps.hostId ? 'ok' : 'taken';
      const ok = await this.deps.store.commit([this.addressWrite(parseCidr(subnet), ip, 'static')]);
      this.books.delete(sk);
      return ok === null ? 'taken' : 'restored';
    });
  }

  /** Deletes one of this host's address records found by ownAddresses (leak clean-up). */
  async releaseOwned(key: string): Promise<void> {
    await this.exclusive(async () => {
      const entry = await this.deps.store.get(key);
      if (!entry || decode<AddressRecord>(entry).host !== this.deps.hostId) return;
      await this.deps.store.commit([{ key, value: null, expect: entry.revision }]);
      this.books.clear();
    });
  }

  /** Runs `attempt` until it does not lose a compare-and-set (it returns undefined then). */
  private async retry<T>(attempt: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const result = await attempt();
      if (result !== undefined) return result;
      this.books.clear();
    }
    throw unavailable('the IPAM store is too busy (compare-and-set kept failing); try again');
  }

  private async tryRequestPool(req: PoolRequest): Promise<{ poolId: string; pool: string } | undefined> {
    const family: Family = req.v6 ? 6 : 4;
    const held = await this.pools();
    if (!req.pool) {
      if (req.subPool) throw badRequest('an --ip-range (SubPool) needs a --subnet (Pool)');
      return this.createDynamicPool(family, held);
    }
    const subnet = parseCidr(req.pool, 'subnet');
    if (subnet.family !== family) {
      throw badRequest(`subnet ${req.pool} is IPv${subnet.family} but the request is for an IPv${family} pool`);
    }
    const range = req.subPool ? parseCidr(req.subPool, 'ip-range') : undefined;
    if (range && !containsCidr(subnet, range)) throw badRequest(`ip-range ${req.subPool} is not inside subnet ${req.pool}`);
    const same = held.find((h) => sameCidr(h.subnet, subnet));
    if (same) return this.joinPool(same, range);
    const clash = overlapping(subnet, held.map((h) => h.subnet));
    if (clash) {
      throw conflict(`subnet ${req.pool} overlaps ${formatCidr(clash)}, which knit already holds; choose another --subnet`);
    }
    return this.createPool(subnet, range);
  }

  private async createDynamicPool(family: Family, held: HeldPool[]) {
    const avoid = [...held.map((h) => h.subnet), ...(await this.deps.reservedNetworks())];
    const subnet = chooseSubnet(this.deps.defaultPools, family, avoid);
    if (!subnet) {
      const ranges = this.deps.defaultPools.filter((p) => p.base.family === family).map((p) => `${formatCidr(p.base)}:${p.size}`);
      throw conflict(`no free IPv${family} pool left in KNIT_DEFAULT_POOLS (${ranges.join(', ') || 'none for IPv' + family}); give --subnet or widen KNIT_DEFAULT_POOLS`);
    }
    return this.createPool(subnet);
  }

  private async createPool(subnet: Cidr, range?: Cidr) {
    const record: PoolRecord = { subnet: formatCidr(subnet), family: subnet.family, hosts: [this.deps.hostId] };
    if (range) record.range = formatCidr(range);
    const ok = await this.deps.store.commit([{ key: keys.pool(subnetKey(subnet)), value: encode(record), expect: 0 }]);
    if (ok === null) return undefined;
    this.deps.log.info('pool created', { pool: record.subnet, range: record.range });
    return { poolId: poolId(subnet, range), pool: record.subnet };
  }

  private async joinPool(held: HeldPool, range: Cidr | undefined) {
    const { record, entry, subnet } = held;
    if (record.hosts.includes(this.deps.hostId)) {
      throw conflict(`subnet ${record.subnet} is already used by another knit network on this host; choose another --subnet`);
    }
    if ((record.range ?? '') !== (range ? formatCidr(range) : '')) {
      throw conflict(`subnet ${record.subnet} is already defined with ip-range ${record.range ?? '(none)'} by another host; use the same --ip-range`);
    }
    const next: PoolRecord = { ...record, hosts: [...record.hosts, this.deps.hostId] };
    const ok = await this.deps.store.commit([{ key: entry.key, value: encode(next), expect: entry.revision }]);
    if (ok === null) return undefined;
    this.deps.log.info('pool joined', { pool: record.subnet, hosts: next.hosts.length });
    return { poolId: poolId(subnet, range), pool: record.subnet };
  }

  private async tryReleasePool(id: string): Promise<true | undefined> {
    const { subnet, range } = parsePoolId(id);
    const sk = subnetKey(subnet);
    const entry = await this.deps.store.get(keys.pool(sk));
    if (!entry) return true;
    const record = decode<PoolRecord>(entry);
    if ((record.range ?? '') !== (range ? formatCidr(range) : '')) {
      throw conflict(`pool ${id} does not match the stored ip-range ${record.range ?? '(none)'}; nothing was released`);
    }
    const hosts = record.hosts.filter((h) => h !== this.deps.hostId);
    const addrs = await this.deps.store.list(keys.addrs(sk));
    const mine = addrs.filter((a) => hosts.length === 0 || decode<AddressRecord>(a).host === this.deps.hostId);
    const keep = hosts.length > 0 && record.gateway ? keys.addr(sk, record.gateway) : undefined;
    // Addresses go before the pool record, so a crash in between leaves a pool, never orphans.
    await this.deleteAll(mine.filter((a) => a.key !== keep));
    const write: Write = hosts.length
      ? { key: entry.key, value: encode({ ...record, hosts }), expect: entry.revision }
      : { key: entry.key, value: null, expect: entry.revision };
    if ((await this.deps.store.commit([write])) === null) return undefined;
    this.books.delete(sk);
    this.deps.log.info('pool released', { pool: record.subnet, remainingHosts: hosts.length });
    this.deps.onPoolReleased?.(record.subnet);
    return true;
  }

  private async deleteAll(entries: Entry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += 64) {
      const chunk = entries.slice(i, i + 64).map((e) => ({ key: e.key, value: null }));
      await this.deps.store.commit(chunk);
    }
  }

  private async tryRequestAddress(req: AddressRequest): Promise<string | undefined> {
    const { subnet, range } = parsePoolId(req.poolId);
    const entry = await this.deps.store.get(keys.pool(subnetKey(subnet)));
    if (!entry) throw notFound(`pool ${req.poolId} is not allocated (was the network removed?)`);
    const pool = decode<PoolRecord>(entry);
    if ((pool.range ?? '') !== (range ? formatCidr(range) : '')) {
      throw conflict(`pool ${req.poolId} does not match the stored ip-range ${pool.range ?? '(none)'}`);
    }
    const book = await this.book(subnet, range);
    const wanted = req.address ? this.checkAddress(req.address, subnet) : undefined;
    let ip: bigint | undefined;
    if (req.gateway) ip = await this.claimGateway({ book, pool, entry, wanted });
    else if (wanted !== undefined) ip = await this.claimStatic(book, wanted);
    else ip = await this.claimDynamic(book);
    return ip === undefined ? undefined : `${formatIp(subnet.family, ip)}/${subnet.prefix}`;
  }

  private checkAddress(address: string, subnet: Cidr): bigint {
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

  private async claimGateway(a: { book: AddressBook; pool: PoolRecord; entry: Entry; wanted?: bigint }) {
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
    const ok = await this.deps.store.commit([
      { key: entry.key, value: encode({ ...pool, gateway: text }), expect: entry.revision },
      this.addressWrite(book.subnet, text, 'gateway'),
    ]);
    if (ok === null) return undefined;
    book.take(ip);
    return ip;
  }

  private async claimStatic(book: AddressBook, ip: bigint): Promise<bigint | undefined> {
    const text = formatIp(book.subnet.family, ip);
    if (this.deps.hostAddresses?.().has(text)) throw conflict(`address ${text} is an address of a knit host (on one of its interfaces); choose another`);
    const key = keys.addr(subnetKey(book.subnet), text);
    // The cache may be stale when other hosts share the pool: the store decides.
    if (book.isUsed(ip) && (await this.deps.store.get(key))) throw conflict(`address ${text} is already in use in ${formatCidr(book.subnet)}`);
    if ((await this.deps.store.commit([this.addressWrite(book.subnet, text, 'static')])) === null) {
      book.take(ip);
      throw conflict(`address ${text} is already in use in ${formatCidr(book.subnet)}`);
    }
    book.take(ip);
    return ip;
  }

  private async claimDynamic(first: AddressBook): Promise<bigint> {
    let book = first;
    let reloaded = false;
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      let ip = book.next();
      if (ip === undefined && !reloaded) {
        // Other hosts may have released addresses this cache still counts: look again once.
        this.books.delete(subnetKey(book.subnet));
        book = await this.book(book.subnet, book.range);
        reloaded = true;
        ip = book.next();
      }
      if (ip === undefined) {
        const where = book.range ? `ip-range ${formatCidr(book.range)}` : `subnet ${formatCidr(book.subnet)}`;
        throw conflict(`no free address left in ${where}; remove containers or use a larger subnet`);
      }
      const ok = await this.deps.store.commit([this.addressWrite(book.subnet, formatIp(book.subnet.family, ip), 'dynamic')]);
      book.take(ip);
      if (ok !== null) return ip;
    }
    throw unavailable('the IPAM store is too busy (every address tried was taken concurrently); try again');
  }

  private addressWrite(subnet: Cidr, ip: string, kind: AddressKind): Write {
    const record: AddressRecord = { host: this.deps.hostId, kind, at: new Date().toISOString() };
    return { key: keys.addr(subnetKey(subnet), ip), value: encode(record), expect: 0 };
  }

  private async tryReleaseAddress(id: string, address: string): Promise<true | undefined> {
    const { subnet, range } = parsePoolId(id);
    const ip = this.checkAddress(address, subnet);
    const sk = subnetKey(subnet);
    const pool = await this.deps.store.get(keys.pool(sk));
    // The gateway belongs to the pool (shared by every host) and goes with it.
    if (!pool || decode<PoolRecord>(pool).gateway === address) return true;
    const entry = await this.deps.store.get(keys.addr(sk, formatIp(subnet.family, ip)));
    if (!entry) return true;
    const record = decode<AddressRecord>(entry);
    if (record.host !== this.deps.hostId) {
      this.deps.log.warn('release of an address held by another host ignored', { address, holder: record.host });
      return true;
    }
    if ((await this.deps.store.commit([{ key: entry.key, value: null, expect: entry.revision }])) === null) return undefined;
    (await this.book(subnet, range)).release(ip);
    return true;
  }

  private async pools(): Promise<HeldPool[]> {
    const entries = await this.deps.store.list(keys.pools);
    return entries.map((entry) => {
      const record = decode<PoolRecord>(entry);
      return { entry, record, subnet: parseCidr(record.subnet) };
    });
  }

  /** The pool's addresses in use: records, plus the addresses knit hosts hold (these have no record, and are re-marked each time). */
  private async book(subnet: Cidr, range?: Cidr): Promise<AddressBook> {
    const sk = subnetKey(subnet);
    let book = this.books.get(sk);
    if (!book) {
      book = new AddressBook(subnet, range);
      for (const e of await this.deps.store.list(keys.addrs(sk))) {
        book.take(parseIp(e.key.slice(keys.addrs(sk).length)).value);
      }
      this.books.set(sk, book);
    }
    for (const text of this.deps.hostAddresses?.() ?? []) {
      const { family, value } = parseIp(text);
      if (family === subnet.family && book.inSubnet(value)) book.take(value);
    }
    return book;
  }
}

interface HeldPool {
  entry: Entry;
  record: PoolRecord;
  subnet: Cidr;
}
