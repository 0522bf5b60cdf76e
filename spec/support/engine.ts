// Plans one engine's namespace: the mounts its private mount namespace needs, and the dockerd command line.
import { join } from 'node:path';

export type EngineVersion = '20.10' | '26.1' | '28.5';

/** Every engine of the test bed: 20.10 is the machine's own docker.io, the others run from a Debian chroot. */
export const ENGINES: readonly EngineVersion[] = ['20.10', '26.1', '28.5'];

/**
 * Which e2e suites run on which engines (CI runs every file; this is its engine matrix, kept within CI's time
 * budget; the README's Engines table shows it with each file's measured duration).
 */
export const SUITE_ENGINES = {
  'bridge-basics': ['20.10', '26.1', '28.5'],
  'bridge-features': ['20.10', '26.1', '28.5'],
  overlay: ['20.10', '26.1', '28.5'],
  // The Consul client is the same on every engine: one engine proves it.
  'overlay-consul': ['20.10'],
  compose: ['28.5'],
  names: ['20.10', '26.1', '28.5'],
  // As for overlays: the Consul client does not depend on the engine.
  'names-consul': ['20.10'],
  plugin: ['20.10', '26.1', '28.5'],
} as const satisfies Record<string, readonly EngineVersion[]>;

/** A short tag for host names: '28.5' → '28'. */
export const engineTag = (engine: EngineVersion): string => engine.split('.')[0];

/** Engines that run from a chroot (their root, mounts and exec-root differ from the machine's 20.10). */
export const chrooted = (engine: EngineVersion): boolean => engine !== '20.10';

export interface EngineLayout {
  engine: EngineVersion;
  /** The host's work dir (absolute). */
  dir: string;
  /** cgroup parent of the containers, so teardown finds every one of them. */
  cgroup: string;
  /** The chroot the engine runs from (trixie for 26.1, sid for 28.5). */
  root?: string;
}

/** One step, run with nsenter in the host's mount namespace (and its network namespace when `inNetns`). */
export interface MountStep {
  argv: string[];
  inNetns?: boolean;
}

export const paths = (dir: string) => ({
  plugins: join(dir, 'plugins'),
  data: join(dir, 'data'),
  exec: join(dir, 'exec'),
  logs: join(dir, 'logs'),
  sock: join(dir, 'docker.sock'),
  pidfile: join(dir, 'docker.pid'),
  config: join(dir, 'daemon.json'),
  cgroupPark: join(dir, '.cgroup'),
});

/**
 * sysfs shows the devices of the network namespace that mounted it, so the inherited /sys shows the root
 * namespace's links. Remount it from inside the host's netns, keeping the cgroup mounts (moving them aside
 * and back), which `ip netns exec` loses and dockerd needs ("Devices cgroup isn't mounted").
 */
function ownSysfs(dir: string): MountStep[] {
  const park = paths(dir).cgroupPark;
  return [
    { argv: ['mount', '--rbind', '/sys/fs/cgroup', park] },
    { argv: ['mount', '-t', 'sysfs', 'knt-sysfs', '/sys'], inNetns: true },
    { argv: ['mount', '--move', park, '/sys/fs/cgroup'] },
  ];
}

/** Directories the steps mount on, which must exist beforehand in the shared (root) file system. */
export function mountTargets(l: EngineLayout): string[] {
  const common = [paths(l.dir).cgroupPark, '/run/docker/plugins', '/run/containerd'];
  return chrooted(l.engine) && l.root ? [...common, join(l.root, l.dir)] : common;
}

export function mountPlan(l: EngineLayout): MountStep[] {
  const p = paths(l.dir);
  if (l.engine === '20.10') {
    return [
      ...ownSysfs(l.dir),
      { argv: ['mount', '--bind', p.plugins, '/run/docker/plugins'] },
      // Shim sockets go to /run/containerd/s; a private tmpfs keeps them per host, and hides a system
      // containerd's socket, which dockerd 20.10 would otherwise use instead of starting its own.
      { argv: ['mount', '-t', 'tmpfs', 'knt-run', '/run/containerd'] },
    ];
  }
  const t = l.root;
  if (!t) throw new Error(`engine ${l.engine} needs its chroot`);
  return [
    ...ownSysfs(l.dir),
    // The chroot must be a mount point, or `docker load` fails: "remount /, flags: 0x84000: invalid argument".
    { argv: ['mount', '--bind', t, t] },
    { argv: ['mount', '-t', 'proc', 'proc', join(t, 'proc')] },
    { argv: ['mount', '--rbind', '/sys', join(t, 'sys')] },
    { argv: ['mount', '--rbind', '/dev', join(t, 'dev')] },
    { argv: ['mount', '-t', 'tmpfs', 'knt-run', join(t, 'run')] },
    { argv: ['mkdir', '-p', join(t, 'run/docker/plugins')] },
    { argv: ['mount', '--bind', p.plugins, join(t, 'run/docker/plugins')] },
    // The work dir at the same path inside the chroot: data-root, socket and pidfile have one name everywhere.
    { argv: ['mount', '--bind', l.dir, join(t, l.dir)] },
    // And the engine's exec-root outside the chroot: knit runs here unchrooted and opens SandboxKey paths.
    { argv: ['mount', '--rbind', join(t, 'run/docker'), '/run/docker'] },
  ];
}

/** The engine's exec-root as seen inside the host's mount namespace (where SandboxKey paths point). */
export function execRoot(l: EngineLayout): string {
  return l.engine === '20.10' ? paths(l.dir).exec : '/var/run/docker';
}

export function dockerdArgv(l: EngineLayout): string[] {
  const p = paths(l.dir);
  const common = [
    '--data-root', p.data,
    '-H', `unix://${p.sock}`,
    '--pidfile', p.pidfile,
    '--config-file', p.config,
    '--cgroup-parent', `/${l.cgroup}`,
  ];
  if (l.engine === '20.10') return ['dockerd', '--exec-root', p.exec, ...common];
  if (!l.root) throw new Error(`engine ${l.engine} needs its chroot`);
  return ['chroot', l.root, 'dockerd', ...common];
}
