// Runs knit (the built dist/main.js) inside a test host, as a legacy plugin its dockerd discovers.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from './host.js';
import { repoRoot } from './layout.js';
import { GiveUp, waitFor, type Spawned } from './proc.js';
import { post } from './client.js';

export class Knit {
  proc?: Spawned;
  readonly socket: string;
  readonly stateDir: string;

  constructor(readonly host: Host, readonly env: Record<string, string> = {}) {
    this.socket = host.socketPath('knit');
    this.stateDir = join(host.dir, 'knit-state');
  }

  private started = false;

  /** The first start of a test's knit begins from an empty state directory. */
  async start(): Promise<void> {
    if (!this.started) await rm(this.stateDir, { recursive: true, force: true });
    this.started = true;
    this.proc = this.host.spawnInHost(['node', join(repoRoot, 'dist/main.js')], {
      KNIT_SOCKET: this.socket,
      KNIT_STATE_DIR: this.stateDir,
      KNIT_LOG_LEVEL: 'debug',
      ...this.env,
    });
    const proc = this.proc;
    await waitFor('knit to answer on its socket', async () => {
      if (!proc.running()) throw new GiveUp(`knit exited: ${proc.stderr.slice(-2000)}`);
      const r = await post(this.socket, '/NetworkDriver.EndpointOperInfo', { NetworkID: '0'.repeat(64), EndpointID: '0'.repeat(64) }, 2_000).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
  }

  /** SIGKILL, as a crash would: no clean-up code runs. */
  async kill9(): Promise<void> {
    this.proc?.kill('SIGKILL');
    await this.proc?.exited;
  }

  async stop(): Promise<void> {
    if (this.proc?.running()) await this.proc.stop(10_000);
  }

  async restart(): Promise<void> {
    await this.kill9();
    await this.start();
  }

  /** Structured log lines knit printed so far. */
  logs(): Array<Record<string, unknown>> {
    return (this.proc?.stdout ?? '').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  }
}
