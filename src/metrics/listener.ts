// The metrics listener (KNIT_METRICS): plain HTTP on the address the user opted into, answering only GET /metrics.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { describe, KnitError } from '../errors.js';
import { listenUnix } from '../protocol/server.js';

/** Where metrics are served, as KNIT_METRICS names it (config.ts parses the text into this). */
export type MetricsAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export interface Exposition {
  contentType: string;
  metrics(): Promise<string>;
}

/** The address as a person would write it back: `127.0.0.1:9464`, `[::1]:9464`, `unix:///run/knit-metrics.sock`. */
export function addressText(a: MetricsAddress): string {
  if (a.kind === 'unix') return `unix://${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The one route: GET /metrics; any other path is 404, any other method on it 405. */
export function handler(exposition: Exposition, onError: (err: unknown) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return reply(res, 404, 'text/plain; charset=utf-8', 'not found: knit serves only GET /metrics here\n');
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      return reply(res, 405, 'text/plain; charset=utf-8', 'method not allowed: only GET /metrics\n');
    }
    exposition.metrics().then(
      (text) => reply(res, 200, exposition.contentType, text),
      (err) => {
        onError(err);
        reply(res, 500, 'text/plain; charset=utf-8', `collecting metrics failed: ${describe(err)}\n`);
      },
    );
  };
}

function reply(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Listens on `address`; a unix socket is created root-only (0600) and replaces a stale socket file, never a live one. */
export async function listenMetrics(address: MetricsAddress, serve: ReturnType<typeof handler>): Promise<Server> {
  const server = createServer(serve);
  // A slow or stuck scraper must not hold a request open for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  try {
    if (address.kind === 'unix') return await listenUnix(server, address.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => (server.off('error', reject), resolve()));
    });
    return server;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KnitError('unavailable', `KNIT_METRICS ${addressText(address)}: cannot listen: ${code ? `${code} (${describe(err)})` : describe(err)}`);
  }
}
