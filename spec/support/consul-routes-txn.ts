// PUT /v1/txn of the Consul test server (KV operations only), after hashicorp/consul agent/txn_endpoint.go.
import { field, json, MAX_VALUE_BYTES, text, type Call, type Env, type Reply } from './consul-http.js';
import { dirJson } from './consul-routes-kv.js';
import type { TxnKvOp } from './consul-txn.js';

/** maxTxnOps in agent/txn_endpoint.go. */
export const MAX_TXN_OPS = 64;

class BadOp extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function txnRoute(env: Env, call: Call): Reply {
  if (call.method !== 'PUT') return { status: 405, headers: { Allow: 'PUT' } };
  if (call.body.length > MAX_VALUE_BYTES) return text(413, `Request body too large, max size: ${MAX_VALUE_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(call.body.toString());
    if (!Array.isArray(raw)) throw new Error('expected a JSON array of operations');
  } catch (err) {
    return text(400, `Failed to parse body: ${(err as Error).message}`);
  }
  if (raw.length > MAX_TXN_OPS) return text(413, `Transaction contains too many operations (${raw.length} > ${MAX_TXN_OPS})`);
  let ops: TxnKvOp[];
  try {
    ops = raw.map(decodeOp);
  } catch (err) {
    const bad = err as BadOp;
    return text(bad.status, bad.message);
  }
  const outcome = env.state.txn(ops);
  const headers = { 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' };
  if (outcome.errors) return json(409, { Results: null, Errors: outcome.errors }, headers);
  return json(200, { Results: outcome.results.map((r) => ({ KV: dirJson(r.entry, r.withValue) })), Errors: null }, headers);
}

function decodeOp(op: unknown): TxnKvOp {
  const kv = typeof op === 'object' && op !== null ? field(op as Record<string, unknown>, 'KV') : undefined;
  if (typeof kv !== 'object' || kv === null) {
    throw new BadOp(400, 'Failed to parse body: the Consul test server implements only KV operations in /v1/txn');
  }
  const o = kv as Record<string, unknown>;
  const key = String(field(o, 'Key') ?? '');
  const value = decodeValue(field(o, 'Value'));
  if (value && value.length > MAX_VALUE_BYTES) {
    throw new BadOp(413, `Value for key ${JSON.stringify(key)} is too large (${value.length} > ${MAX_VALUE_BYTES} bytes)`);
  }
  return {
    verb: String(field(o, 'Verb') ?? ''),
    key,
    value,
    flags: BigInt(Math.trunc(Number(field(o, 'Flags') ?? 0))),
    index: Number(field(o, 'Index') ?? 0),
    session: String(field(o, 'Session') ?? ''),
  };
}

/** Values are base64 in a txn (unlike a PUT body), decoded strictly as Go's StdEncoding does. */
function decodeValue(v: unknown): Buffer | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new BadOp(400, `Failed to parse body: unexpected value type: ${typeof v}`);
  if (v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
    throw new BadOp(400, 'Failed to parse body: failed to decode value: illegal base64 data');
  }
  return Buffer.from(v, 'base64');
}
