// Every host's name records as the resolver answers from them: this host's own from what it publishes (at once,
// whether the store has them yet or not), the other hosts' from the cluster store through HostRecordWatch: a
// listing at each connect, then a watch on the whole prefix, or, where a watch reads its whole prefix again at every
// change (Consul), one per partner (another host on a local overlay segment), so that a name change costs each
// other host a read of the changed host's records on that segment, not of every name in the cluster.
import type { HostRecords } from '../network/overlay/watch.js';
import type { Entry, WatchEvent } from '../store/types.js';
import { NAMES, nameAnchor, nameHostOf, splitKey } from './records.js';
import { NameTable } from './table.js';

/** Another host on one of this host's overlay segments (the overlay's Partner). */
export interface NamePartner {
  segment: string;
  host: string;
}

export class NameCache implements HostRecords {
  readonly prefix = NAMES;
  readonly table = new NameTable();
  /** The other hosts' record keys in the table. */
  private readonly others = new Set<string>();
  /** This host's records in the table: key -> value. */
  private readonly own = new Map<string, string>();

  /** `partners`: none without an overlay (then no other host's names are ever asked for). */
  constructor(private readonly partners: () => NamePartner[] = () => []) {}

  hostOf(key: string): string | undefined {
    return nameHostOf(key);
  }

  async reset(entries: Entry[]): Promise<void> {
    const listed = new Set(entries.map((e) => e.key));
    for (const key of [...this.others]) if (!listed.has(key)) this.drop(key);
    for (const e of entries) this.put(e.key, e.value);
  }

  change(ev: WatchEvent): void {
    if (ev.type === 'put') this.put(ev.key, ev.value);
    else this.drop(ev.key);
  }

  partitions(): string[] {
    return this.partners().map((p) => nameAnchor(p.segment, p.host));
  }

  forget(partition: string): void {
    for (const key of [...this.others]) if (key.startsWith(partition)) this.drop(key);
  }

  /** This host's records as it should publish them now: the table shows exactly these of its own. */
  showOwn(desired: ReadonlyMap<string, string>): void {
    for (const key of [...this.own.keys()]) {
      if (desired.has(key)) continue;
      this.own.delete(key);
      this.table.set(key, undefined);
    }
    for (const [key, value] of desired) {
      if (this.own.get(key) === value) continue;
      this.own.set(key, value);
      this.table.set(key, value);
    }
  }

  private put(key: string, value: string): void {
    // Anchors hold no names.
    if (!splitKey(key)) return;
    this.others.add(key);
    this.table.set(key, value);
  }

  private drop(key: string): void {
    if (this.others.delete(key)) this.table.set(key, undefined);
  }
}
