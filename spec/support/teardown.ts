// Removes a simulated host by name, whatever state it is in: processes, cgroups, namespaces, runtime files.
import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { paths } from './engine.js';
import { hostCgroup, hostDir, hostNetns, mountNsDir } from './layout.js';
import { deleteNetns, killUntilGone, mountsUnder, nsIdentity, pidsInCgroup, pidsInNamespaces, removeCgroup, removeTree, unmountUnder } from './reap.js';
import { run } from './proc.js';

/** Something joined to a host (an underlay port, an outside namespace) that must go when the host goes. */
export interface Attachment {
  what: string;
  remove(): Promise<void>;
}

export interface DestroyOptions {
  /** The chroot a 26.1 or 28.5 engine used, to remove the work dir's mount point inside it. */
  root?: string;
  attachments?: Attachment[];
}

/** Every process of the host: in its network or mount namespace (daemons, shims, knit) or its cgroup (containers). */
async function hostPids(name: string): Promise<number[]> {
  const ids = new Set<string>();
  for (const id of [await nsIdentity('net', `/run/netns/${hostNetns(name)}`), await nsIdentity('mnt', join(mountNsDir, hostNetns(name)))]) {
    if (id) ids.add(id);
  }
  return [...new Set([...(await pidsInNamespaces(ids)), ...(await pidsInCgroup(hostCgroup(name)))])];
}

export async function destroyHost(name: string, opts: DestroyOptions = {}): Promise<void> {
  const netns = hostNetns(name);
  await killUntilGone(() => hostPids(name), `test host ${name}`);
  await removeCgroup(hostCgroup(name));
  for (const a of opts.attachments?.splice(0) ?? []) await a.remove();
  // The mount namespace dies with its last process and its binding; its mounts (sysfs, binds, tmpfs) with it.
  await unmountUnder(join(mountNsDir, netns));
  await rm(join(mountNsDir, netns), { force: true });
  await deleteNetns(netns);
  const dir = hostDir(name);
  const p = paths(dir);
  for (const part of [p.data, p.exec, p.plugins, p.cgroupPark]) await removeTree(part);
  for (const file of [p.sock, p.pidfile, p.config]) await rm(file, { force: true });
  if (opts.root) await rmdir(join(opts.root, dir)).catch(() => undefined);
}

/** Drops the private bind of the mount-namespace dir once no host uses it (a busy one stays: umount fails). */
export async function releaseMountNsDir(): Promise<void> {
  if (!(await mountsUnder(mountNsDir)).includes(mountNsDir)) return;
  if ((await readdir(mountNsDir).catch(() => ['?'])).length > 0) return;
  await run(['umount', mountNsDir], { reject: false });
}
