// The parts of the npm consul client knit uses, typed as the client behaves, and KV reads that keep X-Consul-Index.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import Consul from 'consul';

/** A KV entry as the client returns it: Value already base64-decoded to UTF-8, null when empty. */
export interface KvItem {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
}

export interface TxnKv {
  Verb: string;
  Key: string;
  Value?: string;
  Index?: number;
  Session?: string;
}

export interface TxnResponse {
  Results: { KV: KvItem }[] | null;
  Errors: { OpIndex: number; What: string }[] | null;
}

/**
 * Cancels a request when it emits 'cancel'; `includeResponse` makes the client resolve [response, body], which is
 * the only way it hands out the X-Consul-Index header.
 */
export class RequestContext extends EventEmitter {
  readonly includeResponse = true;
}

interface RequestOptions {
  timeout: number;
  ctx?: RequestContext;
}

interface KvGetOptions extends RequestOptions {
  key: string;
  recurse?: boolean;
  index?: number;
  wait?: string;
}

/**
 * The client's .d.ts leaves out the options every call takes (timeout, ctx, index, wait) and types txn operations
 * in a lower-case shape the client would send verbatim; this is the contract its lib/*.js actually implements.
 */
export interface ConsulClient {
  kv: { get(opts: KvGetOptions & { ctx: RequestContext }): Promise<[IncomingMessage, unknown?]> };
  session: {
    create(opts: RequestOptions & { name: string; ttl: string; behavior: 'delete'; lockdelay: string; checks: string[] }): Promise<{ ID: string }>;
    renew(opts: RequestOptions & { id: string }): Promise<unknown>;
    destroy(opts: RequestOptions & { id: string }): Promise<void>;
  };
  transaction: { create(ops: { KV: TxnKv }[], opts: RequestOptions): Promise<TxnResponse> };
  status: { leader(opts: RequestOptions): Promise<string> };
  destroy(): void;
}

export const connect = (opts: { host: string; port: number; token?: string }): ConsulClient =>
  new Consul({ host: opts.host, port: opts.port, defaults: opts.token ? { token: opts.token } : undefined }) as unknown as ConsulClient;

export interface KvRead {
  /** X-Consul-Index, raised to 1 as blocking.mdx tells clients to treat anything lower. */
  index: number;
  items: KvItem[];
}

/** GET /v1/kv/<key>: a 404 is an empty read that still carries the index. */
export async function kvRead(client: ConsulClient, opts: KvGetOptions): Promise<KvRead> {
  const [res, body] = await client.kv.get({ ...opts, ctx: opts.ctx ?? new RequestContext() });
  const index = Number(res.headers['x-consul-index']);
  const items = body === undefined ? [] : Array.isArray(body) ? (body as KvItem[]) : [body as KvItem];
  return { index: Number.isFinite(index) && index >= 1 ? index : 1, items };
}
