// A small Docker engine API client over its unix socket: version negotiation, JSON calls, the event stream.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { KnitError, unavailable } from '../errors.js';

/** The newest API version whose shapes knit reads; a newer engine is asked for this one. */
export const MAX_API = '1.51';
/** The oldest knit reads (Docker 20.10); older engines are refused with a clear error. */
export const MIN_API = '1.41';
const CALL_TIMEOUT_MS = 10_000;
/** An event is one JSON object on a line; a line longer than this is not an event. */
const MAX_EVENT_LINE = 1 << 20;
/** A container list of thousands of containers fits; anything larger is not the engine talking. */
const MAX_REPLY = 64 << 20;

/** Compares "1.41"-style versions numerically. */
export function compareApi(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** The version to speak: the engine's own, capped at the newest knit knows. */
export function negotiate(engineApi: string): string {
  if (!/^\d+\.\d+$/.test(engineApi)) throw new KnitError('internal', `the Docker engine reports API version "${engineApi}", which is not a version`);
  if (compareApi(engineApi, MIN_API) < 0) throw new KnitError('bad-request', `the Docker engine speaks API ${engineApi}; knit's names need ${MIN_API} (Docker 20.10) or newer`);
  return compareApi(engineApi, MAX_API) > 0 ? MAX_API : engineApi;
}

export interface EngineEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  /** Seconds since the epoch: what `since=` takes after a reconnection. */
  time?: number;
}

export class EngineClient {
  private version?: string;

  constructor(private readonly socketPath: string) {}

  /** GET /version (unversioned), then every call names the negotiated version. */
  async connect(): Promise<string> {
    const v = await this.call<{ ApiVersion?: string }>('/version');
    this.version = negotiate(String(v.ApiVersion ?? ''));
    return this.version;
  }

  /** A versioned GET; `undefined` when the engine answers 404 (the object is gone). */
  async get<T>(path: string): Promise<T | undefined> {
    if (!this.version) await this.connect();
    return this.call<T>(`/v${this.version}${path}`, true);
  }

  private call<T>(path: string, missingOk = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = this.open(path, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body.length < MAX_REPLY ? (body += c) : req.destroy(new Error(`reply larger than ${MAX_REPLY} bytes`))));
        res.on('end', () => {
          if (res.statusCode === 404 && missingOk) return resolve(undefined as T);
          if (res.statusCode !== 200) return reject(unavailable(`Docker engine GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
          try {
            resolve(JSON.parse(body) as T);
          } catch (err) {
            reject(unavailable(`Docker engine GET ${path}: the reply is not JSON`, err));
          }
        });
      });
      req.setTimeout(CALL_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${CALL_TIMEOUT_MS} ms`)));
      req.on('error', (err) => reject(unavailable(`Docker engine at ${this.socketPath}: ${err.message}`, err)));
      req.end();
    });
  }

  /**
   * Streams GET /events (container and network events) to `onEvent` until the engine closes it; resolves then,
   * rejects when the stream cannot be opened. `close()` on the returned handle ends it from our side.
   */
  events(query: { since?: string }, onEvent: (ev: EngineEvent) => void): { done: Promise<void>; close(): void } {
    const filters = JSON.stringify({ type: ['container', 'network'], event: ['start', 'die', 'destroy', 'rename', 'connect', 'disconnect'] });
    const qs = new URLSearchParams({ filters, ...(query.since ? { since: query.since } : {}) });
    let req!: ClientRequest;
    const done = new Promise<void>((resolve, reject) => {
      req = this.open(`/v${this.version}/events?${qs}`, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(unavailable(`Docker engine events: HTTP ${res.statusCode}`));
        }
        splitLines(res, (line) => {
          try {
            onEvent(JSON.parse(line) as EngineEvent);
          } catch {
            // A line that is not an event carries nothing to act on; the periodic resync covers any gap.
          }
        });
        res.on('end', resolve);
        res.on('close', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    return { done, close: () => req.destroy() };
  }

  private open(path: string, onResponse: (res: IncomingMessage) => void): ClientRequest {
    return request({ socketPath: this.socketPath, path, method: 'GET', headers: { Host: 'docker' } }, onResponse);
  }
}

function splitLines(res: IncomingMessage, onLine: (line: string) => void): void {
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onLine(line);
    }
    if (buf.length > MAX_EVENT_LINE) buf = '';
  });
}
