// An in-memory copy of every key below a prefix, kept current by a watch: how the names module follows this host's own
// network and endpoint records (the other hosts' names come through HostRecordWatch, names/remote.ts).
import { markPrefix } from '../store/prefix-marker.js';
import type { Store, Watch, WatchEvent } from '../store/types.js';

export class Mirror {
  readonly entries = new Map<string, { value: string; revision: number }>();
  /** Deletions seen while the first listing is on its way, so the listing cannot bring a deleted key back. */
  private deleted? = new Map<string, number>();
  private watch?: Watch;

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    /** Called after every change, with the key and its new value (undefined: deleted). */
    private readonly onChange: (key: string, value: string | undefined) => void,
  ) {}

  /**
   * A listing, then a watch from its newest revision (the cluster stores then also report deletions of listed
   * keys missed during an outage). Where that revision cannot be replayed (nothing listed; the embedded store
   * keeps only the changes since it opened) the watch starts now and a second listing covers the moment
   * between. Per key the newer revision wins.
   */
  async start(): Promise<void> {
    await markPrefix(this.store, this.prefix);
    const first = await this.store.list(this.prefix);
    this.load(first);
    const newest = Math.max(0, ...first.map((e) => e.revision));
    this.watch = newest > 0 ? this.watchFrom(newest) : undefined;
    if (!this.watch) {
      this.watch = this.store.watch(this.prefix, (ev) => this.apply(ev));
      this.load(await this.store.list(this.prefix));
    }
    this.deleted = undefined;
  }

  private watchFrom(revision: number): Watch | undefined {
    try {
      return this.store.watch(this.prefix, (ev) => this.apply(ev), revision);
    } catch {
      return undefined;
    }
  }

  private load(entries: Array<{ key: string; value: string; revision: number }>): void {
    for (const e of entries) {
      const known = this.entries.get(e.key)?.revision ?? this.deleted?.get(e.key) ?? 0;
      if (e.revision > known) this.set(e.key, e.value, e.revision);
    }
  }

  close(): void {
    this.watch?.close();
  }

  private apply(ev: WatchEvent): void {
    if (ev.type === 'put') {
      if (ev.revision > (this.entries.get(ev.key)?.revision ?? 0)) this.set(ev.key, ev.value, ev.revision);
      return;
    }
    this.deleted?.set(ev.key, ev.revision);
    if (this.entries.delete(ev.key)) this.onChange(ev.key, undefined);
  }

  private set(key: string, value: string, revision: number): void {
    // The prefix's own marker (markPrefix) is no entry.
    if (key === this.prefix) return;
    const before = this.entries.get(key)?.value;
    this.entries.set(key, { value, revision });
    if (before !== value) this.onChange(key, value);
  }
}
