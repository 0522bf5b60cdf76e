// The express app on the plugin's unix socket: raw bodies, one adapter for every route, errors as 500.
import express, { type NextFunction, type Request, type Response } from 'express';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { describe, KnitError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseBody } from './decode.js';
import type { CallObserver } from './metrics.js';
import type { Route } from './routes.js';

export const MAX_BODY = '1mb';

export function createApp(a: { routes: Record<string, Route>; log: Logger; ready?: Promise<void>; metrics?: CallObserver }): express.Express {
  const { routes, log, ready = Promise.resolve(), metrics } = a;
  // winston formats a message before its level is checked: the per-call line is built only when it is kept.
  const debug = log.isDebugEnabled();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Any Content-Type (dockerd sends none): the body is read raw and parsed by us.
  app.use(express.raw({ type: () => true, limit: MAX_BODY }));
  app.post('/:method', async (req: Request, res: Response) => {
    const route = Object.hasOwn(routes, req.path) ? routes[req.path] : undefined;
    if (!route) return void res.status(404).json({ Err: `unknown method ${req.path.slice(0, 100)}` });
    const started = process.hrtime.bigint();
    try {
      if (!route.instant) await ready;
      const reply = await route.handle(parseBody(req.body));
      send(res, 200, reply);
      const ms = elapsedMs(started);
      metrics?.record(req.path, ms, 'ok');
      if (debug) log.debug('call', { path: req.path, ms });
    } catch (err) {
      const msg = describe(err);
      metrics?.record(req.path, elapsedMs(started), err instanceof KnitError ? err.kind : 'internal');
      log[err instanceof KnitError && err.kind !== 'internal' ? 'info' : 'error']('call failed', {
        path: req.path, ms: elapsedMs(started), error: msg,
      });
      send(res, 500, route.ipam ? { Err: msg, Error: msg } : { Err: msg });
    }
  });
  app.use((req: Request, res: Response) => void res.status(404).json({ Err: `unknown method ${req.path.slice(0, 100)}` }));
  // Body-parser failures (too large, aborted) arrive here; they are the client's fault, not a crash.
  app.use((err: Error & { status?: number }, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const msg = err.status === 413 ? `the request body is larger than ${MAX_BODY}` : `bad request: ${err.message}`;
    log.info('call failed', { path: req.path.slice(0, 100), error: msg });
    res.status(500).json({ Err: msg, Error: msg });
  });
  return app;
}

/** The reply as one string with its length: Node writes headers and body in one write (res.json would make two). */
function send(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const elapsedMs = (start: bigint): number => Number((process.hrtime.bigint() - start) / 1000n) / 1000;

/** Listens on a root-only unix socket, replacing a stale socket file but never a live one. */
export async function listen(app: express.Express, socket: string): Promise<Server> {
  const server = await listenUnix(serverFor(app), socket);
  // dockerd keeps idle connections for 30 s; closing sooner races its reuse (docs/protocol.md, Connections).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 60_000;
  return server;
}

/** `server` on a unix socket created root-only (0600), replacing a stale socket file but never a live one. */
export async function listenUnix(server: Server, socket: string): Promise<Server> {
  await mkdir(dirname(socket), { recursive: true, mode: 0o755 });
  await removeStaleSocket(socket);
  // The socket is created root-only: no window in which another user could connect.
  const umask = process.umask(0o177);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => (server.off('error', reject), resolve()));
  }).finally(() => process.umask(umask));
  await chmod(socket, 0o600);
  return server;
}

/**
 * An HTTP server for `app` whose requests and replies are created with express's prototypes. express
 * re-parents every req and res it is given (Object.setPrototypeOf); V8 then rebuilds their hidden classes
 * and Node's own HTTP code goes megamorphic, which costs more per call than Node's whole HTTP handling and
 * knit's own work together. Created with the right prototypes, that step changes nothing (figures in
 * bench/RESULTS.md).
 */
function serverFor(app: express.Express): Server {
  class Request extends IncomingMessage {}
  Object.setPrototypeOf(Request.prototype, app.request);
  class Reply extends ServerResponse {}
  Object.setPrototypeOf(Reply.prototype, app.response);
  app.request = Request.prototype as unknown as express.Request;
  app.response = Reply.prototype as unknown as express.Response;
  return createServer({ IncomingMessage: Request, ServerResponse: Reply }, app);
}

async function removeStaleSocket(socket: string): Promise<void> {
  const st = await lstat(socket).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new KnitError('internal', `${socket} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = createConnection(socket);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (live) throw new KnitError('internal', `another process is already serving ${socket}; is knit running twice?`);
  await unlink(socket);
}
