// Name records written under a lease of their own and written again under a new one after an outage (a dead
// host's names go with its lease). Stands in for the overlay's host lease where that one is not available.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, unavailable } from '../errors.js';
import type { Logger } from '../log.js';
import type { Lease, Store, Write } from '../store/types.js';
import type { RecordSink } from './publisher.js';

const RETRY_MS = 2_000;
const BATCH = 32;

export class LeaseSink implements RecordSink {
  private lease?: Lease;
  private readonly records = new Map<string, string>();
  private stopped = false;

  constructor(private readonly deps: { store: Store; ttlSeconds: number; log: Logger }) {}

  /** Returns at once; the lease (and every record under it) follows whenever the store answers. */
  start(): void {
    void this.connect();
  }

  async put(key: string, value: string): Promise<void> {
    const lease = this.lease;
    if (!lease) throw unavailable(`the ${this.deps.store.kind} store is unreachable; name records wait for it`);
    this.records.set(key, value);
    await this.deps.store.commit([{ key, value, lease }]);
  }

  async drop(key: string): Promise<void> {
    this.records.delete(key);
    await this.deps.store.commit([{ key, value: null }]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.lease?.revoke().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    for (let failures = 0; !this.stopped; failures++) {
      try {
        const lease = await this.deps.store.grantLease(this.deps.ttlSeconds);
        const writes: Write[] = [...this.records].map(([key, value]) => ({ key, value, lease }));
        for (let i = 0; i < writes.length; i += BATCH) await this.deps.store.commit(writes.slice(i, i + BATCH));
        this.lease = lease;
        lease.onLost(() => {
          if (this.lease === lease) this.lease = undefined;
          void this.connect();
        });
        return;
      } catch (err) {
        if (failures === 0) this.deps.log.warn('no lease for name records yet; retrying', { store: this.deps.store.kind, error: describe(err) });
        await sleep(RETRY_MS, undefined, { ref: false });
      }
    }
  }
}
