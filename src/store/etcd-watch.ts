// A prefix watch that resumes where it stopped after an outage and re-syncs when etcd has compacted past it.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Entry, Watch, WatchEvent } from './types.js';

export interface Snapshot {
  entries: Entry[];
  /** The store revision the entries were read at. */
  revision: number;
}

export interface WatchDeps {
  client: Etcd3;
  root: string;
  prefix: string;
  onEvent: (event: WatchEvent) => void;
  /** The entries below `prefix`, as of `revision` when given (else now). */
  snapshot: (prefix: string, revision?: number) => Promise<Snapshot>;
}

const RESYNC_RETRY_MS = 1_000;
const CANCEL_WAIT_MS = 1_000;

/**
 * etcd cancels a watch whose start lies below its compaction point: that history is gone, and the
 * Store interface has no error channel to say so. The watch re-syncs instead: it reads the prefix
 * and reports what changed since the last event it delivered (a put, at its real revision, for each
 * key modified since; a delete, at the read's revision, for each key it knew that is gone), then
 * watches on from that read. The keys it knows are those present when it began plus those its
 * events put. Any other cancellation by etcd takes the same path.
 */
export class EtcdWatch implements Watch {
  /** The first revision not yet delivered. */
  private next: number;
  private watcher: Watcher | undefined;
  private closed = false;
  private readonly known = new Set<string>();
  private readonly touched = new Set<string>();

  constructor(
    private readonly deps: WatchDeps,
    afterRevision: number,
  ) {
    this.next = afterRevision + 1;
    this.start();
    void this.seed(afterRevision);
  }

  /** Settles once etcd confirmed the cancel, or after a moment: while etcd is away no answer comes. */
  async close(): Promise<void> {
    this.closed = true;
    const watcher = this.watcher;
    this.watcher = undefined;
    if (!watcher) return;
    await Promise.race([watcher.cancel().catch(() => undefined), sleep(CANCEL_WAIT_MS, undefined, { ref: false })]);
  }

  private start(): void {
    const { client, root, prefix } = this.deps;
    const watcher = client.watch().prefix(root + prefix).startRevision(String(this.next)).watcher();
    const key = (kv: IKeyValue): string => kv.key.toString().slice(root.length);
    watcher.on('put', (kv) => this.deliver({ type: 'put', key: key(kv), value: kv.value.toString(), revision: Number(kv.mod_revision) }));
    watcher.on('delete', (kv) => this.deliver({ type: 'delete', key: key(kv), revision: Number(kv.mod_revision) }));
    // The client resumes from the revision in the last header it saw, which for a watch that starts in
    // the past can lie beyond events not yet delivered; resume from the last delivered event instead.
    watcher.on('disconnected', () => {
      watcher.request.start_revision = this.next;
    });
    watcher.on('error', () => {
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      void this.resync();
    });
    this.watcher = watcher;
  }

  private deliver(event: WatchEvent): void {
    if (this.closed) return;
    this.next = event.revision + 1;
    this.touched.add(event.key);
    if (event.type === 'put') this.known.add(event.key);
    else this.known.delete(event.key);
    this.deps.onEvent(event);
  }

  private async seed(afterRevision: number): Promise<void> {
    // Nothing existed before revision 1, and a range at revision 0 would read the present.
    if (afterRevision < 1) return;
    try {
      const { entries } = await this.deps.snapshot(this.deps.prefix, afterRevision);
      for (const entry of entries) if (!this.touched.has(entry.key)) this.known.add(entry.key);
    } catch {
      // Unreadable (compacted already, or etcd away): a later re-sync then reports deletes only for
      // keys this watch's own events put.
    }
  }

  private async resync(): Promise<void> {
    while (!this.closed) {
      let now: Snapshot;
      try {
        now = await this.deps.snapshot(this.deps.prefix);
      } catch {
        await sleep(RESYNC_RETRY_MS, undefined, { ref: false });
        continue;
      }
      if (this.closed) return;
      this.catchUp(now);
      this.start();
      return;
    }
  }

  private catchUp(now: Snapshot): void {
    const present = new Set(now.entries.map((e) => e.key));
    const changed = now.entries.filter((e) => e.revision >= this.next).sort((a, b) => a.revision - b.revision);
    const gone = [...this.known].filter((key) => !present.has(key)).sort();
    for (const e of changed) this.deliver({ type: 'put', key: e.key, value: e.value, revision: e.revision });
    for (const key of gone) this.deliver({ type: 'delete', key, revision: now.revision });
    this.next = now.revision + 1;
  }
}
