// The Consul test server's KV tables and write rules, after hashicorp/consul agent/consul/state/kvs.go and kvs_ce.go.

export interface DirEntry {
  key: string;
  /** null for an empty value: Consul stores an empty body as a nil slice and returns `"Value": null`. */
  value: Buffer | null;
  flags: bigint;
  lockIndex: number;
  /** '' when no session holds the key. */
  session: string;
  createIndex: number;
  modifyIndex: number;
}

/** What a write supplies; the indexes are Consul's to set. */
export type DirInput = Pick<DirEntry, 'key' | 'value' | 'flags' | 'session'> & { lockIndex?: number };

interface Tombstone {
  index: number;
  at: number;
}

const sameValue = (a: Buffer | null, b: Buffer | null): boolean => (a ?? Buffer.alloc(0)).equals(b ?? Buffer.alloc(0));

/** DirEntry.Equal: a write that changes none of these is skipped and keeps its ModifyIndex. */
const equal = (a: DirEntry, b: DirEntry): boolean =>
  a.lockIndex === b.lockIndex && a.key === b.key && a.flags === b.flags && a.session === b.session && sameValue(a.value, b.value);

export class KvTables {
  /** Change them through put, remove and bury, which keep the sorted indexes below (Consul's radix tree) right. */
  readonly entries = new Map<string, DirEntry>();
  /** Oldest first (bury moves a key to the end), so reaping stops at the first one still young. */
  readonly tombstones = new Map<string, Tombstone>();
  /** max(index of the kvs table, index of the tombstones table): the last KV insert or delete anywhere. */
  tableIndex = 0;
  private readonly entryKeys = new SortedKeys();
  private readonly stoneKeys = new SortedKeys();

  constructor(private readonly tombstoneTtlMs: number) {}

  put(entry: DirEntry): void {
    if (!this.entries.has(entry.key)) this.entryKeys.add(entry.key);
    this.entries.set(entry.key, entry);
  }

  remove(key: string): void {
    if (this.entries.delete(key)) this.entryKeys.remove(key);
  }

  bury(key: string, index: number, at: number): void {
    if (this.tombstones.delete(key)) this.stoneKeys.remove(key);
    this.tombstones.set(key, { index, at });
    this.stoneKeys.add(key);
  }

  /** Consul reaps tombstones after TombstoneTTL; a prefix's index may then go backwards, as documented. */
  reap(now = Date.now()): void {
    for (const [key, stone] of this.tombstones) {
      if (now - stone.at < this.tombstoneTtlMs) break;
      this.tombstones.delete(key);
      this.stoneKeys.remove(key);
    }
  }

  /** KVS.Get: a present key reports its ModifyIndex, a missing one the table-wide index. */
  get(key: string): { index: number; entry?: DirEntry } {
    const entry = this.entries.get(key);
    return entry ? { index: entry.modifyIndex, entry } : { index: this.tableIndex };
  }

  /** KVS.List: max(ModifyIndex under the prefix, tombstones under it), else the table-wide index. */
  list(prefix: string): { index: number; entries: DirEntry[] } {
    this.reap();
    const entries = this.entryKeys.under(prefix).map((k) => this.entries.get(k)!);
    if (prefix === '') return { index: this.tableIndex, entries };
    let index = 0;
    for (const e of entries) index = Math.max(index, e.modifyIndex);
    for (const key of this.stoneKeys.under(prefix)) index = Math.max(index, this.tombstones.get(key)!.index);
    return { index: index || this.tableIndex, entries };
  }

  /** KVS.Keys: the same index as list; a separator cuts each key just after its first separator past the prefix. */
  keys(prefix: string, separator: string): { index: number; keys: string[] } {
    const { index, entries } = this.list(prefix);
    const keys: string[] = [];
    for (const { key } of entries) {
      const cut = separator ? key.indexOf(separator, prefix.length) : -1;
      const shown = cut >= 0 ? key.slice(0, cut + separator.length) : key;
      if (keys[keys.length - 1] !== shown) keys.push(shown);
    }
    return { index, keys };
  }
}

/**
 * Radix order: keys compare as bytes (UTF-8), not as UTF-16 code units. The two orders agree but where a surrogate
 * (a character beyond U+FFFF) meets U+E000..U+FFFF, so only then are the bytes compared.
 */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 || y >= 0xd800) return Buffer.compare(Buffer.from(a), Buffer.from(b));
    return x - y;
  }
  return a.length - b.length;
}

/** Keys in radix order, for prefix ranges in O(log n + k). */
class SortedKeys {
  private readonly keys: string[] = [];

  add(key: string): void {
    this.keys.splice(this.lowerBound(key), 0, key);
  }

  remove(key: string): void {
    const i = this.lowerBound(key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
  }

  /** Every key that starts with `prefix`, in order: they are contiguous from the first key not below it. */
  under(prefix: string): string[] {
    const out: string[] = [];
    for (let i = this.lowerBound(prefix); i < this.keys.length && this.keys[i].startsWith(prefix); i++) out.push(this.keys[i]);
    return out;
  }

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareBytes(this.keys[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** One write transaction: changes stay in an overlay until commit, so a failed txn leaves nothing behind. */
export class KvTx {
  private readonly changes = new Map<string, DirEntry | undefined>();
  private readonly graves = new Map<string, number>();
  private touchedTable = false;

  private readonly tables: KvTables;
  readonly idx: number;
  private readonly sessionExists: (id: string) => boolean;

  constructor(tx: { tables: KvTables; idx: number; sessionExists: (id: string) => boolean }) {
    this.tables = tx.tables;
    this.idx = tx.idx;
    this.sessionExists = tx.sessionExists;
  }

  get(key: string): DirEntry | undefined {
    return this.changes.has(key) ? this.changes.get(key) : this.tables.entries.get(key);
  }

  keysUnder(prefix: string): string[] {
    const keys = new Set([...this.tables.list(prefix).entries.map((e) => e.key), ...this.changes.keys()]);
    return [...keys].filter((k) => k.startsWith(prefix) && this.get(k)).sort(compareBytes);
  }

  /** kvsSetTxn: CreateIndex carried over, Session kept unless `updateSession`, identical writes skipped. */
  set(input: DirInput, updateSession: boolean): DirEntry {
    const existing = this.get(input.key);
    const entry: DirEntry = {
      ...input,
      lockIndex: input.lockIndex ?? 0,
      session: updateSession ? input.session : (existing?.session ?? ''),
      createIndex: existing ? existing.createIndex : this.idx,
      modifyIndex: this.idx,
    };
    if (existing && equal(existing, entry)) return { ...entry, modifyIndex: existing.modifyIndex };
    this.changes.set(entry.key, entry);
    this.touchedTable = true;
    return entry;
  }

  /** kvsSetCASTxn: index 0 = create only; otherwise the key must exist with exactly that ModifyIndex. */
  setCas(input: DirInput, cas: number): DirEntry | undefined {
    const existing = this.get(input.key);
    if (cas === 0 ? existing : !existing || existing.modifyIndex !== cas) return undefined;
    return this.set(input, false);
  }

  /** kvsLockTxn: throws for a missing or unknown session; undefined when another session holds the key. */
  lock(input: DirInput): DirEntry | undefined {
    if (!input.session) throw new Error('missing session');
    if (!this.sessionExists(input.session)) throw new Error(`invalid session ${JSON.stringify(input.session)}`);
    const existing = this.get(input.key);
    if (existing && existing.session && existing.session !== input.session) return undefined;
    const lockIndex = !existing ? 1 : existing.session === input.session ? existing.lockIndex : existing.lockIndex + 1;
    return this.set({ ...input, lockIndex }, true);
  }

  /** kvsUnlockTxn: only the holder can release; LockIndex is kept. */
  unlock(input: DirInput): DirEntry | undefined {
    if (!input.session) throw new Error('missing session');
    const existing = this.get(input.key);
    if (!existing || existing.session !== input.session) return undefined;
    return this.set({ ...input, session: '', lockIndex: existing.lockIndex }, true);
  }

  /** kvsDeleteTxn: a delete of an existing key leaves a tombstone holding the delete's index. */
  delete(key: string): void {
    if (!this.get(key)) return;
    this.changes.set(key, undefined);
    this.graves.set(key, this.idx);
    this.touchedTable = true;
  }

  /** kvsDeleteCASTxn: true when deleted, and also when the key is already gone. */
  deleteCas(key: string, cas: number): boolean {
    const existing = this.get(key);
    if (!existing) return true;
    if (existing.modifyIndex !== cas) return false;
    this.delete(key);
    return true;
  }

  /** kvsDeleteTreeTxn: one tombstone at the prefix (none for ""), none at all if nothing matched. */
  deleteTree(prefix: string): void {
    const keys = this.keysUnder(prefix);
    if (!keys.length) return;
    for (const key of keys) this.changes.set(key, undefined);
    if (prefix !== '') this.graves.set(prefix, this.idx);
    this.touchedTable = true;
  }

  /** Applies the overlay; returns the keys whose entries changed, for blocking queries to wake on. */
  commit(now = Date.now()): string[] {
    for (const [key, entry] of this.changes) {
      if (entry) this.tables.put(entry);
      else this.tables.remove(key);
    }
    for (const [key, index] of this.graves) this.tables.bury(key, index, now);
    if (this.touchedTable) this.tables.tableIndex = this.idx;
    return [...this.changes.keys(), ...this.graves.keys()];
  }
}
