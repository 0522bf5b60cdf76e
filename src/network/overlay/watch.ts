// The other hosts' records, one kind per prefix: a full listing after every (re)connect, then a watch from
// the revision this host's own records were written at. This host's stale records are deleted on the way.
import type { Logger } from '../../log.js';
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
}

export class HostRecordWatch {
  private readonly kinds: HostRecords[] = [];
  private readonly watches = new Map<string, Watch>();

  constructor(private readonly deps: { cluster: Store; hostId: string; lease: HostLease; log: Logger }) {
    deps.lease.onConnected((revision) => this.resync(revision));
  }

  /** Before HostLease.start: a kind added later is first listed at the next reconnect. */
  add(kind: HostRecords): void {
    this.kinds.push(kind);
  }

  close(): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
  }

  private async resync(revision: number): Promise<void> {
    for (const kind of this.kinds) {
      const others = await this.dropStale(kind, await this.deps.cluster.list(kind.prefix));
      await kind.reset(others);
      this.watches.get(kind.prefix)?.close();
      this.watches.set(kind.prefix, this.deps.cluster.watch(kind.prefix, (ev) => this.dispatch(kind, ev), revision));
    }
  }

  /** Deletes this host's records the lease does not hold (left by a crash); returns the other hosts' records. */
  private async dropStale(kind: HostRecords, entries: Entry[]): Promise<Entry[]> {
    const others: Entry[] = [];
    const stale: string[] = [];
    for (const e of entries) {
      const host = kind.hostOf(e.key);
      if (host === undefined) continue;
      if (host !== this.deps.hostId) others.push(e);
      else if (!this.deps.lease.owns(e.key)) stale.push(e.key);
    }
    if (stale.length) {
      await commitInBatches(this.deps.cluster, stale.map((key) => ({ key, value: null })));
      this.deps.log.info('stale records of this host deleted', { prefix: kind.prefix, count: stale.length });
    }
    return others;
  }

  private dispatch(kind: HostRecords, ev: WatchEvent): void {
    const host = kind.hostOf(ev.key);
    if (host !== undefined && host !== this.deps.hostId) kind.change(ev);
  }
}
