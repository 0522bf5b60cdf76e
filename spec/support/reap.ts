// Finds what a simulated host left behind (processes by namespace and cgroup, mounts) and removes it.
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './proc.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The `net:[ino]` / `mnt:[ino]` identity of a namespace bound on a file, as /proc/PID/ns/* links show it. */
export async function nsIdentity(kind: 'net' | 'mnt', file: string): Promise<string | undefined> {
  try {
    return `${kind}:[${(await stat(file)).ino}]`;
  } catch {
    return undefined;
  }
}

/** Our own process and its ancestors: never ours to kill, even when the caller runs inside a test namespace. */
async function selfAndAncestors(): Promise<Set<number>> {
  const keep = new Set<number>();
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1 && !keep.has(pid); i++) {
    keep.add(pid);
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    pid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return keep;
}

/** Every live process whose network or mount namespace is one of `identities`. */
export async function pidsInNamespaces(identities: ReadonlySet<string>): Promise<number[]> {
  if (identities.size === 0) return [];
  const keep = await selfAndAncestors();
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || keep.has(pid)) continue;
    for (const kind of ['net', 'mnt']) {
      const link = await readlink(`/proc/${pid}/ns/${kind}`).catch(() => '');
      if (identities.has(link)) {
        found.push(pid);
        break;
      }
    }
  }
  return found;
}

/** The cgroup directories named `group` at the top of every hierarchy (v1 controllers and v2). */
async function cgroupRoots(group: string): Promise<string[]> {
  const dirs = [join(CGROUP_ROOT, group)];
  for (const ctrl of await readdir(CGROUP_ROOT).catch(() => [] as string[])) dirs.push(join(CGROUP_ROOT, ctrl, group));
  return dirs.filter((d) => existsSync(join(d, 'cgroup.procs')));
}

async function cgroupTree(dir: string): Promise<string[]> {
  const out = [dir];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) out.push(...(await cgroupTree(join(dir, entry.name))));
  }
  return out;
}

/** Processes in cgroup `group` or below it: where dockerd puts this host's containers (--cgroup-parent). */
export async function pidsInCgroup(group: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const root of await cgroupRoots(group)) {
    for (const dir of await cgroupTree(root)) {
      const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const line of text.split('\n')) if (line.trim()) pids.add(Number(line));
    }
  }
  return [...pids];
}

/** Removes the (empty) cgroup trees named `group`, deepest first. */
export async function removeCgroup(group: string): Promise<void> {
  for (const root of await cgroupRoots(group)) {
    for (const dir of (await cgroupTree(root)).reverse()) await rmdir(dir).catch(() => undefined);
  }
}

export function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone.
    }
  }
}

/** A zombie counts as gone: its parent may be an init that never reaps (pid 1 on these machines does not). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return stat !== '' && state !== 'Z' && state !== 'X';
}

export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = [...pids];
  for (let i = 0; i < 1_000 && left.length > 0; i++) {
    const still: number[] = [];
    for (const pid of left) if (await alive(pid)) still.push(pid);
    left = still;
    if (left.length === 0 || Date.now() > deadline) break;
    await sleep(50);
  }
  return left;
}

/** SIGKILLs the processes until none is found again (new ones can appear while a daemon dies). */
export async function killUntilGone(find: () => Promise<number[]>, what: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = await find();
    if (pids.length === 0) return;
    signal(pids, 'SIGKILL');
    const left = await waitGone(pids, 10_000);
    if (left.length > 0 && round === 4) throw new Error(`${what}: processes ${left.join(', ')} survive SIGKILL`);
  }
  const rest = await find();
  if (rest.length > 0) throw new Error(`${what}: processes ${rest.join(', ')} keep appearing`);
}

/** Mount points at or under `dir` in our mount namespace, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)));
  return points.sort((a, b) => b.length - a.length);
}

export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) {
      const r = await run(['umount', p], { reject: false, timeoutMs: 30_000 });
      if (r.exitCode !== 0) await run(['umount', '-l', p], { reject: false, timeoutMs: 30_000 });
    }
  }
}

/**
 * rm -rf that refuses to cross into a mount (a bind of /sys or /dev in a chroot must never be emptied):
 * it unmounts what it finds first and never leaves the file system it started on.
 */
export async function removeTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  await unmountUnder(path);
  const left = await mountsUnder(path);
  if (left.length > 0) throw new Error(`not removing ${path}: still mounted: ${left.join(', ')}`);
  await run(['rm', '-rf', '--one-file-system', path], { timeoutMs: 300_000 });
}

/** Kills whatever runs in netns NAME, then deletes it; nothing happens when it does not exist. */
export async function deleteNetns(name: string): Promise<void> {
  const id = await nsIdentity('net', `/run/netns/${name}`);
  if (!id) return;
  await killUntilGone(() => pidsInNamespaces(new Set([id])), `netns ${name}`);
  await run(['ip', 'netns', 'del', name]);
}
