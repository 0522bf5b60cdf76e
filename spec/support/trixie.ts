// The dockerd 26.1 engine's root: a Debian trixie chroot made once per machine with debootstrap, then reused.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testbedDir, trixieDir } from './layout.js';
import { removeTree } from './reap.js';
import { run, waitFor } from './proc.js';

const MARKER = '.knit-complete';
const MIRROR = 'http://deb.debian.org/debian';
const BUILD_TIMEOUT_MS = 15 * 60_000;

function complete(dir: string): boolean {
  return existsSync(join(dir, MARKER)) && existsSync(join(dir, 'usr/sbin/dockerd')) && existsSync(join(dir, 'usr/bin/containerd'));
}

/** A directory lock that survives nothing but its owner: a lock whose pid is dead is taken over. */
async function withLock<T>(lockDir: string, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  const owner = join(lockDir, 'pid');
  await waitFor(
    `lock ${lockDir}`,
    async () => {
      try {
        await mkdir(lockDir);
        await writeFile(owner, String(process.pid));
        return true;
      } catch {
        const pid = Number(await readFile(owner, 'utf8').catch(() => '0'));
        if (pid > 0 && !existsSync(`/proc/${pid}`)) await rm(lockDir, { recursive: true, force: true });
        return false;
      }
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  try {
    return await body();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function build(): Promise<void> {
  const partial = `${trixieDir}.partial`;
  await removeTree(partial);
  await run(
    ['debootstrap', '--variant=minbase', '--include=docker.io,iptables,iproute2', 'trixie', partial, MIRROR],
    { timeoutMs: BUILD_TIMEOUT_MS },
  );
  if (!existsSync(join(partial, 'usr/sbin/dockerd'))) throw new Error(`debootstrap finished but ${partial} has no dockerd`);
  // The downloaded .debs are a third of the size and never needed again.
  await run(['find', join(partial, 'var/cache/apt/archives'), '-maxdepth', '1', '-name', '*.deb', '-delete'], { reject: false });
  await writeFile(join(partial, MARKER), `${new Date().toISOString()}\n`);
  await removeTree(trixieDir);
  await rename(partial, trixieDir);
}

/** Returns the chroot's path, building it first if it is missing or was left incomplete (about 40 s). */
export async function ensureTrixie(): Promise<string> {
  if (complete(trixieDir)) return trixieDir;
  await mkdir(testbedDir, { recursive: true });
  await withLock(join(testbedDir, 'trixie.lock'), BUILD_TIMEOUT_MS + 60_000, async () => {
    if (!complete(trixieDir)) await build();
  });
  return trixieDir;
}
