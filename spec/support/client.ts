// Posts raw plugin-protocol requests to a unix socket, as dockerd does (no Content-Type header).
import { request } from 'node:http';

export interface Reply {
  status: number;
  body: any;
  raw: string;
}

export function post(socket: string, path: string, body: unknown = '', timeoutMs = 30_000): Promise<Reply> {
  return send({ socket, method: 'POST', path, body, timeoutMs });
}

/** Any method, for the requests dockerd never sends (a GET must be refused like an unknown path). */
export function send(o: { socket: string; method: string; path: string; body?: unknown; timeoutMs?: number }): Promise<Reply> {
  const { socket, method, path, body = '', timeoutMs = 30_000 } = o;
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, path, method, headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' }, timeout: timeoutMs },
      (res) => {
        let raw = '';
        res.on('data', (c) => (raw += c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(raw);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, raw });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A fresh 64-hex Docker-style ID. */
export const dockerId = (): string => [...Array(64)].map(() => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
