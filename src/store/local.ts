// The embedded single-host store: an LMDB environment in the state directory.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { open, type Database, type RootDatabase } from 'lmdb';
import { KnitError, unavailable } from '../errors.js';
import { EventLog } from './event-log.js';
import { keyBytes, prefixRange, validateExpect } from './local-keys.js';
import type { Check, Entry, Lease, Store, Watch, WatchEvent, Write } from './types.js';

const REVISION = 'revision';
/** How often buffered commits are flushed to disk when commits do not sync (see openLocalStore). */
const FLUSH_INTERVAL_MS = 1000;

/** A stored entry: its value, the revision of its last change, and the lease it belongs to. */
type Stored = [value: string, revision: number, lease?: string];
/** What one transaction did; `events` is absent when nothing was written (a check-only commit). */
type Applied = { revision: number; events?: WatchEvent[] };

/**
 * Opens (creating if needed) the store in `dir`.
 *
 * Every commit is one LMDB write transaction, so a process killed at any moment loses no
 * commit that resolved and never leaves one half applied. With `sync: true` each commit is
 * also fsynced before it resolves (safe against power loss), and fsync bounds how many
 * one-at-a-time commits go through (bench/RESULTS.md has the figures). The default, `sync: false`
 * (LMDB's noSync), leaves commits in the OS page cache (a process crash loses nothing) and flushes
 * them every second and at close, so an OS crash or power cut can lose the last second of commits.
 * Without sync the environment is also opened with a write map: a commit writes its pages into the
 * shared mapping instead of issuing lseek/writev/pwrite for each, most of the system calls of an
 * IPAM call; a killed process still leaves every resolved commit in the page cache.
 */
export async function openLocalStore(dir: string, opts: { sync?: boolean } = {}): Promise<Store> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const sync = opts.sync ?? false;
  // overlappingSync is fixed when the environment is created, and it would stop a directory from
  // being reopened with the other `sync` setting; noSync is chosen afresh at each open.
  const root = open<unknown, string>(dir, { maxDbs: 3, noSubdir: false, overlappingSync: false, noSync: !sync, useWritemap: !sync });
  const store = new LocalStore(root, sync);
  await store.dropOrphanedLeases();
  return store;
}

class LocalStore implements Store {
  readonly kind = 'local';
  readonly watchRereadsPrefix = false;
  private readonly kv: Database<Stored, Buffer>;
  private readonly meta: Database<number, string>;
  /** `<lease id>/<key>` for every key attached to a lease, so a revoke finds its keys with a range scan. */
  private readonly leased: Database<true, Buffer>;
  private readonly liveLeases = new Set<string>();
  private readonly events: EventLog;
  private readonly flusher?: NodeJS.Timeout;
  private unflushed = false;
  private flushError: unknown;
  private closed = false;
  private readonly queued: Array<{ body: () => Applied | null; resolve: (revision: number | null) => void; reject: (err: unknown) => void }> = [];

  constructor(private readonly root: RootDatabase<unknown, string>, sync: boolean) {
    this.kv = root.openDB<Stored, Buffer>({ name: 'kv', encoding: 'json', keyEncoding: 'binary' });
    this.meta = root.openDB<number, string>({ name: 'meta', encoding: 'json' });
    this.leased = root.openDB<true, Buffer>({ name: 'leased', encoding: 'json', keyEncoding: 'binary' });
    this.events = new EventLog(this.meta.get(REVISION) ?? 0);
    if (!sync) this.flusher = setInterval(() => this.flushInBackground(), FLUSH_INTERVAL_MS).unref();
  }

  async get(key: string): Promise<Entry | undefined> {
    this.assertOpen();
    const stored = this.kv.get(keyBytes(key));
    return stored && { key, value: stored[0], revision: stored[1] };
  }

  async list(prefix: string): Promise<Entry[]> {
    this.assertOpen();
    if (prefix !== '') keyBytes(prefix);
    const range = this.kv.getRange(prefixRange(prefix));
    return range.map(({ key, value }) => ({ key: key.toString('utf8'), value: value[0], revision: value[1] })).asArray;
  }

  async commit(writes: Write[], checks: Check[] = []): Promise<number | null> {
    this.assertOpen();
    this.validate(writes, checks);
    return this.run(() => this.apply(writes, checks));
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void, afterRevision?: number): Watch {
    this.assertOpen();
    return this.events.watch(prefix, onEvent, afterRevision);
  }

  /** Leases here never expire (one host: the holder is this process), so onLost never fires. */
  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.assertOpen();
    if (!(ttlSeconds > 0)) throw new KnitError('internal', `a lease needs a positive TTL, got ${ttlSeconds}`);
    const id = randomUUID();
    this.liveLeases.add(id);
    return { id, ttlSeconds, onLost: () => undefined, revoke: () => this.revoke(id) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.runQueued();
    this.closed = true;
    clearInterval(this.flusher);
    this.events.closeAll();
    if (this.flusher !== undefined) {
      await this.root.committed;
      await this.flush();
    }
    await this.root.close();
  }

  /**
   * A lease cannot outlive the process that holds it, so keys left attached to one by an
   * earlier run are deleted at open, as a cluster store deletes them when the lease expires.
   */
  async dropOrphanedLeases(): Promise<void> {
    await this.run(() => this.deleteLeased(''));
  }

  private async revoke(id: string): Promise<void> {
    if (this.closed || !this.liveLeases.delete(id)) return;
    await this.run(() => this.deleteLeased(`${id}/`));
  }

  private deleteLeased(prefix: string): Applied | null {
    const keys = Array.from(this.leased.getKeys(prefixRange(prefix)), (k) => {
      const text = k.toString('utf8');
      return text.slice(text.indexOf('/') + 1);
    });
    return keys.length === 0 ? null : this.apply(keys.map((key) => ({ key, value: null })), []);
  }

  /**
   * Runs `body` in a write transaction and publishes what it wrote once it is committed. Commits
   * queued in the same turn of the event loop share one LMDB transaction (each still checks its own
   * guards, in order, and gets its own revision): under concurrent calls the per-transaction cost is paid once.
   */
  private run(body: () => Applied | null): Promise<number | null> {
    if (this.flushError !== undefined) {
      const cause = this.flushError;
      this.flushError = undefined;
      return Promise.reject(unavailable('the local store could not flush earlier commits to disk; check the disk holding KNIT_STATE_DIR (free space, I/O errors)', cause));
    }
    return new Promise((resolve, reject) => {
      this.queued.push({ body, resolve, reject });
      if (this.queued.length === 1) setImmediate(() => this.runQueued());
    });
  }

  /**
   * Synchronous: with noSync a write transaction is far cheaper than the thread hand-off lmdb's
   * async batching adds to every commit, which sequential IPAM calls would each pay.
   */
  private runQueued(): void {
    const jobs = this.queued.splice(0);
    if (jobs.length === 0) return;
    const results: Array<{ applied: Applied | null } | { error: unknown }> = [];
    try {
      this.root.transactionSync(() => {
        for (const job of jobs) {
          try {
            results.push({ applied: job.body() });
          } catch (error) {
            results.push({ error });
          }
        }
      });
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    jobs.forEach((job, i) => {
      const r = results[i];
      if ('error' in r) return job.reject(r.error);
      const applied = r.applied;
      if (applied === null) return job.resolve(null);
      if (applied.events !== undefined) {
        this.unflushed = true;
        this.events.committed(applied.revision, applied.events);
      }
      job.resolve(applied.revision);
    });
  }

  /**
   * The body of a commit, inside the write transaction. lmdb commits whatever a callback wrote
   * even if it throws afterwards, so every guard is checked before the first write and nothing
   * here may throw (inputs were validated before the transaction was queued).
   */
  private apply(writes: Write[], checks: Check[]): Applied | null {
    const guards: Check[] = [...checks];
    for (const w of writes) if (w.expect !== undefined) guards.push({ key: w.key, expect: w.expect });
    if (!guards.every((g) => (this.kv.get(keyBytes(g.key))?.[1] ?? 0) === g.expect)) return null;
    const current = this.meta.get(REVISION) ?? 0;
    // A check-only commit changes nothing, so (as in etcd) it names the current revision.
    if (writes.length === 0) return { revision: current };
    const revision = current + 1;
    const events = writes.flatMap((w) => this.applyWrite(w, revision));
    this.meta.putSync(REVISION, revision);
    return { revision, events };
  }

  private applyWrite(write: Write, revision: number): WatchEvent[] {
    const { key, value } = write;
    const k = keyBytes(key);
    const old = this.kv.get(k);
    if (old?.[2] !== undefined) this.leased.removeSync(keyBytes(`${old[2]}/${key}`, false));
    if (value === null) {
      if (old === undefined) return [];
      this.kv.removeSync(k);
      return [{ type: 'delete', key, revision }];
    }
    const lease = write.lease?.id;
    this.kv.putSync(k, lease === undefined ? [value, revision] : [value, revision, lease]);
    if (lease !== undefined) this.leased.putSync(keyBytes(`${lease}/${key}`, false), true);
    return [{ type: 'put', key, value, revision }];
  }

  private validate(writes: Write[], checks: Check[]): void {
    const seen = new Set<string>();
    for (const w of writes) {
      keyBytes(w.key);
      if (seen.has(w.key)) throw new KnitError('internal', `a commit may write a key only once, and ${w.key} appears twice`);
      seen.add(w.key);
      if (typeof w.value !== 'string' && w.value !== null) throw new KnitError('internal', `the value for ${w.key} is not a string`);
      if (w.expect !== undefined) validateExpect(w.key, w.expect);
      if (w.lease !== undefined && !this.liveLeases.has(w.lease.id)) {
        throw new KnitError('internal', `lease ${w.lease.id} was revoked or was not granted by this store`);
      }
    }
    for (const c of checks) {
      keyBytes(c.key);
      validateExpect(c.key, c.expect);
    }
  }

  private flushInBackground(): void {
    if (!this.unflushed || this.closed) return;
    this.unflushed = false;
    this.flush().catch((err: unknown) => (this.flushError = err));
  }

  private flush(): Promise<void> {
    // lmdb's typings leave out sync(), which runs mdb_env_sync on a worker thread.
    const root = this.root as unknown as { sync(done: (err?: unknown) => void): void };
    return new Promise((resolve, reject) => root.sync((err) => (err ? reject(err) : resolve())));
  }

  private assertOpen(): void {
    if (this.closed) throw new KnitError('internal', 'the local store is closed');
  }
}
