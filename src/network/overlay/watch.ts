// The other hosts' records, one kind per prefix: a full listing after every (re)connect, then a watch from
// the revision this host's own records were written at. This host's stale records are deleted on the way.
//
// Where a watch reads its whole prefix again at every change (Consul), a kind with many records per host watches
// narrower prefixes instead, which it names (`partitions`: Peers, one per other host and local segment), so that a
// change costs each other host a read of the changed host's records there, not of the whole cluster's.
//
// Kinds with the same prefix share its listings and watches (one blocking query, so one connection, per partition
// on Consul): each gets the records whose keys it claims (`hostOf`). Overlay endpoints' name records live beside
// the endpoint records for this reason (names/remote.ts).
import type { Logger } from '../../log.js';
import { markPrefix } from '../../store/prefix-marker.js';
import { commitInBatches, type Entry, type Store, type Watch, type WatchEvent } from '../../store/types.js';
import type { HostLease } from './lease.js';

/** One kind of per-host record (overlay endpoints; later names, WireGuard keys) and what consumes the others'. */
export interface HostRecords {
  /** Every record of the kind is below it, written under its host's lease. */
  prefix: string;
  /** The host that wrote the record at `key`; undefined for a key that is not a record of this kind. */
  hostOf(key: string): string | undefined;
  /** All the other hosts' records, after each (re)connect: replaces what the consumer knew. */
  reset(entries: Entry[]): Promise<void>;
  /** One change to another host's record, in revision order. */
  change(event: WatchEvent): void;
  /** Where watches re-read their prefix: the prefixes below `prefix` that hold every record this host needs now. */
  partitions?(): string[];
  /** A partition watched no longer: forget what it held. */
  forget?(partition: string): void;
  /** WatchOptions.settleMs of the kind's watches: for kinds that every host's start changes at once. */
  settleMs?: number;
}

/** The kinds below one prefix, and its watches. */
interface Watched {
  prefix: string;
  kinds: HostRecords[];
  /** Prefix (the kinds' own, or each partition) -> its watch. */
  watches: Map<string, Watch>;
  /** Partitions whose records the kind forgot since the last listing: watched again from revision 0. */
  forgotten: Set<string>;
}

/**
 * Where watches re-read their prefix (Consul), each is a blocking query holding an HTTP connection of its own; past
 * this many, a warning: Consul's agent refuses connections beyond `limits.http_max_conns_per_client` (200 by default)
 * from one address, and the liveness, pool and address watches need a few more.
 */
export const CONNECTION_WARNING = 160;

export class HostRecordWatch {
  private readonly kinds: Watched[] = [];
  private connected = false;
  /** The revision of the last listing: what each kind knows is exact up to it. */
  private revision = 0;
  private warned = false;

  constructor(private readonly deps: { cluster: Store; hostId: string; lease: HostLease; log: Logger; warnAbove?: number }) {
    deps.lease.onConnected((revision) => this.resync(revision));
  }

  /** Before HostLease.start: a kind added later is first listed at the next reconnect. */
  add(kind: HostRecords): void {
    const group = this.kinds.find((w) => w.prefix === kind.prefix);
    if (group) group.kinds.push(kind);
    else this.kinds.push({ prefix: kind.prefix, kinds: [kind], watches: new Map(), forgotten: new Set() });
  }

  close(): void {
    this.connected = false;
    for (const w of this.kinds) this.closeAll(w);
  }

  /**
   * A kind's partitions may have changed (hosts came or went, segments were joined or left): watches stop on the old
   * ones, whose records the kind forgets, and start on the new ones: from the last listing, which the kind knows
   * (so nothing it holds is removed and added again), or from revision 0 for one it forgot since.
   */
  refresh(): void {
    if (!this.connected) return;
    for (const w of this.kinds) {
      if (!this.partitioned(w)) continue;
      const want = new Set(this.partitionsOf(w));
      for (const [prefix, watch] of w.watches) {
        if (want.has(prefix)) continue;
        watch.close();
        w.watches.delete(prefix);
        for (const kind of w.kinds) kind.forget?.(prefix);
        w.forgotten.add(prefix);
      }
      for (const prefix of want) {
        if (w.watches.has(prefix)) continue;
        // From revision 0 the first answer reports every record there as a put.
        const from = w.forgotten.delete(prefix) ? 0 : this.revision;
        w.watches.set(prefix, this.watchOf(w, prefix, from));
      }
    }
    this.countConnections();
  }

  /** How many watches are open now. */
  watches(): number {
    return this.kinds.reduce((n, w) => n + w.watches.size, 0);
  }

  private countConnections(): void {
    if (!this.deps.cluster.watchRereadsPrefix) return;
    const open = this.watches();
    const limit = this.deps.warnAbove ?? CONNECTION_WARNING;
    if (open <= limit) {
      this.warned = false;
    } else if (!this.warned) {
      this.warned = true;
      this.deps.log.warn(`this host holds ${open} blocking queries to ${this.deps.cluster.kind}, one connection each (one per other host and shared overlay segment): ` +
        "Consul's agent refuses connections beyond limits.http_max_conns_per_client (200 by default); raise it on the agents knit uses", { watches: open });
    }
  }

  /** Watched in partitions: where watches re-read their prefix and a kind there names them. */
  private partitioned(w: Watched): boolean {
    return this.deps.cluster.watchRereadsPrefix && w.kinds.some((k) => k.partitions !== undefined);
  }

  /** Every partition a kind of the group needs (a kind that names none gets the records of the others'). */
  private partitionsOf(w: Watched): string[] {
    return [...new Set(w.kinds.flatMap((k) => k.partitions?.() ?? []))];
  }

  private async resync(revision: number): Promise<void> {
    this.connected = false;
    this.revision = revision;
    for (const w of this.kinds) {
      w.forgotten.clear();
      const others = await this.dropStale(w, await this.deps.cluster.list(w.prefix));
      for (const kind of w.kinds) await kind.reset(others.filter((e) => kind.hostOf(e.key) !== undefined));
      this.closeAll(w);
      if (!this.partitioned(w)) await markPrefix(this.deps.cluster, w.prefix);
      const prefixes = this.partitioned(w) ? this.partitionsOf(w) : [w.prefix];
      for (const prefix of prefixes) w.watches.set(prefix, this.watchOf(w, prefix, revision));
    }
    this.connected = true;
    // Kinds reset after a partitioned one (the hosts it watches come from LiveHosts) may have changed its partitions.
    this.refresh();
  }

  private watchOf(w: Watched, prefix: string, from: number): Watch {
    const settle = w.kinds.map((k) => k.settleMs ?? 0);
    return this.deps.cluster.watch(prefix, (ev) => this.dispatch(w, ev), from, { settleMs: Math.max(...settle) || undefined });
  }

  private closeAll(w: Watched): void {
    for (const watch of w.watches.values()) watch.close();
    w.watches.clear();
  }

  /** Deletes this host's records the lease does not hold (left by a crash); returns the other hosts' records. */
  private async dropStale(w: Watched, entries: Entry[]): Promise<Entry[]> {
    const others: Entry[] = [];
    const stale: string[] = [];
    for (const e of entries) {
      const host = hostOf(w, e.key);
      if (host === undefined) continue;
      if (host !== this.deps.hostId) others.push(e);
      else if (!this.deps.lease.owns(e.key)) stale.push(e.key);
    }
    if (stale.length) {
      await commitInBatches(this.deps.cluster, stale.map((key) => ({ key, value: null })));
      this.deps.log.info('stale records of this host deleted', { prefix: w.prefix, count: stale.length });
    }
    return others;
  }

  private dispatch(w: Watched, ev: WatchEvent): void {
    for (const kind of w.kinds) {
      const host = kind.hostOf(ev.key);
      if (host !== undefined && host !== this.deps.hostId) kind.change(ev);
    }
  }
}

/** The host of a record of any kind of the group. */
function hostOf(w: Watched, key: string): string | undefined {
  for (const kind of w.kinds) {
    const host = kind.hostOf(key);
    if (host !== undefined) return host;
  }
  return undefined;
}
