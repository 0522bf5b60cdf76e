// knit (dist/main.js) as its own process in a throwaway network namespace, with no dockerd: hostile input goes straight to its socket.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { post } from '../../support/client.js';
import { repoRoot } from '../../support/layout.js';
import { NODE_DAEMON } from '../../support/knit.js';
import { GiveUp, run, spawnLogged, waitFor, type RunOptions, type RunResult, type Spawned } from '../../support/proc.js';

export class LoneKnit {
  private constructor(
    readonly netns: string,
    readonly dir: string,
    readonly socket: string,
    readonly stateDir: string,
    readonly proc: Spawned,
  ) {}

  /** Creates netns `knt-NAME` (which must not exist) and starts knit in it with the embedded store. */
  static async start(name: string): Promise<LoneKnit> {
    const netns = `knt-${name}`;
    if (existsSync(`/run/netns/${netns}`)) throw new Error(`netns ${netns} already exists: another run uses it`);
    await run(['ip', 'netns', 'add', netns]);
    await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    const dir = await mkdtemp(join(tmpdir(), `knit-${name}-`));
    // The socket's directory is open to all, so that only the socket's own mode keeps other users out.
    const sockDir = join(dir, 'run');
    await mkdir(sockDir);
    await chmod(dir, 0o755);
    await chmod(sockDir, 0o755);
    const socket = join(sockDir, 'knit.sock');
    const stateDir = join(dir, 'state');
    const proc = spawnLogged(['nsenter', `--net=/run/netns/${netns}`, '--', ...NODE_DAEMON, join(repoRoot, 'dist/main.js')], {
      logFile: join(dir, 'knit.log'),
      env: { KNIT_SOCKET: socket, KNIT_STATE_DIR: stateDir, KNIT_LOG_LEVEL: 'warn' },
      capture: true,
    });
    const knit = new LoneKnit(netns, dir, socket, stateDir, proc);
    try {
      await waitFor('knit to answer on its socket', async () => {
        if (!proc.running()) throw new GiveUp(`knit exited: ${proc.stderr.slice(-2000)}`);
        return (await post(socket, '/Plugin.Activate', '', 2_000).catch(() => undefined))?.status === 200;
      }, { timeoutMs: 30_000, intervalMs: 100 });
    } catch (err) {
      await knit.dispose();
      throw err;
    }
    return knit;
  }

  get pid(): number {
    return this.proc.pid;
  }

  running(): boolean {
    return this.proc.running();
  }

  /** Resident memory of the knit process, from /proc (0 once it has gone). */
  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8').catch(() => '');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return kb ? Number(kb[1]) * 1024 : 0;
  }

  /** Runs a command in knit's network namespace. */
  exec(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['nsenter', `--net=/run/netns/${this.netns}`, '--', ...argv], opts);
  }

  /** Stops knit, deletes the namespace (and every link in it) and the temp dir. */
  async dispose(): Promise<void> {
    await this.proc.stop(5_000);
    await run(['ip', 'netns', 'del', this.netns], { reject: false });
    await rm(this.dir, { recursive: true, force: true });
  }
}
