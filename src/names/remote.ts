// The other hosts' name records, as a kind of per-host record beside their overlay endpoint records: the watches
// that bring each other host's endpoints on each shared segment bring its names there too (one blocking query per
// host and segment on Consul, not two), and a host gone or a segment left takes its names along.
import { K, parseAnchorKey } from '../network/overlay/keys.js';
import type { HostRecords } from '../network/overlay/watch.js';
import type { Entry, WatchEvent } from '../store/types.js';
import { splitKey } from './records.js';
import type { NameTable } from './table.js';

export class RemoteNames implements HostRecords {
  readonly prefix = K.endpoints;
  /** The table's keys that came from other hosts (the rest are this host's own). */
  private readonly keys = new Set<string>();

  constructor(private readonly table: NameTable) {}

  hostOf(key: string): string | undefined {
    return splitKey(key)?.host;
  }

  async reset(entries: Entry[]): Promise<void> {
    for (const key of this.keys) this.table.set(key, undefined);
    this.keys.clear();
    for (const e of entries) this.set(e.key, e.value);
  }

  change(ev: WatchEvent): void {
    this.set(ev.key, ev.type === 'put' ? ev.value : undefined);
  }

  /** A host's records on a segment, watched no longer (it left the segment, or this host did, or it is gone). */
  forget(partition: string): void {
    const p = parseAnchorKey(partition);
    if (!p) return;
    for (const key of this.keys) {
      const k = splitKey(key);
      if (k?.network === p.segment && k.host === p.host) this.set(key, undefined);
    }
  }

  private set(key: string, value: string | undefined): void {
    if (value === undefined) this.keys.delete(key);
    else this.keys.add(key);
    this.table.set(key, value);
  }
}
