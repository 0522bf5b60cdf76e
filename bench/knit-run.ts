// Runs knit in a bench host from a copy of dist/ taken when the run starts: the working tree is shared, and a
// rebuild by someone else halfway through would otherwise change (or break) what the later benchmarks measure.
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { post } from '../spec/support/client.js';
import { NODE_DAEMON, noUpstreamsFile } from '../spec/support/knit.js';
import { repoRoot, testbedDir } from '../spec/support/layout.js';
import { GiveUp, waitFor, type Spawned } from '../spec/support/proc.js';
import type { Host } from '../spec/support/testbed.js';

/** Under the repository, so that the copy still finds node_modules and package.json's "type": "module". */
const SNAPSHOT = join(testbedDir, 'bench', 'knit-dist');
let distDir = join(repoRoot, 'dist');

/** Copies dist/ for this run; every BenchKnit started afterwards runs the copy. */
export async function snapshotDist(): Promise<void> {
  await rm(SNAPSHOT, { recursive: true, force: true });
  await mkdir(join(testbedDir, 'bench'), { recursive: true });
  await cp(join(repoRoot, 'dist'), SNAPSHOT, { recursive: true });
  distDir = SNAPSHOT;
}

/** The compiled module `path` (relative to dist/) of the knit this run measures. */
export const builtModule = (path: string): string => join(distDir, path);

export class BenchKnit {
  proc?: Spawned;
  readonly socket: string;

  /** `env` is added to knit's own settings; it starts from an empty state dir (`name` under the host's dir). */
  constructor(readonly host: Host, private readonly env: Record<string, string> = {}, private readonly name = 'knit-state') {
    this.socket = host.socketPath('knit');
  }

  async start(): Promise<void> {
    const stateDir = join(this.host.dir, this.name);
    await rm(stateDir, { recursive: true, force: true });
    const proc = this.host.spawnInHost([...NODE_DAEMON, builtModule('main.js')], {
      KNIT_SOCKET: this.socket,
      KNIT_STATE_DIR: stateDir,
      KNIT_LOG_LEVEL: process.env.BENCH_KNIT_LOG_LEVEL ?? 'info',
      KNIT_RESOLV_CONF: await noUpstreamsFile(this.host.dir),
      ...this.env,
    });
    this.proc = proc;
    await waitFor('knit to answer on its socket', async () => {
      if (!proc.running()) throw new GiveUp(`knit exited: ${proc.stderr.slice(-2000)}`);
      // Activate answers before knit has loaded its state; EndpointOperInfo waits for it.
      const zero = '0'.repeat(64);
      const r = await post(this.socket, '/NetworkDriver.EndpointOperInfo', { NetworkID: zero, EndpointID: zero }, 2_000).catch(() => undefined);
      return r?.status === 200;
    }, { timeoutMs: 20_000, intervalMs: 100 });
  }

  async stop(): Promise<void> {
    if (this.proc?.running()) await this.proc.stop(10_000);
  }
}
