// The one key-value interface every backend implements (embedded LMDB, etcd, Consul).
//
// Keys are slash-separated strings below a backend-specific root; values are strings
// (JSON records are encoded one layer up, in records.ts). Every entry carries the
// revision of its last modification, monotonically increasing across the whole store,
// so a compare-and-set can name exactly the version it read.
import { KnitError } from '../errors.js';

/**
 * The most operations one commit may hold in every backend: Consul refuses a transaction of more than 64
 * operations (HTTP 413); etcd's default limit (--max-txn-ops) is 128; the embedded store has none.
 */
export const MAX_TXN_OPS = 64;

/**
 * The most writes one commit may hold whatever they are: in Consul's verbs a write takes at most three
 * operations (a guard, a delete, a set or lock).
 */
export const MAX_WRITES_PER_COMMIT = Math.floor(MAX_TXN_OPS / 3);

export interface Entry {
  key: string;
  value: string;
  /** Revision of the last change to this key (etcd mod_revision, Consul ModifyIndex). */
  revision: number;
}

/**
 * One step of an atomic commit. `value: null` deletes the key.
 * `expect` is a compare-and-set guard: undefined = unconditional, 0 = the key must not
 * exist, n > 0 = the key's revision must be exactly n.
 */
export interface Write {
  key: string;
  value: string | null;
  expect?: number;
  /** Attach the key to a lease: it disappears when the lease expires (cluster stores). */
  lease?: Lease;
}

/** A guard that writes nothing: the key's revision must be `expect` (0 = absent). */
export interface Check {
  key: string;
  expect: number;
}

export type WatchEvent =
  | { type: 'put'; key: string; value: string; revision: number }
  | { type: 'delete'; key: string; revision: number };

export interface Watch {
  close(): void;
}

export interface Lease {
  readonly id: string;
  readonly ttlSeconds: number;
  /** Called once if the lease is lost (expired or revoked by the store). */
  onLost(callback: () => void): void;
  revoke(): Promise<void>;
}

export interface WatchOptions {
  /**
   * Where a watch reads its whole prefix again at every change (watchRereadsPrefix), the least time from one read's
   * answer to the next read: changes within it are read together, the first after a quiet spell at once. For
   * prefixes with a record per host that change together (every host's start): without it each of N hosts reads
   * N records N times while N hosts start. Ignored where a watch receives each change alone.
   */
  settleMs?: number;
}

export interface Store {
  /** A short name for logs and errors: "local", "etcd", "consul". */
  readonly kind: string;
  /**
   * Whether a watch reads its whole prefix again at every change below it (Consul's blocking queries) rather than
   * receiving the change alone (etcd, the embedded store). Callers then watch narrow prefixes (docs/store.md).
   */
  readonly watchRereadsPrefix: boolean;
  get(key: string): Promise<Entry | undefined>;
  /** Every entry whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<Entry[]>;
  /**
   * Apply all writes atomically, only if every guard holds (each write's `expect` and
   * each check). Returns the new revision, or null when a guard failed (nothing written).
   */
  commit(writes: Write[], checks?: Check[]): Promise<number | null>;
  /**
   * Call `onEvent` for every change below `prefix` made after `afterRevision`
   * (default: changes from now on). Events arrive in revision order.
   */
  watch(prefix: string, onEvent: (event: WatchEvent) => void, afterRevision?: number, options?: WatchOptions): Watch;
  /** A lease kept alive by the backend until revoked or lost. */
  grantLease(ttlSeconds: number): Promise<Lease>;
  close(): Promise<void>;
}

/** Convenience wrappers over commit for the single-key cases. */
export async function put(store: Store, key: string, value: string, expect?: number): Promise<number | null> {
  return store.commit([{ key, value, expect }]);
}

export async function remove(store: Store, key: string, expect?: number): Promise<boolean> {
  return (await store.commit([{ key, value: null, expect }])) !== null;
}

/**
 * Unguarded writes too many for one commit, committed in consecutive commits of MAX_WRITES_PER_COMMIT (not
 * atomically as a whole). Returns the revision of the last one. A guarded write here is a mistake: its guard
 * could hold in one batch and fail in another.
 */
export async function commitInBatches(store: Store, writes: Write[]): Promise<number> {
  if (writes.some((w) => w.expect !== undefined)) throw new KnitError('internal', 'commitInBatches takes unguarded writes only');
  let revision = 0;
  for (let i = 0; i < writes.length; i += MAX_WRITES_PER_COMMIT) {
    const done = await store.commit(writes.slice(i, i + MAX_WRITES_PER_COMMIT));
    // Without a guard a commit either applies or throws; null here means the backend broke its contract.
    if (done === null) throw new KnitError('internal', `the ${store.kind} store refused unguarded writes as if a guard had failed`);
    revision = done;
  }
  return revision;
}
