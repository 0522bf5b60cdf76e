// A lease as a Consul session: TTL only, Behavior=delete, renewed every TTL/3, declared lost once Consul may have
// dropped it.
import { badRequest } from '../errors.js';
import { bounded, OP_TIMEOUT_MS, type Target } from './consul-call.js';
import type { ConsulApi } from './consul-client.js';
import type { Lease } from './types.js';

type State = 'alive' | 'lost' | 'ended';

/** The Consul a lease lives in. */
interface Consul {
  client: ConsulApi;
  target: Target;
}

/** Between failed renewals: often enough to get one through before the TTL runs out. */
const RETRY_MS = 1_000;

export class ConsulLease implements Lease {
  private state: State = 'alive';
  private readonly callbacks: (() => void)[] = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;

  private constructor(
    private readonly consul: Consul,
    readonly id: string,
    readonly ttlSeconds: number,
  ) {}

  static async grant(consul: Consul, ttlSeconds: number): Promise<ConsulLease> {
    const { client, target } = consul;
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < 1) throw badRequest(`a lease needs a TTL of at least 1 second, not ${ttlSeconds}`);
    const ttl = Math.ceil(ttlSeconds);
    const sentAt = Date.now();
    // A create whose answer is lost leaves a session holding nothing, which expires: so a retry is harmless.
    const id = await bounded({ target, what: `creating a ${ttl} s session`, mode: 'idempotent' }, (timeout) => client.createSession(ttl, timeout));
    const lease = new ConsulLease(consul, id, ttl);
    lease.confirmed(sentAt);
    return lease;
  }

  onLost(callback: () => void): void {
    if (this.state === 'lost') queueMicrotask(callback);
    else if (this.state === 'alive') this.callbacks.push(callback);
  }

  /** Our own revoke is not a loss: onLost callbacks do not run. Consul deletes the session's keys at once. */
  async revoke(): Promise<void> {
    this.end();
    // Destroying an unknown session still answers true, so sending it again is safe.
    const { client, target } = this.consul;
    await bounded({ target, what: `destroying session ${this.id}`, mode: 'idempotent' }, (timeout) => client.destroySession(this.id, timeout));
  }

  /** Stops renewing (the store is closing); Consul drops the session and its keys after TTL to 2 x TTL. */
  release(): void {
    this.end();
  }

  private get periodMs(): number {
    return (this.ttlSeconds * 1_000) / 3;
  }

  /** Consul counts the TTL from the renewal it received; counting from when ours was sent errs on the safe side. */
  private confirmed(sentAt: number): void {
    if (this.state !== 'alive') return;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.lose(), sentAt + this.ttlSeconds * 1_000 - Date.now());
    this.watchdog.unref();
    this.schedule(this.periodMs);
  }

  private schedule(ms: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), ms);
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    if (this.state !== 'alive') return;
    const sentAt = Date.now();
    try {
      await this.consul.client.renewSession(this.id, Math.min(OP_TIMEOUT_MS, this.periodMs));
      this.confirmed(sentAt);
    } catch (err) {
      // 404: Consul no longer knows the session (expired, destroyed, or a new cluster).
      if ((err as { response?: { statusCode?: number } }).response?.statusCode === 404) this.lose();
      else if (this.state === 'alive') this.schedule(Math.min(RETRY_MS, this.periodMs));
    }
  }

  private end(): void {
    if (this.state === 'alive') this.state = 'ended';
    clearTimeout(this.renewTimer);
    clearTimeout(this.watchdog);
  }

  private lose(): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    clearTimeout(this.renewTimer);
    clearTimeout(this.watchdog);
    for (const callback of this.callbacks.splice(0)) callback();
  }
}
