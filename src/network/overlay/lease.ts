// This host's lease in the cluster store: its liveness key and every record it publishes live under it, and
// are written again under a new lease after an outage. Records of any kind (endpoints, names, keys) use it.
// Each overlay segment this host has a network on also gets an anchor record under the lease (K.anchor), so that
// the prefix of this host's endpoints there, which other hosts watch on Consul, is never empty.
import { describe, unavailable } from '../../errors.js';
import type { Logger } from '../../log.js';
import { encode } from '../../store/records.js';
import { commitInBatches, type Lease, type Store, type Write } from '../../store/types.js';
import { K } from './keys.js';

export interface HostLeaseDeps {
  cluster: Store;
  hostId: string;
  /** This host's VTEP, written into its liveness key for operators; absent without KNIT_ADVERTISE. */
  vtep?: string;
  log: Logger;
  ttlSeconds: number;
}

/** What the lease is doing, for metrics: held or not, its records, and how often it was granted and lost. */
export interface LeaseStats {
  held: boolean;
  records: number;
  grants: number;
  losses: number;
}

/** Run after every (re)connect, in the order added, with the revision the host's records were written at. */
export type ConnectedHook = (revision: number) => Promise<void>;

/** An anchor's value: nothing to say, but a record like any other. */
const ANCHOR = encode({});
const RETRY_FIRST_MS = 1_000;
const RETRY_MS = 2_000;

export class HostLease {
  private lease?: Lease;
  /** Store key -> value of every record this host publishes: re-written under each new lease. */
  private readonly records = new Map<string, string>();
  /** The overlay segments this host has a network on (each has an anchor). */
  private readonly segments = new Set<string>();
  /** Anchors made or dropped and not in the store yet: they go with the next commit (null deletes). */
  private readonly pending = new Map<string, string | null>();
  private pendingCommits: Promise<void> = Promise.resolve();
  private readonly hooks: ConnectedHook[] = [];
  private stopped = false;
  private reconnecting = false;
  private grants = 0;
  private losses = 0;

  constructor(private readonly deps: HostLeaseDeps) {}

  /** The lease now held; undefined while the store is unreachable or the lease was lost. */
  current(): Lease | undefined {
    return this.lease;
  }

  stats(): LeaseStats {
    return { held: this.lease !== undefined, records: this.records.size, grants: this.grants, losses: this.losses };
  }

  onConnected(hook: ConnectedHook): void {
    this.hooks.push(hook);
  }

  /** A record this host already publishes (known from its local state before start): written at connect. */
  keep(key: string, value: string): void {
    this.records.set(key, value);
  }

  /** Whether `key` is one of this host's records now (a key of ours that is not is stale). */
  owns(key: string): boolean {
    return this.records.has(key);
  }

  /** Writes a record under the lease now, and again after every reconnect. */
  async put(key: string, value: string): Promise<void> {
    const lease = this.lease;
    if (!lease) throw unavailable(`the cluster store (${this.deps.cluster.kind}) is unreachable; this host's records cannot be published until it answers`);
    // Known before it is written: a resync meanwhile must not take it for a stale record of ours.
    this.records.set(key, value);
    try {
      // Unguarded: the commit applies or throws (a lease lost meanwhile is an error, not null).
      await this.commitWithPending(lease, [{ key, value, lease }]);
    } catch (err) {
      if (this.records.get(key) === value) this.records.delete(key);
      throw err;
    }
  }

  /** Forgets a record first (a reconnect does not bring it back), then deletes it. */
  async drop(key: string): Promise<void> {
    this.records.delete(key);
    await this.commitWithPending(this.lease, [{ key, value: null }]);
  }

  /**
   * This host has a network on the segment (or no longer has): its anchor is written (or deleted) with the next
   * commit (flush, or a record's put or drop), and written again after every reconnect.
   */
  joinSegment(segment: string): void {
    if (this.segments.has(segment)) return;
    this.segments.add(segment);
    this.records.set(K.anchor(segment, this.deps.hostId), ANCHOR);
    this.pending.set(K.anchor(segment, this.deps.hostId), ANCHOR);
  }

  leaveSegment(segment: string): void {
    if (!this.segments.delete(segment)) return;
    this.records.delete(K.anchor(segment, this.deps.hostId));
    this.pending.set(K.anchor(segment, this.deps.hostId), null);
  }

  /** Writes the pending anchor changes now; without a lease they wait for the next connect. */
  async flush(): Promise<void> {
    if (this.lease && this.pending.size) await this.commitWithPending(this.lease, []);
  }

  /**
   * `writes` with the pending changes, in one commit; those stay pending if it fails. Commits that carry pending
   * changes go one at a time, so a segment joined and left at once ends with its anchor deleted.
   */
  private async commitWithPending(lease: Lease | undefined, writes: Write[]): Promise<void> {
    if (!lease || !this.pending.size) {
      await this.deps.cluster.commit(writes);
      return;
    }
    const run = this.pendingCommits.then(async () => {
      const extra = [...this.pending];
      await this.deps.cluster.commit([...writes, ...extra.map(([key, value]) => ({ key, value, lease: value === null ? undefined : lease }))]);
      for (const [key, value] of extra) if (this.pending.get(key) === value) this.pending.delete(key);
    });
    this.pendingCommits = run.catch(() => undefined);
    await run;
  }

  /** Connects now, or keeps trying in the background when the store does not answer. */
  async start(): Promise<void> {
    await this.connect().catch((err) => {
      this.deps.log.error('cluster store unreachable at start; this host\'s records follow when it returns', { error: describe(err) });
      this.reconnect();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.lease?.revoke().catch(() => undefined);
  }

  /** Hosts whose lease is alive now (their liveness key exists). */
  async liveHosts(): Promise<Set<string>> {
    return new Set((await this.deps.cluster.list(K.hosts)).map((e) => e.key.slice(K.hosts.length)));
  }

  /** A new lease, the liveness key and every record under it, then the hooks (the watches of the others' records). */
  private async connect(): Promise<void> {
    const lease = await this.deps.cluster.grantLease(this.deps.ttlSeconds);
    const liveness = encode({ vtep: this.deps.vtep, since: new Date().toISOString() });
    // Everything pending is in these writes (a dropped anchor of an old lease goes with it, or as a stale record).
    this.pending.clear();
    const writes: Write[] = [{ key: K.host(this.deps.hostId), value: liveness, lease }];
    for (const [key, value] of this.records) writes.push({ key, value, lease });
    const revision = await commitInBatches(this.deps.cluster, writes);
    this.lease = lease;
    this.grants++;
    lease.onLost(() => {
      this.losses++;
      if (this.lease === lease) this.lease = undefined;
      this.deps.log.warn('cluster lease lost; re-publishing when the store answers', { store: this.deps.cluster.kind });
      this.reconnect();
    });
    for (const hook of this.hooks) await hook(revision);
    this.deps.log.info('cluster lease held', { store: this.deps.cluster.kind, vtep: this.deps.vtep, published: this.records.size });
  }

  private reconnect(): void {
    if (this.reconnecting || this.stopped) return;
    this.reconnecting = true;
    const attempt = (): void => {
      if (this.stopped) return;
      this.connect().then(
        () => (this.reconnecting = false),
        () => setTimeout(attempt, RETRY_MS).unref(),
      );
    };
    setTimeout(attempt, RETRY_FIRST_MS).unref();
  }
}
