// A simulated Docker host: a network namespace and a persistent mount namespace running its own dockerd.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { chrooted, dockerdArgv, execRoot, mountPlan, mountTargets, paths, type EngineLayout, type EngineVersion } from './engine.js';
import { ensureImage, loadImage } from './image.js';
import { checkHostName, ENGINE_PATH, hostCgroup, hostDir, hostNetns, mountNsDir } from './layout.js';
import { mountsUnder, nsIdentity, pidsInCgroup, pidsInNamespaces, signal, waitGone } from './reap.js';
import { GiveUp, run, RunError, spawnLogged, waitFor, type RunOptions, type RunResult, type Spawned } from './proc.js';
import { destroyHost, type Attachment } from './teardown.js';
import { ensureChroot, SID, TRIXIE } from './chroot.js';
import { connectHosts } from './underlay.js';

/** runc's error when its init child died before the first handshake (nothing of the container ran yet). */
const RUNC_INIT_DIED = /waiting for init preliminary setup/;

export interface HostOptions {
  name: string;
  engine?: EngineVersion;
  /** Start the engine with live-restore on (restartEngine can change it later). */
  liveRestore?: boolean;
  /** daemon.json "dns": the DNS servers dockerd gives every container (knit's resolver, for names across hosts). */
  dns?: string[];
  /** Join the underlay (connectHosts) once started; the subnet defaults to 198.18.0.0/24. */
  underlay?: { subnet?: string };
}

export interface ExecOptions extends RunOptions {
  /** Also enter the host's mount namespace (to see /run/docker/plugins, SandboxKey paths, a chrooted engine's exec-root). */
  mount?: boolean;
}

const live = new Set<Host>();

/** Hosts started by this module instance (one per jest test file) and not stopped yet. */
export const liveHosts = (): Host[] => [...live];

export class Host {
  readonly netns: string;
  readonly netnsPath: string;
  readonly mountNs: string;
  readonly pluginsDir: string;
  readonly execRoot: string;
  readonly logsDir: string;
  /** Set by connectHosts. */
  underlayIp?: string;
  /** Namespaces joined to this host (underlay port, outside hosts) that go away with it. */
  readonly attachments: Attachment[] = [];
  private daemon?: Spawned;
  private readonly spawned = new Set<Spawned>();
  private liveRestore: boolean;
  private spawnCount = 0;

  constructor(
    readonly name: string,
    readonly engine: EngineVersion,
    readonly dir: string,
    private readonly layout: EngineLayout,
    liveRestore: boolean,
    private readonly dns?: string[],
  ) {
    this.netns = hostNetns(name);
    this.netnsPath = `/run/netns/${this.netns}`;
    this.mountNs = join(mountNsDir, this.netns);
    this.pluginsDir = paths(dir).plugins;
    this.execRoot = execRoot(layout);
    this.logsDir = paths(dir).logs;
    this.liveRestore = liveRestore;
  }

  /** Where a plugin must listen for this engine to find it as PLUGIN (same path inside and outside the host). */
  socketPath(plugin: string): string {
    return join(this.pluginsDir, `${plugin}.sock`);
  }

  /** The dockerd process id, while it runs. */
  get enginePid(): number | undefined {
    return this.daemon?.running() ? this.daemon.pid : undefined;
  }

  async docker(args: string[], opts: { timeoutMs?: number; reject?: boolean; input?: string } = {}): Promise<RunResult> {
    const argv = ['docker', '-H', `unix://${paths(this.dir).sock}`, ...args];
    const once = () => run(argv, { timeoutMs: 60_000, ...opts });
    // runc's init child can die before its first handshake on a loaded machine ("waiting for init preliminary
    // setup"); that is before any network hook runs, so it says nothing about knit: the container is removed and the
    // run tried once more, said in the log.
    const initDied = (r: RunResult) => args[0] === 'run' && r.exitCode !== 0 && RUNC_INIT_DIED.test(r.stderr);
    let first: RunResult;
    try {
      first = await once();
    } catch (err) {
      if (!(err instanceof RunError) || !initDied(err.result)) throw err;
      first = err.result;
    }
    if (!initDied(first)) return first;
    console.warn(`host ${this.name}: runc's init died starting a container, retrying once: ${first.stderr.trim().split('\n')[0]}`);
    const at = args.indexOf('--name');
    if (at > 0 && args[at + 1]) await run(['docker', '-H', `unix://${paths(this.dir).sock}`, 'rm', '-f', args[at + 1]], { reject: false });
    return once();
  }

  /**
   * The chroot's own docker CLI (with its plugins, e.g. Compose v2 on 28.5) against this engine, run inside the
   * host's namespaces; the work dir has the same path inside the chroot, so files under it can be passed by path.
   */
  dockerInRoot(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const root = this.layout.root;
    if (!root) throw new Error(`host ${this.name} runs engine ${this.engine}, which has no chroot of its own`);
    const argv = ['chroot', root, 'env', `PATH=${ENGINE_PATH}`, 'HOME=/root', 'docker', '-H', `unix://${paths(this.dir).sock}`, ...args];
    return run([...this.nsenter(true), ...argv], { timeoutMs: 120_000, ...opts });
  }

  /** Runs a command in the host's network namespace (and mount namespace with `mount: true`). */
  exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    return run([...this.nsenter(opts.mount ?? false), ...argv], opts);
  }

  /**
   * Prefix that runs a command in this host's namespaces, for callers that start processes themselves.
   * nsenter --mount would start it in /; it keeps our working directory, so relative paths still work.
   */
  nsenter(mount = true): string[] {
    const ns = mount ? [`--mount=${this.mountNs}`, `--wd=${process.cwd()}`] : [];
    return ['nsenter', `--net=${this.netnsPath}`, ...ns, '--'];
  }

  /** What to put before knit's argv to start it yourself where spawnInHost would (both engines). */
  knitSpawnPrefix(): string[] {
    return this.nsenter(true);
  }

  /**
   * Starts a long-running process (knit) in this host's network and mount namespaces; it sees
   * /run/docker/plugins as the engine does. Output is kept (bounded) and appended to logs/NAME-N.log.
   */
  spawnInHost(argv: string[], env: Record<string, string> = {}): Spawned {
    const logFile = join(this.logsDir, `${basename(argv[0])}-${++this.spawnCount}.log`);
    const proc = spawnLogged([...this.nsenter(true), ...argv], { logFile, env, capture: true });
    this.spawned.add(proc);
    void proc.exited.then(() => this.spawned.delete(proc));
    return proc;
  }

  async startEngine(): Promise<void> {
    if (this.daemon?.running()) return;
    await this.writeDaemonJson();
    const daemon = spawnLogged([...this.nsenter(true), ...dockerdArgv(this.layout)], {
      logFile: join(this.logsDir, 'dockerd.log'),
      env: { PATH: ENGINE_PATH },
    });
    this.daemon = daemon;
    let exit: number | null | undefined;
    void daemon.exited.then((code) => (exit = code));
    await waitFor(
      `dockerd of ${this.name} to answer (log: ${daemon.logFile})`,
      async () => {
        if (exit !== undefined) throw new GiveUp(`dockerd exited with ${exit}`);
        return (await this.docker(['version', '--format', '{{.Server.Version}}'], { reject: false, timeoutMs: 5_000 })).exitCode === 0;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  }

  private writeDaemonJson(): Promise<void> {
    return writeFile(paths(this.dir).config, `${JSON.stringify({ 'live-restore': this.liveRestore, ...(this.dns ? { dns: this.dns } : {}) })}\n`);
  }

  /** SIGTERM, then SIGKILL after graceMs. Without live-restore dockerd stops every container first. */
  async stopEngine(graceMs = 30_000): Promise<void> {
    const daemon = this.daemon;
    this.daemon = undefined;
    if (!daemon || (await daemon.stop(graceMs)) !== null) return;
    // A dockerd killed mid-shutdown leaves its containerd behind, and the next dockerd would hang on it.
    const ids = new Set([await nsIdentity('net', this.netnsPath)].filter((id): id is string => !!id));
    const orphans: number[] = [];
    for (const pid of await pidsInNamespaces(ids)) {
      if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'containerd') orphans.push(pid);
    }
    signal(orphans, 'SIGKILL');
    await waitGone(orphans, 10_000);
  }

  /** Restarts dockerd; with liveRestore the containers keep running across it (set on the old daemon by SIGHUP). */
  async restartEngine(opts: { liveRestore?: boolean } = {}): Promise<void> {
    const want = opts.liveRestore ?? false;
    if (want !== this.liveRestore) {
      this.liveRestore = want;
      await this.writeDaemonJson();
      if (this.daemon?.running()) {
        this.daemon.kill('SIGHUP');
        await waitFor(`dockerd of ${this.name} to reload live-restore=${want}`, async () => {
          const r = await this.docker(['info', '--format', '{{.LiveRestoreEnabled}}'], { reject: false, timeoutMs: 5_000 });
          return r.stdout.trim() === String(want);
        });
      }
    }
    await this.stopEngine();
    await this.startEngine();
  }

  /** Stops everything this host runs and removes its namespaces and runtime files (logs stay). Idempotent. */
  async stop(): Promise<void> {
    live.delete(this);
    const errors: string[] = [];
    const attempt = async (what: string, step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (err) {
        errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    await attempt('stop spawned processes', () => Promise.all([...this.spawned].map((p) => p.stop(5_000))));
    // Containers first, so that dockerd has nothing to wait for when it shuts down.
    await attempt('kill containers', async () => signal(await pidsInCgroup(hostCgroup(this.name)), 'SIGKILL'));
    await attempt('stop dockerd', () => this.stopEngine(15_000));
    await attempt('destroy', () => destroyHost(this.name, { root: this.layout.root, attachments: this.attachments }));
    if (errors.length > 0) throw new Error(`stopping test host ${this.name}: ${errors.join('; ')}`);
  }
}

async function ensurePrivateNsDir(): Promise<void> {
  await mkdir(mountNsDir, { recursive: true });
  if ((await mountsUnder(mountNsDir)).includes(mountNsDir)) return;
  // A namespace can only be bind-mounted on a file whose mount does not propagate.
  await run(['mount', '--bind', mountNsDir, mountNsDir]);
  await run(['mount', '--make-private', mountNsDir]);
}

async function createNamespaces(host: Host, layout: EngineLayout): Promise<void> {
  await run(['ip', 'netns', 'add', host.netns]);
  await run(['ip', '-n', host.netns, 'link', 'set', 'lo', 'up']);
  await host.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await ensurePrivateNsDir();
  await writeFile(host.mountNs, '');
  await run(['unshare', `--mount=${host.mountNs}`, '--propagation', 'private', 'true']);
  for (const target of mountTargets(layout)) await mkdir(target, { recursive: true });
  for (const step of mountPlan(layout)) {
    const prefix = step.inNetns ? host.nsenter(true) : ['nsenter', `--mount=${host.mountNs}`, '--'];
    await run([...prefix, ...step.argv]);
  }
}

/** Starts a host (about 1-2 s once the image and, for 26.1 and 28.5, the chroot exist) and loads the test image. */
export async function startHost(opts: HostOptions): Promise<Host> {
  checkHostName(opts.name);
  const engine = opts.engine ?? '20.10';
  const root = chrooted(engine) ? await ensureChroot(engine === '26.1' ? TRIXIE : SID) : undefined;
  await ensureImage();
  const netns = hostNetns(opts.name);
  if (existsSync(`/run/netns/${netns}`)) {
    throw new Error(`netns ${netns} already exists: another test uses host "${opts.name}", or run scripts/testbed-cleanup.sh`);
  }
  // A mount namespace left by a run that was killed before its clean-up (its netns is gone, so no test owns it).
  if (existsSync(join(mountNsDir, netns))) await destroyHost(opts.name, root ? { root } : {});
  const dir = hostDir(opts.name);
  const layout: EngineLayout = { engine, dir, cgroup: hostCgroup(opts.name), ...(root ? { root } : {}) };
  const host = new Host(opts.name, engine, dir, layout, opts.liveRestore ?? false, opts.dns);
  live.add(host);
  try {
    const p = paths(dir);
    for (const d of [p.plugins, p.data, p.logs, ...(engine === '20.10' ? [p.exec] : [])]) await mkdir(d, { recursive: true });
    await createNamespaces(host, layout);
    await host.startEngine();
    await loadImage((args) => host.docker(args));
    if (opts.underlay) await connectHosts([host], opts.underlay.subnet);
    return host;
  } catch (err) {
    await host.stop().catch(() => undefined);
    throw err;
  }
}
