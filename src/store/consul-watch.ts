// A watch on a key prefix: a loop of Consul blocking queries, each answer diffed against the last into events.
import { kvRead, RequestContext, type ConsulClient, type KvRead } from './consul-client.js';
import type { Sightings } from './consul-sightings.js';
import type { Watch, WatchEvent } from './types.js';

/** How long Consul may hold one query; the client waits that plus Consul's jitter (wait/16) and some slack. */
const WAIT_SECONDS = 30;
const REQUEST_TIMEOUT_MS = WAIT_SECONDS * 1_000 * (17 / 16) + 4_000;
/** Retry pacing while Consul is unreachable: fast enough to resume within seconds of its return. */
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/**
 * blocking.mdx asks clients to rate-limit the loop, since an index can move without the data changing. A burst
 * keeps quick successive changes apart (a slow re-poll would merge them); the refill bounds a busy loop.
 */
const BURST = 20;
const REFILL_PER_SECOND = 10;

export interface WatchDeps {
  client: ConsulClient;
  root: string;
  sightings: Sightings;
}

interface Seen {
  value: string;
  revision: number;
}

export class ConsulWatch implements Watch {
  private closed = false;
  private readonly ctx = new RequestContext();
  private known = new Map<string, Seen>();
  private index = 0;
  private tokens = BURST;
  private refilledAt = Date.now();
  private wake: (() => void) | undefined;

  constructor(
    private readonly deps: WatchDeps,
    private readonly prefix: string,
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly afterRevision: number | undefined,
  ) {
    void this.run();
  }

  close(): void {
    this.closed = true;
    this.ctx.emit('cancel');
    this.wake?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let first = true;
    while (!this.closed) {
      let read: KvRead;
      try {
        read = await this.poll();
      } catch {
        // Unreachable or failing Consul: keep the last index and data, and try again; the next answer is diffed.
        await this.pause(Math.min(BACKOFF_FIRST_MS * 2 ** failures++, BACKOFF_MAX_MS));
        continue;
      }
      failures = 0;
      if (this.closed) return;
      const events = first ? this.replay(read) : this.diff(read);
      first = false;
      // An index that went backwards (snapshot restore, reaped tombstones, a new cluster) restarts from 0.
      this.index = read.index < this.index ? 0 : read.index;
      for (const event of events) {
        if (this.closed) return;
        this.onEvent(event);
      }
      await this.pause(this.throttle());
    }
  }

  private poll(): Promise<KvRead> {
    const blocking = this.index > 0 ? { index: this.index, wait: `${WAIT_SECONDS}s` } : {};
    return kvRead(this.deps.client, { key: this.deps.root + this.prefix, recurse: true, timeout: REQUEST_TIMEOUT_MS, ctx: this.ctx, ...blocking });
  }

  private current(read: KvRead): Map<string, Seen> {
    const root = this.deps.root.length;
    return new Map(read.items.map((i) => [i.Key.slice(root), { value: i.Value ?? '', revision: i.ModifyIndex }]));
  }

  /** The first answer: entries changed after afterRevision, and deletes this process saw or can infer since. */
  private replay(read: KvRead): WatchEvent[] {
    const now = this.current(read);
    const events: WatchEvent[] = [];
    if (this.afterRevision !== undefined) {
      const after = this.afterRevision;
      for (const [key, s] of this.deps.sightings.under(this.prefix)) {
        if (now.has(key)) continue;
        // Seen present before this read and missing from it: deleted since (perhaps before afterRevision, which a
        // caller's view then already lacks). Seen after this read was served: it is for the next answer to tell.
        if (!s.deleted && s.revision <= read.index) events.push({ type: 'delete', key, revision: read.index });
        else if (s.revision > after) events.push({ type: 'delete', key, revision: s.revision });
      }
      for (const [key, e] of now) if (e.revision > after) events.push({ type: 'put', key, value: e.value, revision: e.revision });
    }
    return this.settle(read, now, events);
  }

  private diff(read: KvRead): WatchEvent[] {
    const now = this.current(read);
    const events: WatchEvent[] = [];
    for (const [key, e] of now) {
      if (this.known.get(key)?.revision !== e.revision) events.push({ type: 'put', key, value: e.value, revision: e.revision });
    }
    for (const key of this.known.keys()) {
      if (now.has(key)) continue;
      // A delete made here has its exact index; one made elsewhere is known only to precede this answer.
      const s = this.deps.sightings.get(key);
      const exact = s?.deleted && s.revision > this.index && s.revision <= read.index;
      events.push({ type: 'delete', key, revision: exact ? s.revision : read.index });
    }
    return this.settle(read, now, events);
  }

  private settle(read: KvRead, now: Map<string, Seen>, events: WatchEvent[]): WatchEvent[] {
    this.known = now;
    this.deps.sightings.snapshot(this.prefix, new Map([...now].map(([k, e]) => [k, e.revision])), read.index);
    // Within one revision a key is either deleted or written, never both; deletes go first, as a txn lists them.
    return events.sort((a, b) => a.revision - b.revision || (a.type === b.type ? (a.key < b.key ? -1 : 1) : a.type === 'delete' ? -1 : 1));
  }

  private throttle(): number {
    const now = Date.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilledAt) / 1_000) * REFILL_PER_SECOND);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) / REFILL_PER_SECOND) * 1_000;
  }

  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
