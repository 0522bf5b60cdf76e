// The Consul test server's state machine: one Raft index, KV writes, transactions, sessions with TTL timers and lock-delay.
import { randomUUID } from 'node:crypto';
import { KvTables, KvTx, type DirInput } from './consul-kv.js';
import { runTxnOp, TXN_WRITE_VERBS, type TxnKvOp, type TxnResult } from './consul-txn.js';

export interface Session {
  id: string;
  name: string;
  node: string;
  lockDelayNs: number;
  behavior: 'release' | 'delete';
  /** As the client sent it ("" = no TTL). */
  ttl: string;
  ttlNs: number;
  nodeChecks: string[] | null;
  createIndex: number;
  modifyIndex: number;
}

/** What a write touched, so that blocking queries wake only for their own key, prefix or table. */
export interface Change {
  keys: string[];
  sessions: boolean;
}

/**
 * What a blocking query waits on: one key, the keys below a prefix, any KV write, or the sessions table. Listeners
 * are found by it (a write's keys and their prefixes looked up), not by asking every pending query: with thousands
 * pending (a hundred simulated hosts), asking each at every write was the server's own cost.
 */
export type Interest = { key: string } | { prefix: string } | { anyKv: true } | { sessions: true };
type Listener = () => void;

export interface StateOptions {
  /** Consul arms each session timer at TTL x SessionTTLMultiplier (2): the TTL is only a lower bound. */
  ttlMultiplier: number;
  tombstoneTtlMs: number;
}

export type TxnOutcome = { results: TxnResult[]; errors?: undefined } | { errors: { OpIndex: number; What: string }[] };

const BOOTSTRAP_ENTRIES = 10;
/** The most lock-delay Consul applies (structs.MaxLockDelay). */
const MAX_LOCK_DELAY_MS = 60_000;

export class ConsulState {
  /**
   * The last Raft index: every write request that reaches the log takes the next one. A new cluster has already
   * written its bootstrap entries (configuration, leader barrier, node registration) before any KV write, which is
   * why Consul says index 1 is impossible for data; the KV index itself still starts at 0, reported as 1.
   */
  index = BOOTSTRAP_ENTRIES;
  readonly kv: KvTables;
  readonly sessions = new Map<string, Session>();
  sessionsIndex = 0;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Kept in memory on the leader only, so a restart (a new leader) forgets them, as Consul does. */
  private readonly lockDelays = new Map<string, number>();
  private readonly byKey = new Map<string, Set<Listener>>();
  private readonly byPrefix = new Map<string, Set<Listener>>();
  /** How many prefixes of each length are listened on: a key's prefixes of other lengths are not looked up. */
  private readonly prefixLengths = new Map<number, number>();
  private readonly anyKv = new Set<Listener>();
  private readonly sessionListeners = new Set<Listener>();
  private timersRunning = true;

  constructor(private readonly opts: StateOptions) {
    this.kv = new KvTables(opts.tombstoneTtlMs);
  }

  subscribe(interest: Interest, listener: Listener): () => void {
    if ('key' in interest) return add(this.byKey, interest.key, listener);
    if ('anyKv' in interest) return addTo(this.anyKv, listener);
    if ('sessions' in interest) return addTo(this.sessionListeners, listener);
    const { prefix } = interest;
    const remove = add(this.byPrefix, prefix, listener);
    this.prefixLengths.set(prefix.length, (this.prefixLengths.get(prefix.length) ?? 0) + 1);
    return () => {
      remove();
      const left = (this.prefixLengths.get(prefix.length) ?? 1) - 1;
      if (left > 0) this.prefixLengths.set(prefix.length, left);
      else this.prefixLengths.delete(prefix.length);
    };
  }

  lockDelayed(key: string): boolean {
    const until = this.lockDelays.get(key);
    return until !== undefined && until > Date.now();
  }

  /** PUT /v1/kv/<key>: false for a CAS miss, a held lock or a running lock-delay; throws for an invalid session. */
  kvPut(input: DirInput, mode: { cas?: number; acquire?: boolean; release?: boolean }): boolean {
    // kvsPreApply refuses an acquire during lock-delay before anything reaches Raft.
    if (mode.acquire && this.lockDelayed(input.key)) return false;
    return this.writeKv((tx) => {
      if (mode.acquire) return tx.lock(input) !== undefined;
      if (mode.release) return tx.unlock(input) !== undefined;
      if (mode.cas !== undefined) return tx.setCas(input, mode.cas) !== undefined;
      tx.set(input, false);
      return true;
    });
  }

  /** DELETE /v1/kv/<key>. */
  kvDelete(key: string, mode: { recurse: boolean; cas?: number }): boolean {
    return this.writeKv((tx) => {
      if (mode.recurse) tx.deleteTree(key);
      else if (mode.cas !== undefined) return tx.deleteCas(key, mode.cas);
      else tx.delete(key);
      return true;
    });
  }

  /** PUT /v1/txn: all ops or none; every failing op is reported, not just the first. */
  txn(ops: TxnKvOp[]): TxnOutcome {
    const delayed = ops.flatMap((op, i) =>
      op.verb === 'lock' && this.lockDelayed(op.key) ? [{ OpIndex: i, What: `failed to lock key ${JSON.stringify(op.key)} due to lock delay` }] : [],
    );
    if (delayed.length) return { errors: delayed };
    const writes = ops.some((op) => TXN_WRITE_VERBS.has(op.verb));
    // A read-only txn takes Consul's fast path: no Raft entry, so no index is used up.
    const tx = this.tx(writes ? ++this.index : this.index);
    const results: TxnResult[] = [];
    const errors: { OpIndex: number; What: string }[] = [];
    ops.forEach((op, i) => {
      const out = runTxnOp(tx, op);
      if (typeof out === 'string') errors.push({ OpIndex: i, What: out });
      else results.push(...out);
    });
    if (errors.length) return { errors };
    if (writes) this.publish(tx.commit());
    return { results };
  }

  createSession(fields: Omit<Session, 'id' | 'createIndex' | 'modifyIndex'>): string {
    const idx = ++this.index;
    const session: Session = { ...fields, id: randomUUID(), createIndex: idx, modifyIndex: idx };
    this.sessions.set(session.id, session);
    this.sessionsIndex = idx;
    this.arm(session);
    this.notify({ keys: [], sessions: true });
    return session.id;
  }

  /** Not a Raft write: only the leader's timer restarts, and no index moves. */
  renewSession(id: string): Session | undefined {
    const session = this.sessions.get(id);
    if (session) this.arm(session);
    return session;
  }

  /** Explicit destroy, TTL expiry and a test's forced expiry all invalidate the same way (deleteSessionTxn). */
  destroySession(id: string): void {
    const idx = ++this.index;
    const session = this.sessions.get(id);
    if (!session) return;
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    const held = [...this.kv.entries.values()].filter((e) => e.session === id);
    const tx = this.tx(idx);
    for (const entry of held) {
      if (session.behavior === 'delete') tx.delete(entry.key);
      else tx.set({ ...entry, session: '' }, true);
    }
    const delayMs = Math.min(session.lockDelayNs / 1e6, MAX_LOCK_DELAY_MS);
    if (delayMs > 0) for (const entry of held) this.lockDelays.set(entry.key, Date.now() + delayMs);
    this.sessions.delete(id);
    this.sessionsIndex = idx;
    const keys = tx.commit();
    this.notify({ keys, sessions: true });
  }

  /** A stopped server expires nothing; Consul re-arms every timer afresh when a new leader takes over. */
  stopTimers(): void {
    this.timersRunning = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.lockDelays.clear();
  }

  startTimers(): void {
    this.timersRunning = true;
    for (const session of this.sessions.values()) this.arm(session);
  }

  private arm(session: Session): void {
    clearTimeout(this.timers.get(session.id));
    if (!this.timersRunning || session.ttlNs === 0) return;
    const timer = setTimeout(() => this.destroySession(session.id), (session.ttlNs / 1e6) * this.opts.ttlMultiplier);
    timer.unref();
    this.timers.set(session.id, timer);
  }

  private tx(idx: number): KvTx {
    return new KvTx({ tables: this.kv, idx, sessionExists: (id) => this.sessions.has(id) });
  }

  private writeKv<T>(apply: (tx: KvTx) => T): T {
    const tx = this.tx(++this.index);
    const out = apply(tx);
    this.publish(tx.commit());
    return out;
  }

  private publish(keys: string[]): void {
    if (keys.length) this.notify({ keys, sessions: false });
  }

  private notify(change: Change): void {
    const woken = new Set<Listener>();
    if (change.sessions) for (const l of this.sessionListeners) woken.add(l);
    if (change.keys.length) for (const l of this.anyKv) woken.add(l);
    for (const key of change.keys) {
      for (const l of this.byKey.get(key) ?? []) woken.add(l);
      for (const length of this.prefixLengths.keys()) {
        if (length <= key.length) for (const l of this.byPrefix.get(key.slice(0, length)) ?? []) woken.add(l);
      }
    }
    for (const listener of woken) listener();
  }
}

function add(map: Map<string, Set<Listener>>, name: string, listener: Listener): () => void {
  let set = map.get(name);
  if (!set) map.set(name, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (!set.size && map.get(name) === set) map.delete(name);
  };
}

function addTo(set: Set<Listener>, listener: Listener): () => void {
  set.add(listener);
  return () => void set.delete(listener);
}
