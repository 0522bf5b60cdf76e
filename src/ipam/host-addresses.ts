// Every knit host's own interface addresses, published in the store, so that IPAM never hands one out
// (on a macvlan network the containers share the LAN with the hosts). IPAM never sees a network's driver
// options, so the rule holds for every knit pool.
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store, Watch, WatchEvent } from '../store/types.js';
import { formatIp, parseIp } from '../addr/cidr.js';
import type { AddressBook } from './allocator.js';

export const HOST_ADDRS = 'ipam/host-addrs/';
/**
 * Every host writes its record as it starts: on Consul each watcher then reads every record once per start, and a
 * cluster's start costs N³ record reads. Changes within this time are read together (WatchOptions.settleMs).
 */
const SETTLE_MS = 2_000;

/** Canonical text of an address, or undefined for anything that is not one (a record another host wrote). */
function canonical(text: unknown): string | undefined {
  try {
    const { family, value } = parseIp(String(text));
    return formatIp(family, value);
  } catch {
    return undefined;
  }
}

/**
 * A durable record per host, not one under its lease: a host whose knit is down still holds its addresses.
 * Records of hosts reclaimed as lost go with them (forget).
 */
export class HostAddresses {
  private held: ReadonlySet<string> = new Set();
  /** This host's addresses as last read, and as last published. */
  private mine: string[] = [];
  private published = '';
  /** Every host's, by host ID, kept current by a watch (a host that starts is known at once) and periodic reloads. */
  private byHost = new Map<string, string[]>();
  private watch?: Watch;

  /**
   * `shared`: the store is a cluster store, where the hosts publish their addresses. On the embedded store this
   * host is the only one: its addresses are kept in memory and nothing is written.
   */
  constructor(private readonly deps: {
    store: Store;
    hostId: string;
    own: () => Promise<string[]>;
    /**
     * Addresses that every knit host has alike (the resolver's on lo): held here, never published. They would change
     * every host's record at once, a moment after its start, when the resolver's address is added.
     */
    alike?: string[];
    log: Logger;
    shared: boolean;
  }) {}

  /** Every address any knit host holds, as last read. */
  all(): ReadonlySet<string> {
    return this.held;
  }

  /** Publishes this host's addresses if they changed; the first time, reads every host's and starts watching them. */
  async refresh(): Promise<void> {
    const alike = new Set((this.deps.alike ?? []).flatMap((a) => canonical(a) ?? []));
    const all = [...new Set((await this.deps.own()).flatMap((a) => canonical(a) ?? []))].sort();
    const own = all.filter((a) => !alike.has(a));
    // Kept even when the store is away: this host's IPAM skips them all the same.
    this.mine = [...all, ...alike];
    if (!this.deps.shared) return this.recompute();
    if (own.join() !== this.published) {
      await this.deps.store.commit([{ key: HOST_ADDRS + this.deps.hostId, value: JSON.stringify({ addrs: own, at: new Date().toISOString() }) }]);
      this.published = own.join();
      this.deps.log.info('host addresses published', { addresses: own });
    }
    // Read whole once; from then on the watch keeps the others' records, and the liveness check reads them again
    // once a minute (each sweep reading them too cost every host a read of every host's record every 30 s).
    if (!this.watch) await this.reload();
  }

  /** Reads every host's published addresses, and from then on watches them. */
  async reload(): Promise<void> {
    const byHost = new Map<string, string[]>();
    for (const e of await this.deps.store.list(HOST_ADDRS)) byHost.set(e.key.slice(HOST_ADDRS.length), this.parse(e.key, e.value));
    this.byHost = byHost;
    this.recompute();
    this.watch ??= this.deps.store.watch(HOST_ADDRS, (ev) => this.onEvent(ev), undefined, { settleMs: SETTLE_MS });
  }

  stop(): void {
    this.watch?.close();
  }

  private onEvent(ev: WatchEvent): void {
    const host = ev.key.slice(HOST_ADDRS.length);
    if (ev.type === 'put') this.byHost.set(host, this.parse(ev.key, ev.value));
    else this.byHost.delete(host);
    this.recompute();
  }

  private recompute(): void {
    this.held = new Set([...this.mine, ...[...this.byHost.values()].flat()]);
  }

  private parse(key: string, value: string): string[] {
    try {
      const addrs = (JSON.parse(value) as { addrs?: unknown[] }).addrs ?? [];
      return addrs.flatMap((a) => canonical(a) ?? []);
    } catch (err) {
      this.deps.log.warn('unreadable host address record skipped', { key, error: describe(err) });
      return [];
    }
  }

  /** Hosts reclaimed as lost: their addresses are free again. */
  async forget(hosts: string[]): Promise<void> {
    if (hosts.length) await this.deps.store.commit(hosts.map((h) => ({ key: HOST_ADDRS + h, value: null })));
  }
}

/** Parsed once per set: HostAddresses makes a new set at each change, and allocation reads it on every request. */
const parsed = new WeakMap<ReadonlySet<string>, Array<{ family: 4 | 6; value: bigint }>>();

/** The held addresses as numbers (for the allocators). */
export function heldIps(held: ReadonlySet<string> | undefined): ReadonlyArray<{ family: 4 | 6; value: bigint }> {
  if (!held) return [];
  let ips = parsed.get(held);
  if (!ips) parsed.set(held, (ips = [...held].map((text) => parseIp(text))));
  return ips;
}

/** Marks the held addresses that fall in the book's subnet as taken (they have no record, so a fresh read lacks them). */
export function markHeld(book: AddressBook, held: ReadonlySet<string> | undefined): void {
  for (const { family, value } of heldIps(held)) {
    if (family === book.subnet.family && book.inSubnet(value)) book.take(value);
  }
}
