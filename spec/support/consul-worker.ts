// The worker thread that runs the Consul test server, driven by messages from consul-server.ts.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { ConsulCore, type ConsulServerOptions } from './consul-core.js';

export interface Command {
  id: number;
  op: 'stop' | 'start' | 'wipe' | 'pause' | 'resume' | 'expireSession' | 'counters';
  session?: string;
}

/** id 0 announces the first start; `port` is where the server listens. */
export interface Answer {
  id: number;
  port?: number;
  /** For counters: requests by kind and bytes in and out so far. */
  counts?: Record<string, number>;
  error?: string;
}

const port = parentPort;
if (!port) throw new Error('consul-worker.ts runs only as a worker thread');
// The calling thread's priority: this worker's, not the process's other threads'.
const options = workerData as ConsulServerOptions;
if (options.nice !== undefined) setPriority(options.nice);
const core = await ConsulCore.start(options);
port.postMessage({ id: 0, port: core.port } satisfies Answer);

port.on('message', (cmd: Command) => {
  // A read of the counters, answered at once rather than queued behind a command.
  if (cmd.op === 'counters') return port.postMessage({ id: cmd.id, port: core.port, counts: { ...core.counts } } satisfies Answer);
  run(cmd).then(
    () => port.postMessage({ id: cmd.id, port: core.port } satisfies Answer),
    (err: unknown) => port.postMessage({ id: cmd.id, error: err instanceof Error ? err.message : String(err) } satisfies Answer),
  );
});

async function run(cmd: Command): Promise<void> {
  switch (cmd.op) {
    case 'stop':
      return core.stop();
    case 'start':
      return core.start();
    case 'wipe':
      return core.start({ wipe: true });
    case 'pause':
      return core.pause();
    case 'resume':
      return core.resume();
    case 'expireSession':
      return core.expireSession(cmd.session ?? '');
  }
}
