// Hand-written HTTP/1.1 over a unix socket: exact bytes, slow clients, and clients that hang up mid-body.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RawRequest {
  method?: string;
  path: string;
  body: Buffer;
  /** Send the body in pieces of `bytes`, one every `everyMs` (a slow client). */
  trickle?: { bytes: number; everyMs: number };
  /** Send only this many body bytes of the announced length, then disconnect (no reply expected). */
  cutAfter?: number;
  /** Chunked transfer encoding instead of Content-Length. */
  chunked?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

export type Outcome =
  | { kind: 'reply'; status: number; body: unknown; raw: string }
  | { kind: 'cut' }
  | { kind: 'failed'; error: string };

function head(req: RawRequest): string {
  const framing = req.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${req.body.length}`;
  const extra = Object.entries(req.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  // What dockerd sends: no Content-Type, a dummy Host, the plugin Accept header.
  return `${req.method ?? 'POST'} ${req.path} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n${framing}\r\n${extra}Connection: close\r\n\r\n`;
}

function parse(data: Buffer): Outcome {
  const text = data.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (split < 0 || !status) return { kind: 'failed', error: `no HTTP reply (${data.length} bytes: ${JSON.stringify(text.slice(0, 80))})` };
  const raw = text.slice(split + 4);
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    body = undefined;
  }
  return { kind: 'reply', status: Number(status[1]), body, raw };
}

const frame = (piece: Buffer, chunked: boolean): Buffer => (chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);

/** Sends one request on a fresh connection and reads the reply until the server closes it. */
export function sendRaw(socket: string, req: RawRequest, timeoutMs = 30_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (o: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'failed', error: `no reply within ${timeoutMs} ms` }), timeoutMs);
    conn.on('data', (c: Buffer) => chunks.push(c));
    // A server may answer (413) before the body is sent and close: the reply already read is what counts.
    conn.on('error', (err) => (chunks.length ? finish(parse(Buffer.concat(chunks))) : finish({ kind: 'failed', error: err.message })));
    conn.on('close', () => finish(chunks.length ? parse(Buffer.concat(chunks)) : { kind: 'failed', error: 'closed without a reply' }));
    conn.once('connect', () => {
      void write(conn, req).then((cut) => {
        if (cut) finish({ kind: 'cut' });
      }, () => undefined);
    });
  });
}

async function write(conn: ReturnType<typeof connect>, req: RawRequest): Promise<boolean> {
  const chunked = req.chunked ?? false;
  const body = req.cutAfter === undefined ? req.body : req.body.subarray(0, req.cutAfter);
  // Head and body in one write where the test allows it: a server that answers from the head alone (an unknown
  // encoding) and closes must not race a second write into a reset that loses its reply.
  if (!req.trickle && !chunked && req.cutAfter === undefined) {
    conn.write(Buffer.concat([Buffer.from(head(req)), body]));
    return false;
  }
  conn.write(head(req));
  if (req.trickle) {
    for (let at = 0; at < body.length && !conn.destroyed; at += req.trickle.bytes) {
      conn.write(frame(body.subarray(at, at + req.trickle.bytes), chunked));
      await sleep(req.trickle.everyMs);
    }
  } else if (body.length) {
    conn.write(frame(body, chunked));
  }
  if (req.cutAfter !== undefined) {
    // Let the partial body reach the server before hanging up.
    await sleep(20);
    return true;
  }
  if (chunked && !conn.destroyed) conn.write('0\r\n\r\n');
  return false;
}
