// A watch on a key prefix: a loop of Consul blocking queries, each answer merged with what was reported into events.
import { RequestContext, type ConsulApi, type KvRead } from './consul-client.js';
import type { Journal } from './consul-journal.js';
import { merge, type Reported } from './consul-merge.js';
import type { Watch, WatchEvent } from './types.js';

/**
 * How long Consul may hold one query; the client waits that plus Consul's jitter (wait/16) and some slack. A query
 * that runs out answers with its whole prefix again, unchanged: with a query per other host and segment, that is
 * the idle load of a cluster, hosts² / wait. 5 min is Consul's own default. The held connection carries no data
 * meanwhile, but TCP keep-alive probes (consul-client.ts, every 30 s) keep it in NAT and layer-4 load balancer
 * tables; an HTTP proxy that ends a request sooner makes the query fail and be asked again at once, reading
 * nothing it missed (it carries its index). A silently dead connection is given up within 5.4 min (a host cut off
 * for longer than its lease starts every watch afresh when it is back).
 */
const WAIT_SECONDS = 300;
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
  client: ConsulApi;
  root: string;
  journal: Journal;
}

export class ConsulWatch implements Watch {
  private closed = false;
  private readonly ctx = new RequestContext();
  private readonly reported = new Map<string, Reported>();
  /** The index to block on; 0 reads at once. */
  private index = 0;
  /** X-Consul-Index of the last answer, to tell when the index went backwards. */
  private lastIndex: number | undefined;
  /** Events have been delivered for every change up to this revision. */
  private covered: number | undefined;
  private tokens = BURST;
  private refilledAt = Date.now();
  private wake: (() => void) | undefined;

  private readonly prefix: string;
  /** The least time from an answer that moved the index to the next read (WatchOptions.settleMs). */
  private readonly settleMs: number;
  private readonly onEvent: (event: WatchEvent) => void;

  constructor(
    private readonly deps: WatchDeps,
    spec: { prefix: string; onEvent: (event: WatchEvent) => void; afterRevision?: number; settleMs?: number },
  ) {
    this.prefix = spec.prefix;
    this.settleMs = spec.settleMs ?? 0;
    this.onEvent = spec.onEvent;
    this.covered = spec.afterRevision;
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
        // Unreachable or failing Consul: keep what was reported and try again. The next read does not block, since
        // the Consul that answers may have lost its data and indexes (a new cluster would hold an old index for the
        // whole wait); its answer is merged with what was reported, so nothing is reported twice.
        this.index = 0;
        await this.pause(Math.min(BACKOFF_FIRST_MS * 2 ** failures++, BACKOFF_MAX_MS));
        continue;
      }
      failures = 0;
      if (this.closed) return;
      // A blocking read answered because its index moved (not the first read, nor a wait that ran out).
      const moved = this.index > 0 && read.index !== this.index;
      const events = this.absorb(read, first);
      first = false;
      for (const event of events) {
        if (this.closed) return;
        this.onEvent(event);
      }
      // Only changes are paced: after the first read or a wait that ran out, the next read blocks at once.
      await this.pause(Math.max(this.throttle(), moved ? this.settleMs : 0));
    }
  }

  private poll(): Promise<KvRead> {
    const blocking = this.index > 0 ? { index: this.index, wait: `${WAIT_SECONDS}s` } : {};
    return this.deps.client.kvRead({ key: this.deps.root + this.prefix, recurse: true, timeout: REQUEST_TIMEOUT_MS, ctx: this.ctx, ...blocking });
  }

  private absorb(read: KvRead, first: boolean): WatchEvent[] {
    const root = this.deps.root.length;
    const state = new Map(read.items.map((i) => [i.Key.slice(root), { value: i.Value ?? '', revision: i.ModifyIndex }]));
    for (const [key, e] of state) this.deps.journal.record(key, e.revision, e.value);
    // An index that went backwards (snapshot restore, reaped tombstones, a new cluster) restarts from 0, and
    // revisions remembered from before it no longer compare with the new ones.
    const backwards = this.lastIndex !== undefined && read.index < this.lastIndex;
    if (backwards) this.deps.journal.clear();
    // An empty prefix answers with the cluster-wide index, early, on every write anywhere (docs/store.md): blocking
    // again at that new index, with nothing to report, is what keeps those answers from becoming a loop.
    this.index = backwards ? 0 : read.index;
    this.lastIndex = read.index;
    const since = this.covered;
    this.covered = read.index;
    if (since === undefined) {
      // A watch from now: the first answer is the baseline, not news.
      for (const [key, e] of state) this.reported.set(key, { revision: e.revision, deleted: false });
      return [];
    }
    return merge({ answer: { index: read.index, state }, since, first, reported: this.reported, facts: this.deps.journal.under(this.prefix) });
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
