// The test image, built offline from Debian's static busybox: a rootfs tarball each engine imports.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageTar, repoRoot, testbedDir } from './layout.js';
import { removeTree } from './reap.js';
import { run } from './proc.js';

export const IMAGE = 'knit-test/busybox:latest';
const BUSYBOX = '/bin/busybox';
const APPLETS = [
  'sh', 'ping', 'ping6', 'ip', 'wget', 'nc', 'true', 'sleep', 'cat', 'hostname', 'nslookup', 'httpd',
  'ifconfig', 'route', 'arp', 'seq', 'echo', 'ls', 'kill',
  // Bookworm's busybox `wget -T` segfaults: bound a wget with `timeout N wget ...` instead.
  'timeout',
  'mkdir',
];
const FILES: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
};

/** A UDP echo server, built static from source (this busybox's nc has no UDP). */
const UDP_ECHO = join(repoRoot, 'spec/support/udp-echo.c');

/** Changes whenever the busybox binary, the applet list or the echo server does, so a stale tarball is rebuilt. */
async function fingerprint(): Promise<string> {
  const s = await stat(BUSYBOX).catch(() => undefined);
  if (!s) throw new Error(`${BUSYBOX} is missing: run scripts/testbed-deps.sh (package busybox-static)`);
  const echo = await readFile(UDP_ECHO, 'utf8');
  return createHash('sha256').update(JSON.stringify({ size: s.size, mtime: s.mtimeMs, APPLETS, FILES, echo })).digest('hex');
}

async function buildRootfs(root: string): Promise<void> {
  for (const dir of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'var/www']) await mkdir(join(root, dir), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
  for (const [path, text] of Object.entries(FILES)) await writeFile(join(root, path), text);
  await run(['cc', '-static', '-O2', '-o', join(root, 'bin/udp-echo'), UDP_ECHO]);
}

/** Builds `.testbed/busybox.tar` once per machine (again only when busybox changed); returns the image name. */
export async function ensureImage(): Promise<string> {
  const print = await fingerprint();
  const stampFile = `${imageTar}.stamp`;
  if (existsSync(imageTar) && (await readFile(stampFile, 'utf8').catch(() => '')) === print) return IMAGE;
  await mkdir(testbedDir, { recursive: true });
  const work = await mkdtemp(join(testbedDir, 'image-'));
  try {
    await buildRootfs(join(work, 'rootfs'));
    const tmpTar = join(work, 'busybox.tar');
    await run(['tar', '-C', join(work, 'rootfs'), '--numeric-owner', '--owner=0', '--group=0', '-cf', tmpTar, '.']);
    // rename is atomic: a concurrent builder ends with the same content, never a half-written file.
    await rename(tmpTar, imageTar);
    await writeFile(stampFile, print);
  } finally {
    await removeTree(work);
  }
  return IMAGE;
}

/** Imports the tarball into an engine; `docker import` gives it no command, so set `sh` as a default. */
export async function loadImage(docker: (args: string[]) => Promise<unknown>): Promise<void> {
  await docker(['import', '--change', 'CMD ["sh"]', imageTar, IMAGE]);
}
