// The roots of the chrooted engines (26.1 from Debian trixie, 28.5 from Debian sid): each a debootstrap made once
// per test bed (.testbed/), then reused. One builder for both; a suite differs only in its name and packages.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testbedDir } from './layout.js';
import { removeTree } from './reap.js';
import { run, waitFor } from './proc.js';

const MARKER = '.knit-complete';
const MIRROR = 'http://deb.debian.org/debian';
const BUILD_TIMEOUT_MS = 15 * 60_000;

export interface ChrootSpec {
  /** Debian suite given to debootstrap, and the directory's name under .testbed/. */
  suite: 'trixie' | 'sid';
  packages: string[];
  /** Files that must be there for the root to count as complete (relative to it). */
  needs: string[];
}

/** dockerd 26.1.5: Debian 13's docker.io. */
export const TRIXIE: ChrootSpec = {
  suite: 'trixie',
  packages: ['docker.io', 'iptables', 'iproute2'],
  needs: ['usr/sbin/dockerd', 'usr/bin/containerd'],
};

/** dockerd 28.5 with its CLI and the Compose v2 plugin: Debian unstable's docker.io, docker-cli, docker-compose. */
export const SID: ChrootSpec = {
  suite: 'sid',
  packages: ['docker.io', 'docker-cli', 'docker-compose', 'iptables', 'iproute2', 'ca-certificates'],
  needs: ['usr/sbin/dockerd', 'usr/bin/containerd', 'usr/bin/docker', 'usr/libexec/docker/cli-plugins/docker-compose'],
};

export const chrootDir = (spec: ChrootSpec): string => join(testbedDir, spec.suite);

function complete(spec: ChrootSpec): boolean {
  const dir = chrootDir(spec);
  return existsSync(join(dir, MARKER)) && spec.needs.every((f) => existsSync(join(dir, f)));
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

async function build(spec: ChrootSpec): Promise<void> {
  const dir = chrootDir(spec);
  const partial = `${dir}.partial`;
  await removeTree(partial);
  await run(
    ['debootstrap', '--variant=minbase', `--include=${spec.packages.join(',')}`, spec.suite, partial, MIRROR],
    { timeoutMs: BUILD_TIMEOUT_MS },
  );
  const missing = spec.needs.filter((f) => !existsSync(join(partial, f)));
  if (missing.length > 0) throw new Error(`debootstrap of ${spec.suite} finished but ${partial} lacks ${missing.join(', ')}`);
  // The downloaded .debs are a third of the size and never needed again.
  await run(['find', join(partial, 'var/cache/apt/archives'), '-maxdepth', '1', '-name', '*.deb', '-delete'], { reject: false });
  await writeFile(join(partial, MARKER), `${new Date().toISOString()}\n`);
  await removeTree(dir);
  await rename(partial, dir);
}

/** Returns the chroot's path, building it first if it is missing or was left incomplete (40-90 s). */
export async function ensureChroot(spec: ChrootSpec): Promise<string> {
  const dir = chrootDir(spec);
  if (complete(spec)) return dir;
  await mkdir(testbedDir, { recursive: true });
  await withLock(join(testbedDir, `${spec.suite}.lock`), BUILD_TIMEOUT_MS + 60_000, async () => {
    if (!complete(spec)) await build(spec);
  });
  return dir;
}
