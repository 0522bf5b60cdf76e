// Runs knit (the built dist/main.js) inside a test host, as a legacy plugin its dockerd discovers.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from './host.js';
import { repoRoot } from './layout.js';
import { GiveUp, waitFor, type Spawned } from './proc.js';
import { post } from './client.js';

/**
 * knit's resolver forwards names it does not know to the servers of a resolv.conf; by default a test's knit gets
 * one without any, so nothing is ever sent to the machine's own resolver (tests that need an upstream run one).
 */
export async function noUpstreamsFile(dir: string): Promise<string> {
  const path = join(dir, 'knit-no-upstreams.conf');
  await writeFile(path, '# no upstream resolvers: tests send traffic only to what they made\n');
  return path;
}

/**
 * How knit's launchers start node for the daemon (plugin/entrypoint.sh, plugin/install.sh, `make run`): with a
 * young generation of 2 MiB per semi-space instead of V8's 16, which keeps a daemon's RSS about 20 MiB lower
 * (README, "Kernel and host requirements"). Tests and benchmarks start knit the same way, so they measure what users run.
 */
export const NODE_DAEMON = ['node', '--max-semi-space-size=2'];

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
    const noUpstreams = await noUpstreamsFile(this.host.dir);
    this.proc = this.host.spawnInHost([...NODE_DAEMON, join(repoRoot, 'dist/main.js')], {
      KNIT_SOCKET: this.socket,
      KNIT_STATE_DIR: this.stateDir,
      KNIT_LOG_LEVEL: 'debug',
      KNIT_RESOLV_CONF: noUpstreams,
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
