// The calls knit makes through the npm consul client, with their answers checked, and KV reads that keep
// X-Consul-Index.
import { EventEmitter } from 'node:events';
import { Agent, type IncomingMessage } from 'node:http';
import { types } from 'node:util';
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

export interface KvGetOptions extends RequestOptions {
  key: string;
  recurse?: boolean;
  index?: number;
  wait?: string;
}

/**
 * The client as its lib/*.js behaves: its .d.ts leaves out the options every call takes (timeout, ctx, index,
 * wait) and types txn operations in a lower-case shape the client would send verbatim.
 */
interface RawClient {
  kv: { get(opts: KvGetOptions & { ctx: RequestContext }): Promise<unknown> };
  session: {
    create(opts: RequestOptions & { name: string; ttl: string; behavior: 'delete'; lockdelay: string; checks: string[] }): Promise<unknown>;
    renew(opts: RequestOptions & { id: string }): Promise<unknown>;
    destroy(opts: RequestOptions & { id: string }): Promise<unknown>;
  };
  transaction: { create(ops: { KV: TxnKv }[], opts: RequestOptions): Promise<unknown> };
  status: { leader(opts: RequestOptions): Promise<unknown> };
  destroy(): void;
}

export interface KvRead {
  /** X-Consul-Index, raised to 1 as blocking.mdx tells clients to treat anything lower. */
  index: number;
  items: KvItem[];
}

export interface ConsulApi {
  /** GET /v1/kv/<key>: a 404 is an empty read that still carries the index. */
  kvRead(opts: KvGetOptions): Promise<KvRead>;
  txn(ops: { KV: TxnKv }[], timeout: number): Promise<TxnResponse>;
  createSession(ttlSeconds: number, timeout: number): Promise<string>;
  renewSession(id: string, timeout: number): Promise<void>;
  destroySession(id: string, timeout: number): Promise<void>;
  leader(timeout: number): Promise<string>;
  destroy(): void;
}

/**
 * The client resolves with an error instead of rejecting when the error comes from another realm (node:net's,
 * seen from jest's VM), since it tests `instanceof Error`; and an answer without Consul's shape is an error too.
 */
function checked<T>(what: string, value: unknown, valid: (v: unknown) => boolean): T {
  if (types.isNativeError(value)) throw value;
  if (!valid(value)) throw new Error(`unexpected answer to ${what}`);
  return value as T;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * TCP keep-alive probes on an idle connection after this long (the consul client's own agent probes after 1 s: with a
 * blocking query held per other host and segment, hundreds of probes a second per host). A held query's connection
 * carries no data until Consul answers, so these probes are what keeps it in the state tables of NATs and layer-4
 * load balancers on the way, and what finds a peer that is gone.
 */
const KEEPALIVE_MS = 30_000;

export function connect(opts: { host: string; port: number; token?: string }): ConsulApi {
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: KEEPALIVE_MS });
  const client = new Consul({ host: opts.host, port: opts.port, agent, defaults: opts.token ? { token: opts.token } : undefined }) as unknown as RawClient;
  return {
    async kvRead(read) {
      const [res, body] = checked<[IncomingMessage, unknown?]>('a KV read', await client.kv.get({ ...read, ctx: read.ctx ?? new RequestContext() }), Array.isArray);
      const index = Number(res.headers['x-consul-index']);
      const items = body === undefined ? [] : Array.isArray(body) ? (body as KvItem[]) : [body as KvItem];
      return { index: Number.isFinite(index) && index >= 1 ? index : 1, items };
    },
    async txn(ops, timeout) {
      return checked('a transaction', await client.transaction.create(ops, { timeout }), (v) => isObject(v) && Array.isArray(v.Results));
    },
    async createSession(ttlSeconds, timeout) {
      // No node checks: the session lives exactly as long as it is renewed. No lock-delay: a host that lost its
      // session must be able to attach its keys to a new one at once.
      const answer = await client.session.create({ name: 'knit', ttl: `${ttlSeconds}s`, behavior: 'delete', lockdelay: '0s', checks: [], timeout });
      return checked<{ ID: string }>('creating a session', answer, (v) => isObject(v) && typeof v.ID === 'string').ID;
    },
    async renewSession(id, timeout) {
      checked('renewing a session', await client.session.renew({ id, timeout }), Array.isArray);
    },
    async destroySession(id, timeout) {
      checked('destroying a session', await client.session.destroy({ id, timeout }), () => true);
    },
    async leader(timeout) {
      return checked<string>('asking for the leader', await client.status.leader({ timeout }), (v) => typeof v === 'string');
    },
    destroy: () => client.destroy(),
  };
}
