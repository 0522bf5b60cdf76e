// How a commit becomes one Consul transaction (PUT /v1/txn), and how Consul's answer becomes the commit's outcome.
import { KnitError, unavailable } from '../errors.js';
import type { TxnKv, TxnResponse } from './consul-client.js';
import { type Check, MAX_TXN_OPS, type Write } from './types.js';

export interface TxnPlan {
  ops: { KV: TxnKv }[];
  /** Per op: a failure there is a guard that did not hold (the commit returns null), not an error. */
  guards: boolean[];
  /** Whether some op writes a value: its result then carries the transaction's index as ModifyIndex. */
  writesValue: boolean;
}

/**
 * Each write, in Consul verbs (full keys):
 *   value, no lease:  expect 0 → cas 0;              else [check-index n,] delete, set
 *   value, lease:     expect 0 → check-not-exists, lock; else [check-index n,] delete, lock
 *   null (delete):    expect 0 → check-not-exists;   else [check-index n,] delete
 * The delete before set/lock detaches the key from any session holding it (a plain set keeps the holder, and lock
 * fails on another holder), so a key is attached to exactly the lease of its last write, as with etcd. check-index
 * guards deletes because Consul's delete-cas succeeds on a missing key. Checks become check-not-exists/check-index.
 */
export function planCommit({ root, writes, checks }: { root: string; writes: Write[]; checks: Check[] }): TxnPlan {
  const plan: TxnPlan = { ops: [], guards: [], writesValue: false };
  const add = (op: TxnKv, guard = false): void => {
    plan.ops.push({ KV: op });
    plan.guards.push(guard);
  };
  const guard = (key: string, expect: number): void => add(expect === 0 ? { Verb: 'check-not-exists', Key: key } : { Verb: 'check-index', Key: key, Index: expect }, true);
  for (const w of writes) {
    const key = root + w.key;
    const value = w.value === null ? undefined : Buffer.from(w.value, 'utf8').toString('base64');
    if (value !== undefined) plan.writesValue = true;
    if (w.expect === 0 && value !== undefined && !w.lease) {
      add({ Verb: 'cas', Key: key, Value: value, Index: 0 }, true);
      continue;
    }
    if (w.expect !== undefined) guard(key, w.expect);
    if (w.expect !== 0) add({ Verb: 'delete', Key: key });
    if (value === undefined) continue;
    add(w.lease ? { Verb: 'lock', Key: key, Value: value, Session: w.lease.id } : { Verb: 'set', Key: key, Value: value });
  }
  for (const c of checks) guard(root + c.key, c.expect);
  // Consul refuses more with HTTP 413 (maxTxnOps in its agent/txn_endpoint.go): refused here first, with a reason.
  if (plan.ops.length > MAX_TXN_OPS) {
    const what = `${writes.length} writes, ${checks.length} checks`;
    throw new KnitError('internal', `a Consul transaction holds at most ${MAX_TXN_OPS} operations, and this commit (${what}) needs ${plan.ops.length}; split it`);
  }
  return plan;
}

/** The highest ModifyIndex in the results: with a value written, the index of the transaction itself. */
export const resultIndex = (response: TxnResponse): number => Math.max(0, ...(response.Results ?? []).map((r) => r.KV.ModifyIndex));

/** A 409: null when only guards failed; a lock refused (lease gone, or lock-delay) or anything else throws. */
export function rejected({ plan, response, where }: { plan: TxnPlan; response: TxnResponse; where: string }): null {
  const hard = (response.Errors ?? []).filter((e) => !plan.guards[e.OpIndex]);
  if (hard.length === 0) return null;
  const lock = hard.find((e) => plan.ops[e.OpIndex]?.KV.Verb === 'lock');
  if (lock) {
    // The session is gone until a new lease is granted: a retry after that can succeed.
    throw unavailable(`writing to ${where} failed: its lease expired or was revoked (${lock.What})`);
  }
  throw new KnitError('internal', `${where} refused the commit: ${hard.map((e) => e.What).join('; ')}`);
}
