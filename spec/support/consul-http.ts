// HTTP plumbing shared by the Consul test server's routes: replies, query metadata headers and blocking queries.
import { parseGoDuration } from './consul-duration.js';
import type { ConsulState, Interest } from './consul-state.js';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A blocking query answered because its index moved (not at the end of its wait): counted for the benchmarks. */
  woken?: boolean;
}

/** One decoded request, as a route sees it. */
export interface Call {
  method: string;
  /** Percent-decoded, as Go's URL.Path (the npm client sends a/b as a%2Fb). */
  path: string;
  query: URLSearchParams;
  body: Buffer;
  /** Registers a callback for when the client goes away, so a blocking query stops waiting for it. */
  onClose(listener: () => void): () => void;
}

export interface ServerSettings {
  nodeName: string;
  sessionTtlMinNs: number;
  defaultQueryTimeMs: number;
  maxQueryTimeMs: number;
}

export interface Env {
  state: ConsulState;
  settings: ServerSettings;
}

/** Raft's suggested maximum entry size: the default kv_max_value_size and txn_max_req_len. */
export const MAX_VALUE_BYTES = 512 * 1024;

export const text = (status: number, message: string): Reply => ({
  status,
  headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  body: message,
});

/** JSON as Go encodes it; bigint (uint64 Flags) is written as a bare number. */
export function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  const body = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000${v}` : v)).replace(/"\\u0000(\d+)"/g, '$1');
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body };
}

/** setMeta: every read carries these, a 404 included; the index is never 0 (setIndex sends 1 instead). */
export function meta(index: number, query: URLSearchParams): Record<string, string> {
  const consistency = query.has('consistent') ? 'consistent' : query.has('stale') ? 'stale' : 'leader';
  return {
    'X-Consul-Index': String(Math.max(1, index)),
    'X-Consul-KnownLeader': 'true',
    'X-Consul-LastContact': '0',
    'X-Consul-Effective-Consistency': consistency,
  };
}

/** A query's current answer and the index it reports. */
export interface Snapshot {
  index: number;
  reply: Reply;
}

/**
 * agent/blockingquery: no index (or 0) answers at once; otherwise wait until a change the query watches raises its
 * index past N, or until the wait (default 5 min, at most 10 min, plus up to wait/16 of jitter) runs out, then answer
 * with the current data, whose index may equal N or be lower (a client must then reset).
 */
export function blockingQuery(query: { env: Env; call: Call; interest: () => Interest; run: () => Snapshot }): Reply | Promise<Reply> {
  const { env, call, interest, run } = query;
  const params = blockingParams(env.settings, call.query);
  if ('status' in params) return params;
  const first = run();
  if (params.index === 0) return first.reply;
  if (first.index > params.index) return { ...first.reply, woken: true };
  return new Promise<Reply>((resolve) => {
    const finish = (snapshot: Snapshot): void => {
      clearTimeout(timer);
      unsubscribe();
      forget();
      resolve(snapshot.reply);
    };
    const timer = setTimeout(() => finish(run()), params.waitMs + Math.random() * (params.waitMs / 16));
    // Asked after the first run: a list's interest depends on whether its prefix held keys then.
    const unsubscribe = env.state.subscribe(interest(), () => {
      const next = run();
      if (next.index > params.index) finish({ ...next, reply: { ...next.reply, woken: true } });
    });
    const forget = call.onClose(() => finish(first));
  });
}

function blockingParams(settings: ServerSettings, query: URLSearchParams): { index: number; waitMs: number } | Reply {
  if (query.has('stale') && query.has('consistent')) return text(400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
  let index = 0;
  let waitMs = settings.defaultQueryTimeMs;
  const rawIndex = query.get('index');
  if (rawIndex) {
    if (!/^\d+$/.test(rawIndex)) return text(400, 'Invalid index');
    index = Number(rawIndex);
  }
  const rawWait = query.get('wait');
  if (rawWait) {
    const ns = parseGoDuration(rawWait);
    if (ns === undefined) return text(400, 'Invalid wait time');
    if (ns > 0) waitMs = ns / 1e6;
  }
  return { index, waitMs: Math.min(waitMs, settings.maxQueryTimeMs) };
}

/** Query flags count by presence (`?recurse=false` still recurses), as in agent/kvs_endpoint.go. */
export const flag = (query: URLSearchParams, name: string): boolean => query.has(name);

/** Go field names decode case-insensitively; this finds `name` in a decoded JSON object the same way. */
export function field(obj: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : obj[key];
}
