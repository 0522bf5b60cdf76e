// The Consul test server itself (run in a worker by consul-server.ts): Consul's HTTP API as knit uses it, with
// Consul's documented semantics (docs/store.md), plus stop/start and pause/resume for outages.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Call, Env, Reply, ServerSettings } from './consul-http.js';
import { text } from './consul-http.js';
import { kvRoute } from './consul-routes-kv.js';
import { sessionRoute, statusRoute } from './consul-routes-session.js';
import { txnRoute } from './consul-routes-txn.js';
import { ConsulState, type StateOptions } from './consul-state.js';

export interface ConsulServerOptions {
  /** Default 127.0.0.1; a multi-host test may give an underlay address. */
  host?: string;
  /** Default: a free port picked by the kernel, kept across stop/start. */
  port?: number;
  /** When set, every endpoint but /v1/status needs this token (X-Consul-Token, Bearer or ?token=): 403 otherwise. */
  token?: string;
  /** Consul's session_ttl_min: 10 s unless a test asks for shorter leases. */
  sessionTtlMinSeconds?: number;
  /** Consul expires a session at TTL x 2 (the default here); 1 expires it at the TTL, which the docs also allow. */
  ttlMultiplier?: number;
  /** Run the server's thread at this nice level (a benchmark's store standing in for a machine of its own). */
  nice?: number;
  /** Consul's TombstoneTTL: 15 min. */
  tombstoneTtlMs?: number;
  /** default_query_time (5 min) and max_query_time (10 min). */
  defaultQueryTimeMs?: number;
  maxQueryTimeMs?: number;
}

const NODE_NAME = 'consul-test';
/** The kernel's limit of a listener's accept queue, as Go reads it for its listeners; 4096 when unreadable. */
function somaxconn(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 4_096;
  } catch {
    return 4_096;
  }
}

/** When each request arrived, for the slow-reply counter. */
const arrival = new WeakMap<ServerResponse, number>();

export class ConsulCore {
  private state: ConsulState;
  private server: Server | undefined;
  private paused = false;
  private held: (() => void)[] = [];
  /**
   * Requests by kind, and bytes in and out (for the cluster benchmark). KV reads (`kvGet` + `kvBlocking`): a watch
   * that fails to block again shows up as a count rising while nothing is written.
   */
  readonly counts: Record<string, number> = {};
  private count(kind: string, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }
  private readonly settings: ServerSettings;
  private loopTimer: NodeJS.Timeout | undefined;
  private readonly stateOptions: StateOptions;

  private constructor(
    readonly host: string,
    public port: number,
    private readonly opts: ConsulServerOptions,
  ) {
    this.stateOptions = { ttlMultiplier: opts.ttlMultiplier ?? 2, tombstoneTtlMs: opts.tombstoneTtlMs ?? 15 * 60_000 };
    this.state = new ConsulState(this.stateOptions);
    this.settings = {
      nodeName: NODE_NAME,
      sessionTtlMinNs: (opts.sessionTtlMinSeconds ?? 10) * 1e9,
      defaultQueryTimeMs: opts.defaultQueryTimeMs ?? 300_000,
      maxQueryTimeMs: opts.maxQueryTimeMs ?? 600_000,
    };
  }

  static async start(opts: ConsulServerOptions = {}): Promise<ConsulCore> {
    const server = new ConsulCore(opts.host ?? '127.0.0.1', opts.port ?? 0, opts);
    await server.start();
    return server;
  }

  /** Listens again on the same port; `wipe` starts from an empty state (a new cluster: indexes go back to 1). */
  async start(opts: { wipe?: boolean } = {}): Promise<void> {
    if (this.server) {
      if (opts.wipe) throw new Error('stop the server before wiping its state');
      return;
    }
    if (opts.wipe) this.state = new ConsulState(this.stateOptions);
    else this.state.startTimers();
    const server = createServer((req, res) => this.receive(req, res));
    server.on('connection', () => this.count('connections'));
    this.watchLoop();
    // Go's HTTP server keeps idle connections open; Node's 5 s default would race with clients reusing them.
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Go's listener (Consul's) takes the kernel's somaxconn as its accept queue; Node's default of 511 overflowed
      // when a hundred simulated hosts connected at once (their SYNs dropped, reads timing out after 4 s).
      server.listen({ port: this.port, host: this.host, backlog: somaxconn() }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** An outage: the port closes, open connections drop, nothing expires; the data stays for start(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.paused = false;
    this.held = [];
    this.state.stopTimers();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** A partition: connections are accepted but nothing is answered until resume(); sessions keep expiring. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const run of this.held.splice(0)) run();
  }

  /** Invalidates a session now, as its TTL timer would (Consul's own comes only at 2 x TTL: too slow for tests). */
  expireSession(id: string): void {
    this.state.destroySession(id);
  }

  /** Counts the server thread's stalls: a tick 100 ms apart that came more than a second late (`loopStalls`). */
  private watchLoop(): void {
    if (this.loopTimer) return;
    let last = performance.now();
    this.loopTimer = setInterval(() => {
      const now = performance.now();
      const late = now - last - 100;
      if (late > 1_000) this.count('loopStalls');
      if (late > (this.counts.loopMaxMs ?? 0)) this.counts.loopMaxMs = Math.round(late);
      last = now;
    }, 100);
    this.loopTimer.unref();
  }

  private gate(run: () => void): void {
    if (this.paused) this.held.push(run);
    else run();
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    arrival.set(res, performance.now());
    // A request that does not block whose client hung up before the answer (its timeout ran out): with no slow
    // replies, the server never answered it at all.
    if (!/[?&]index=/.test(req.url ?? '')) res.once('close', () => res.writableEnded || this.count('unanswered'));
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A request its client gave up on during a pause never reached Consul, as packets lost in a partition.
    req.on('end', () => this.gate(() => req.socket.destroyed || this.dispatch(req, res, Buffer.concat(chunks))));
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const raw = req.url ?? '/';
    const cut = raw.indexOf('?');
    let path: string;
    try {
      path = decodeURIComponent(cut < 0 ? raw : raw.slice(0, cut));
    } catch {
      this.reply(res, text(400, 'invalid URL escape'));
      return;
    }
    const onClose = (listener: () => void): (() => void) => {
      res.once('close', listener);
      return () => res.off('close', listener);
    };
    const call: Call = { method: req.method ?? 'GET', path, query: new URLSearchParams(cut < 0 ? '' : raw.slice(cut + 1)), body, onClose };
    this.count(requestKind(call.method, path, call.query));
    this.count('bytesIn', body.length);
    let answer: Reply | Promise<Reply>;
    try {
      answer = this.checkToken(req, call) ?? this.route({ state: this.state, settings: this.settings }, call);
    } catch (err) {
      // Consul answers any untyped error with a 500 and its text; a bug here must not take the server down.
      answer = text(500, err instanceof Error ? err.message : String(err));
    }
    void Promise.resolve(answer).then((reply) => this.gate(() => this.reply(res, reply, call)));
  }

  private checkToken(req: IncomingMessage, call: Call): Reply | undefined {
    if (this.opts.token === undefined || call.path.startsWith('/v1/status/')) return undefined;
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const header = req.headers['x-consul-token'];
    const given = (Array.isArray(header) ? header[0] : header) ?? bearer ?? call.query.get('token') ?? '';
    if (given === this.opts.token) return undefined;
    // No token means the anonymous token, which the deny-by-default policy refuses; an unknown one is not found.
    return text(403, given ? 'ACL not found' : 'Permission denied');
  }

  private route(env: Env, call: Call): Reply | Promise<Reply> {
    const p = call.path;
    if (p.startsWith('/v1/kv/')) return kvRoute(env, call);
    if (p === '/v1/txn') return txnRoute(env, call);
    if (p.startsWith('/v1/session/')) return sessionRoute(env, call);
    if (p.startsWith('/v1/status/')) return statusRoute(call);
    return text(404, '404 page not found');
  }

  private reply(res: ServerResponse, reply: Reply, call?: Call): void {
    if (res.destroyed || res.writableEnded) return;
    const policy = this.opts.token === undefined ? 'allow' : 'deny';
    res.writeHead(reply.status, { 'X-Consul-Default-ACL-Policy': policy, ...reply.headers });
    const bytes = reply.body === undefined ? 0 : Buffer.byteLength(reply.body);
    // Requests that do not block, answered more than a second after they arrived: the server fell behind.
    if (call && !call.query.has('index') && performance.now() - (arrival.get(res) ?? Infinity) > 1_000) this.count('slowReplies');
    this.count('bytesOut', bytes);
    if (reply.woken) {
      this.count('kvWoken');
      this.count('bytesOutWoken', bytes);
    }
    // Bytes of KV reads by area (the key's first three parts), to tell which prefixes a cluster's load comes from.
    if (call?.method === 'GET' && call.path.startsWith('/v1/kv/')) this.count(`kvOut:${kvArea(call.path)}`, bytes);
    res.end(reply.body);
  }
}

/** `/v1/kv/knit/overlay/endpoints/<segment>/…` → `knit/overlay/endpoints`: the key's leading words, up to three. */
function kvArea(path: string): string {
  const parts = path.slice('/v1/kv/'.length).split('/');
  const words = [parts[0]];
  for (const part of parts.slice(1, 3)) {
    if (!/^[a-z][a-z-]*$/.test(part)) break;
    words.push(part);
  }
  return words.join('/');
}

/** A request's kind for the counters: KV reads with and without `index` (blocking), KV writes, txn, sessions. */
function requestKind(method: string, path: string, query: URLSearchParams): string {
  if (path.startsWith('/v1/kv/')) return method === 'GET' ? (query.has('index') ? 'kvBlocking' : 'kvGet') : 'kvWrite';
  if (path === '/v1/txn') return 'txn';
  if (path.startsWith('/v1/session/renew/')) return 'sessionRenew';
  if (path.startsWith('/v1/session/create')) return 'sessionCreate';
  if (path.startsWith('/v1/session/destroy/')) return 'sessionDestroy';
  return 'other';
}
