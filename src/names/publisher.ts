// This host's name records made to match what it should publish: only the difference is written.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';

/** Where records go: under this host's lease, written again after an outage (HostLease's put and drop). */
export interface RecordSink {
  put(key: string, value: string): Promise<void>;
  drop(key: string): Promise<void>;
}

const RETRY_MS = 1_000;

export class Publisher {
  private readonly published = new Map<string, string>();
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly sink: RecordSink,
    private readonly desired: () => Map<string, string>,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.published.size;
  }

  /** Coalesced: a burst of changes makes one pass (plus one more if changes came during it). */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      if (!(await this.pass())) {
        this.again = true;
        await sleep(RETRY_MS, undefined, { ref: false });
      }
    } while (this.again && !this.stopped);
    this.running = false;
  }

  /** False when a write failed (store away): the whole difference is tried again shortly. */
  private async pass(): Promise<boolean> {
    const want = this.desired();
    const drops = [...this.published.keys()].filter((k) => !want.has(k));
    const puts = [...want].filter(([k, v]) => this.published.get(k) !== v);
    const results = await Promise.allSettled([
      ...drops.map(async (k) => (await this.sink.drop(k), this.published.delete(k))),
      ...puts.map(async ([k, v]) => (await this.sink.put(k, v), this.published.set(k, v))),
    ]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length) this.log.warn('name records not published yet; retrying', { failed: failed.length, error: describe(failed[0].reason) });
    else if (drops.length || puts.length) this.log.debug('name records published', { put: puts.length, dropped: drops.length });
    return failed.length === 0;
  }
}
