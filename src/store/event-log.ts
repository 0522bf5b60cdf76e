// In-memory change feed for the embedded store: recent events, replay, and watchers.
import type { Watch, WatchEvent } from './types.js';

interface Watcher {
  prefix: string;
  /** Only events newer than this revision reach the watcher. */
  after: number;
  onEvent: (event: WatchEvent) => void;
  closed: boolean;
}

export class EventLog {
  private readonly history: WatchEvent[] = [];
  /** Commits that finished out of revision order wait here until the gap before them fills. */
  private readonly pending = new Map<number, WatchEvent[]>();
  private readonly watchers = new Set<Watcher>();
  /** Events after this revision are all still in `history`. */
  private floor: number;
  private published: number;

  constructor(revision: number, private readonly limit = 10_000) {
    this.floor = revision;
    this.published = revision;
  }

  /** Records the events of a committed revision; they are published in revision order. */
  committed(revision: number, events: WatchEvent[]): void {
    this.pending.set(revision, events);
    for (let next = this.pending.get(this.published + 1); next; next = this.pending.get(this.published + 1)) {
      this.published++;
      this.pending.delete(this.published);
      this.publish(next);
    }
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void, afterRevision?: number): Watch {
    if (afterRevision !== undefined && afterRevision < this.floor) {
      throw new Error(
        `cannot replay changes after revision ${afterRevision}: the local store keeps only changes after ` +
          `revision ${this.floor} (the last ${this.limit} events since it opened); list again and watch from there`,
      );
    }
    const watcher: Watcher = { prefix, after: afterRevision ?? this.published, onEvent, closed: false };
    this.watchers.add(watcher);
    deliver(watcher, this.history);
    return {
      close: () => {
        watcher.closed = true;
        this.watchers.delete(watcher);
      },
    };
  }

  closeAll(): void {
    for (const watcher of this.watchers) watcher.closed = true;
    this.watchers.clear();
  }

  private publish(events: WatchEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) this.history.push(event);
    // Trimmed in slices of a tenth of the limit: dropping one event per commit moved the whole array every time.
    const excess = this.history.length - this.limit;
    if (excess > Math.max(1, this.limit / 10)) {
      this.floor = this.history[excess - 1].revision;
      this.history.splice(0, excess);
    }
    for (const watcher of this.watchers) deliver(watcher, events);
  }
}

/** Hands a watcher its share of `events` on a later microtask, never inside the caller's stack. */
function deliver(watcher: Watcher, events: WatchEvent[]): void {
  const mine = events.filter((e) => e.revision > watcher.after && e.key.startsWith(watcher.prefix));
  if (mine.length === 0) return;
  queueMicrotask(() => {
    for (const event of mine) {
      if (watcher.closed) return;
      watcher.onEvent(event);
    }
  });
}
