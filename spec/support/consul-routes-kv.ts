// The /v1/kv endpoints of the Consul test server, after hashicorp/consul agent/kvs_endpoint.go.
import type { DirEntry } from './consul-kv.js';
import { blockingQuery, flag, json, meta, MAX_VALUE_BYTES, text, type Call, type Env, type Reply, type Snapshot } from './consul-http.js';
import type { Interest } from './consul-state.js';

/** A DirEntry as Consul encodes it: base64 Value (null when empty), Session only while a session holds the key. */
export const dirJson = (e: DirEntry, withValue = true): Record<string, unknown> => ({
  LockIndex: e.lockIndex,
  Key: e.key,
  Flags: e.flags,
  Value: withValue && e.value && e.value.length ? e.value.toString('base64') : null,
  ...(e.session ? { Session: e.session } : {}),
  CreateIndex: e.createIndex,
  ModifyIndex: e.modifyIndex,
});

export function kvRoute(env: Env, call: Call): Reply | Promise<Reply> {
  const key = call.path.slice('/v1/kv/'.length);
  switch (call.method) {
    case 'GET':
      return kvGet(env, call, key);
    case 'PUT':
      return kvPut(env, call, key);
    case 'DELETE':
      return kvDelete(env, call, key);
    default:
      return { status: 405, headers: { Allow: 'DELETE, GET, PUT' } };
  }
}

/**
 * What wakes a blocking list (?recurse or ?keys) on a prefix. Consul's list reports the prefix's own index while the
 * prefix holds keys or tombstones, so a write elsewhere leaves it unchanged and the query keeps blocking; an empty
 * prefix reports the table-wide index, which any write anywhere raises, so the query returns early with an empty 404
 * (hashicorp/consul#9449, #12115; docs/store.md). The query is re-run, and its index compared as
 * agent/blockingquery does, only when its answer can have moved: a write below the prefix, or any write while the
 * prefix held no key at the first run (its index is then the table's, or a tombstone's, which a re-run tells
 * apart). Consul's memdb watch sets do likewise; re-running every pending list at every write would make the
 * server, not knit, the cost a benchmark of many hosts measures.
 */
function prefixWrites(prefix: string): { interest: () => Interest; seen: (entries: number) => void } {
  let empty = true;
  return {
    interest: () => (empty ? { anyKv: true } : { prefix }),
    seen: (entries) => void (empty = entries === 0),
  };
}

function kvGet(env: Env, call: Call, key: string): Reply | Promise<Reply> {
  const q = call.query;
  const kv = env.state.kv;
  const missing = (index: number): Snapshot => ({ index, reply: { status: 404, headers: meta(index, q) } });
  if (flag(q, 'keys')) {
    // The misspelt "seperator" is still accepted by Consul.
    const separator = q.get('separator') ?? q.get('seperator') ?? '';
    const wake = prefixWrites(key);
    return blockingQuery({
      env,
      call,
      interest: wake.interest,
      run: () => {
        const { index, keys } = kv.keys(key, separator);
        wake.seen(keys.length);
        return !keys.length && key !== '' ? missing(index) : { index, reply: json(200, keys, meta(index, q)) };
      },
    });
  }
  if (flag(q, 'recurse')) {
    const wake = prefixWrites(key);
    return blockingQuery({
      env,
      call,
      interest: wake.interest,
      run: () => {
        const { index, entries } = kv.list(key);
        wake.seen(entries.length);
        return entries.length ? { index, reply: json(200, entries.map((e) => dirJson(e)), meta(index, q)) } : missing(index);
      },
    });
  }
  if (key === '') return text(400, 'Missing key name');
  return blockingQuery({
    env,
    call,
    interest: () => ({ key }),
    run: () => {
      const { index, entry } = kv.get(key);
      if (!entry) return missing(index);
      if (!flag(q, 'raw')) return { index, reply: json(200, [dirJson(entry)], meta(index, q)) };
      const headers = { ...meta(index, q), 'Content-Type': 'text/plain', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': 'sandbox' };
      return { index, reply: { status: 200, headers, body: entry.value ?? Buffer.alloc(0) } };
    },
  });
}

/** strconv.ParseUint on a query value; Consul answers a bad one with a plain (500) error. */
function uintParam(q: URLSearchParams, name: string): bigint | Reply | undefined {
  if (!q.has(name)) return undefined;
  const raw = q.get(name) ?? '';
  if (!/^\d+$/.test(raw) || BigInt(raw) >= 2n ** 64n) return text(500, `strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return BigInt(raw);
}

const isReply = (v: unknown): v is Reply => typeof v === 'object' && v !== null && 'status' in v;

function kvPut(env: Env, call: Call, key: string): Reply {
  const q = call.query;
  if (key === '') return text(400, 'Missing key name');
  if (['cas', 'acquire', 'release'].filter((f) => q.has(f)).length > 1) return text(400, `Conflicting flags: ${q.toString()}`);
  if (call.body.length > MAX_VALUE_BYTES) {
    return text(413, `Request body(${call.body.length} bytes) too large, max size: ${MAX_VALUE_BYTES} bytes.`);
  }
  const flags = uintParam(q, 'flags');
  const cas = uintParam(q, 'cas');
  if (isReply(flags)) return flags;
  if (isReply(cas)) return cas;
  const session = q.get('acquire') ?? q.get('release') ?? '';
  const input = { key, value: call.body.length ? call.body : null, flags: flags ?? 0n, session };
  try {
    const ok = env.state.kvPut(input, { cas: cas === undefined ? undefined : Number(cas), acquire: q.has('acquire'), release: q.has('release') });
    return json(200, ok);
  } catch (err) {
    // An unknown session on acquire is an untyped error in Consul: HTTP 500 (hashicorp/consul#1139).
    return text(500, (err as Error).message);
  }
}

function kvDelete(env: Env, call: Call, key: string): Reply {
  const q = call.query;
  const recurse = flag(q, 'recurse');
  if (key === '' && !recurse) return text(400, 'Missing key name');
  if (recurse && q.has('cas')) return text(400, `Conflicting flags: ${q.toString()}`);
  const cas = uintParam(q, 'cas');
  if (isReply(cas)) return cas;
  return json(200, env.state.kvDelete(key, { recurse, cas: cas === undefined ? undefined : Number(cas) }));
}
