// The Consul test server, run in a worker thread of the test process: a real Consul is its own process, and a server
// sharing the client's event loop accepts new connections seconds late under load, which distorts every timing.
// A worker does not go through jest's transform, so its sources are transpiled with the project's TypeScript first.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import type { ConsulServerOptions } from './consul-core.js';
import type { Answer, Command } from './consul-worker.js';

export type { ConsulServerOptions };

/** How long a command to the worker may take before the test fails instead of hanging. */
const COMMAND_TIMEOUT_MS = 10_000;

const here = fileURLToPath(new URL('.', import.meta.url));

/** Transpiles the worker and every module it imports (relative imports only: the server needs no packages). */
async function transpile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-consul-'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}');
  const pending = ['consul-worker.js'];
  const done = new Set<string>();
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (done.has(name)) continue;
    done.add(name);
    const source = await readFile(join(here, name.replace(/\.js$/, '.ts')), 'utf8');
    for (const m of source.matchAll(/from '\.\/([\w-]+\.js)'/g)) pending.push(m[1]);
    const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } });
    await writeFile(join(dir, name), outputText);
  }
  return dir;
}

type Waiter = { resolve: (answer: Answer) => void; reject: (err: Error) => void };

export class ConsulTestServer {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    private readonly dir: string,
    readonly host: string,
    public port: number,
  ) {}

  static async start(opts: ConsulServerOptions = {}): Promise<ConsulTestServer> {
    const dir = await transpile();
    const worker = new Worker(join(dir, 'consul-worker.js'), { workerData: opts });
    const first = await new Promise<Answer>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }).catch(async (err: unknown) => {
      await worker.terminate();
      await rm(dir, { recursive: true, force: true });
      throw err;
    });
    const server = new ConsulTestServer(worker, dir, opts.host ?? '127.0.0.1', first.port ?? 0);
    worker.on('message', (a: Answer) => server.settle(a));
    worker.on('error', (err) => server.failAll(err));
    worker.on('exit', () => server.failAll(new Error('the Consul test server worker exited')));
    return server;
  }

  /** host:port, as openConsulStore and KNIT_STORE=consul://… take it. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** An outage: the port closes, open connections drop, no session expires; the data stays for start(). */
  async stop(): Promise<void> {
    await this.command('stop');
  }

  /** Listens again on the same port; `wipe` starts from an empty state, as a new cluster would (indexes restart). */
  async start(opts: { wipe?: boolean } = {}): Promise<void> {
    await this.command(opts.wipe ? 'wipe' : 'start');
  }

  /** A partition: connections are accepted but nothing is answered until resume(); sessions keep expiring. */
  async pause(): Promise<void> {
    await this.command('pause');
  }

  async resume(): Promise<void> {
    await this.command('resume');
  }

  /** Invalidates a session now, as its TTL timer would (Consul's own comes only at 2 x TTL: too slow for tests). */
  async expireSession(session: string): Promise<void> {
    await this.command('expireSession', session);
  }

  /** How many KV reads (GET /v1/kv/…, blocking or not) the server has received since it started. */
  async kvReads(): Promise<number> {
    const c = await this.counters();
    return (c.kvGet ?? 0) + (c.kvBlocking ?? 0);
  }

  /**
   * Requests by kind (kvGet, kvBlocking, kvWrite, txn, sessionCreate, sessionRenew, sessionDestroy, other), bytesIn,
   * bytesOut; kvWoken and bytesOutWoken: blocking reads answered because their index moved, and their bytes;
   * `kvOut:AREA`: bytes of KV reads by the first three parts of their key (e.g. `kvOut:knit/hosts/`).
   */
  async counters(): Promise<Record<string, number>> {
    return (await this.command('counters')).counts ?? {};
  }

  /** Stops the server and its worker and removes the transpiled sources; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.command('stop').catch(() => undefined);
    await this.worker.terminate();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async command(op: Command['op'], session?: string): Promise<Answer> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    const answer = await new Promise<Answer>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      timer = setTimeout(() => reject(new Error(`the Consul test server did not ${op} within ${COMMAND_TIMEOUT_MS} ms`)), COMMAND_TIMEOUT_MS);
      this.worker.postMessage({ id, op, session } satisfies Command);
    }).finally(() => {
      clearTimeout(timer);
      this.waiters.delete(id);
    });
    if (answer.error) throw new Error(`the Consul test server could not ${op}: ${answer.error}`);
    if (answer.port) this.port = answer.port;
    return answer;
  }

  private settle(answer: Answer): void {
    this.waiters.get(answer.id)?.resolve(answer);
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiters.values()) waiter.reject(err);
  }
}

/** Starts a Consul test server; stop it with close(). */
export const startConsulServer = (opts: ConsulServerOptions = {}): Promise<ConsulTestServer> => ConsulTestServer.start(opts);
