// The KV verbs of PUT /v1/txn, with the error texts of hashicorp/consul agent/consul/state/txn.go.
import type { DirEntry, DirInput, KvTx } from './consul-kv.js';

export interface TxnKvOp {
  verb: string;
  key: string;
  value: Buffer | null;
  flags: bigint;
  index: number;
  session: string;
}

export const TXN_WRITE_VERBS = new Set(['set', 'delete', 'delete-cas', 'delete-tree', 'cas', 'lock', 'unlock']);

/** What one op adds to Results: get verbs keep the value, the others return the entry without it. */
export interface TxnResult {
  entry: DirEntry;
  withValue: boolean;
}

/** Runs one op inside `tx`; a string is the op's error (the whole txn then rolls back). */
export function runTxnOp(tx: KvTx, op: TxnKvOp): TxnResult[] | string {
  try {
    return dispatch(tx, op);
  } catch (err) {
    return (err as Error).message;
  }
}

function dispatch(tx: KvTx, op: TxnKvOp): TxnResult[] | string {
  const input: DirInput = { key: op.key, value: op.value, flags: op.flags, session: op.session };
  const q = JSON.stringify(op.key);
  const one = (entry: DirEntry | undefined, withValue = false): TxnResult[] => (entry ? [{ entry, withValue }] : []);
  switch (op.verb) {
    case 'set':
      return one(tx.set(input, false));
    case 'cas': {
      const entry = tx.setCas(input, op.index);
      return entry ? one(entry) : `failed to set key ${q}, index is stale`;
    }
    case 'lock': {
      const entry = tx.lock(input);
      return entry ? one(entry) : `failed to lock key ${q}, lock is already held`;
    }
    case 'unlock': {
      const entry = tx.unlock(input);
      return entry ? one(entry) : `failed to unlock key ${q}, lock isn't held, or is held by another session`;
    }
    case 'get': {
      const entry = tx.get(op.key);
      return entry ? one(entry, true) : `key ${q} doesn't exist`;
    }
    case 'get-or-empty':
      return one(tx.get(op.key) ?? { ...input, value: null, lockIndex: 0, createIndex: 0, modifyIndex: 0 }, true);
    case 'get-tree':
      return tx.keysUnder(op.key).map((k) => ({ entry: tx.get(k) as DirEntry, withValue: true }));
    case 'check-index': {
      const entry = tx.get(op.key);
      if (!entry) return `failed to check index, key ${q} doesn't exist`;
      if (entry.modifyIndex !== op.index) return `failed index check for key ${q}, current modify index ${entry.modifyIndex} != ${op.index}`;
      return one(entry);
    }
    case 'check-session': {
      const entry = tx.get(op.key);
      if (!entry) return `failed to check session, key ${q} doesn't exist`;
      if (entry.session !== op.session) return `failed session check for key ${q}, current session ${JSON.stringify(entry.session)} != ${JSON.stringify(op.session)}`;
      return one(entry);
    }
    case 'check-not-exists':
      return tx.get(op.key) ? `key ${q} exists` : [];
    case 'delete':
      tx.delete(op.key);
      return [];
    case 'delete-cas':
      return tx.deleteCas(op.key, op.index) ? [] : `failed to delete key ${q}, index is stale`;
    case 'delete-tree':
      tx.deleteTree(op.key);
      return [];
    default:
      return `unknown KV verb ${JSON.stringify(op.verb)}`;
  }
}
