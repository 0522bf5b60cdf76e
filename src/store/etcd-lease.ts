// An etcd lease kept alive by the client, declared lost as soon as etcd may have dropped it.
import type { Etcd3, Lease as ClientLease } from 'etcd3';
import { badRequest } from '../errors.js';
import type { Lease } from './types.js';
import { bounded, type Target } from './etcd-call.js';

type State = 'alive' | 'lost' | 'ended';

export interface GrantOptions {
  client: Etcd3;
  target: Target;
  ttlSeconds: number;
  /** Called once when the lease stops being kept alive (revoked, released or lost). */
  onEnd: (lease: EtcdLease) => void;
}

export class EtcdLease implements Lease {
  private leaseId = '';
  private state: State = 'alive';
  private readonly callbacks: (() => void)[] = [];
  private watchdog: NodeJS.Timeout | undefined;
  /** When each keepalive still unanswered on the current stream was sent; etcd answers them in order. */
  private pending: number[] = [];
  private confirmedAt = 0;

  private constructor(
    private readonly inner: ClientLease,
    private readonly target: Target,
    readonly ttlSeconds: number,
    private readonly onEnd: (lease: EtcdLease) => void,
  ) {
    // The client only reports a loss after 2 x TTL without contact; etcd expires the lease one TTL after
    // the last keepalive it received, so the watchdog counts from the last keepalive that got an answer.
    inner.on('lost', () => this.lose());
    inner.on('keepaliveEstablished', () => {
      this.pending = [];
    });
    inner.on('keepaliveFired', () => this.pending.push(Date.now()));
    inner.on('keepaliveSucceeded', () => {
      const sentAt = this.pending.shift();
      if (sentAt !== undefined) this.arm(sentAt);
    });
  }

  static async grant({ client, target, ttlSeconds, onEnd }: GrantOptions): Promise<EtcdLease> {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < 1) throw badRequest(`a lease needs a TTL of at least 1 second, not ${ttlSeconds}`);
    const ttl = Math.ceil(ttlSeconds);
    const sentAt = Date.now();
    const lease = new EtcdLease(client.lease(ttl), target, ttl, onEnd);
    try {
      lease.leaseId = await bounded(target, `granting a ${ttl} s lease`, () => lease.inner.grant());
    } catch (err) {
      lease.end();
      throw err;
    }
    lease.arm(sentAt);
    return lease;
  }

  get id(): string {
    return this.leaseId;
  }

  onLost(callback: () => void): void {
    if (this.state === 'lost') queueMicrotask(callback);
    else if (this.state === 'alive') this.callbacks.push(callback);
  }

  /** Our own revoke is not a loss: onLost callbacks do not run. The keys go at once. */
  async revoke(): Promise<void> {
    this.end();
    await bounded(this.target, `revoking lease ${this.leaseId}`, () => this.inner.revoke());
  }

  /** Stops the keepalives (the store is closing); etcd drops the lease and its keys one TTL later. */
  release(): void {
    this.end();
  }

  private stopKeepalive(): void {
    clearTimeout(this.watchdog);
    this.inner.release();
    this.onEnd(this);
  }

  /** etcd holds the lease for one TTL after `confirmedAt` (answers can arrive out of order: keep the latest). */
  private arm(confirmedAt: number): void {
    if (this.state !== 'alive' || confirmedAt < this.confirmedAt) return;
    this.confirmedAt = confirmedAt;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.lose(), confirmedAt + this.ttlSeconds * 1_000 - Date.now());
    this.watchdog.unref();
  }

  private end(): void {
    if (this.state !== 'alive') return;
    this.state = 'ended';
    this.stopKeepalive();
  }

  private lose(): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.stopKeepalive();
    for (const callback of this.callbacks.splice(0)) callback();
  }
}
