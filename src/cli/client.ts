// Asks a running knit over its socket (POST, as dockerd does) and returns the parsed answer.
import { request } from 'node:http';

/** Doctor reconciles the whole host; it may take a while on a busy one, but never forever. */
const ASK_TIMEOUT_MS = 60_000;

export class CliError extends Error {}

/** Why the socket did not answer, as one sentence a person can act on. */
export function unreachable(socket: string, code: string | undefined): string {
  if (code === 'ENOENT' || code === 'ECONNREFUSED') return `knit is not running: cannot reach ${socket}`;
  if (code === 'EACCES') return `cannot reach ${socket}: permission denied (the socket is root's: run as root)`;
  return `cannot reach ${socket}: ${code ?? 'unknown error'}`;
}

export function ask(socket: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'POST', timeout: ASK_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        let doc: unknown;
        try {
          doc = JSON.parse(body);
        } catch {
          return reject(new CliError(`knit at ${socket} answered ${path} with something that is not JSON: ${body.slice(0, 200)}`));
        }
        const err = (doc as { Err?: unknown }).Err;
        if (res.statusCode !== 200) return reject(new CliError(`knit at ${socket} refused ${path}: ${typeof err === 'string' ? err : `HTTP ${res.statusCode}`}`));
        resolve(doc);
      });
    });
    req.on('timeout', () => req.destroy(new CliError(`knit at ${socket} did not answer ${path} within ${ASK_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(err instanceof CliError ? err : new CliError(unreachable(socket, err.code))));
    req.end('{}');
  });
}
