// What every IPAM call shares: the store, this host's ID, the per-pool address cache, and the record reads and writes.
import { type Cidr, parseCidr, parseIp, subnetKey } from '../addr/cidr.js';
import type { Logger } from '../log.js';
import { decode, encode } from '../store/records.js';
import { commitInBatches, type Entry, type Store, type Write } from '../store/types.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { AddressBook } from './allocator.js';
import type { BlockBook } from './block-book.js';
import { markHeld } from './host-addresses.js';
import type { PoolSpec } from './pools.js';
import { type AddressKind, type AddressRecord, keys, type PoolRecord } from './records.js';

export interface IpamDeps {
  store: Store;
  /**
   * This host's own store, given when `store` is a cluster store: pools then hand out addresses in blocks, each
   * claimed with one compare-and-set, and this store keeps the ledger of what the host handed out from them.
   */
  local?: Store;
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

/** A pool record as read, with the revision a compare-and-set on it names. */
export interface HeldPool {
  entry: Entry;
  record: PoolRecord;
  subnet: Cidr;
}

export class Ledger {
  /** Taken addresses per subnet key; a cache only: the store's compare-and-set decides. */
  readonly books = new Map<string, AddressBook>();
  /** This host's blocks per subnet key, and its ledger of what it handed out from them (authoritative, not a cache). */
  readonly blockBooks = new Map<string, BlockBook>();
  /** Changes to a pool's set of held blocks (claim, give back, read back) run one at a time per subnet key. */
  readonly blockLocks = new KeyedLock();

  constructor(readonly deps: IpamDeps) {}

  get store(): Store {
    return this.deps.store;
  }

  get hostId(): string {
    return this.deps.hostId;
  }

  async pools(): Promise<HeldPool[]> {
    const entries = await this.store.list(keys.pools);
    return entries.map((entry) => {
      const record = decode<PoolRecord>(entry);
      return { entry, record, subnet: parseCidr(record.subnet) };
    });
  }

  /** The pool's addresses in use: records, plus the addresses knit hosts hold (these have no record, and are re-marked each time). */
  async book(subnet: Cidr, range?: Cidr): Promise<AddressBook> {
    const sk = subnetKey(subnet);
    let book = this.books.get(sk);
    if (!book) {
      book = new AddressBook(subnet, range);
      for (const e of await this.store.list(keys.addrs(sk))) {
        book.take(parseIp(e.key.slice(keys.addrs(sk).length)).value);
      }
      this.books.set(sk, book);
    }
    markHeld(book, this.deps.hostAddresses?.());
    return book;
  }

  /** Claims `ip` for this host: written only if nobody holds it. */
  addressWrite(subnet: Cidr, ip: string, kind: AddressKind): Write {
    const record: AddressRecord = { host: this.hostId, kind, at: new Date().toISOString() };
    return { key: keys.addr(subnetKey(subnet), ip), value: encode(record), expect: 0 };
  }

  /** Writes a pool record with fewer hosts, or deletes it when none is left; null when the record changed since it was read. */
  commitHosts(p: { entry: Entry; record: PoolRecord }, hosts: string[]): Promise<number | null> {
    const value = hosts.length ? encode({ ...p.record, hosts }) : null;
    return this.store.commit([{ key: p.entry.key, value, expect: p.entry.revision }]);
  }

  /** Deletes records unconditionally (they are gone either way), within the store's transaction limit per commit. */
  async deleteAll(entries: Entry[]): Promise<void> {
    await commitInBatches(this.store, entries.map((e) => ({ key: e.key, value: null })));
  }
}
