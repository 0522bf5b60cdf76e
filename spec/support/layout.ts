// Where the test bed keeps its files (all under the git-ignored .testbed/) and how it names kernel objects.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const testbedDir = join(repoRoot, '.testbed');
export const imageTar = join(testbedDir, 'busybox.tar');
/** Persistent mount namespaces are bind-mounted on files here (a private mount, so the binds are allowed). */
export const mountNsDir = join(testbedDir, 'ns');
export const hostsDir = join(testbedDir, 'hosts');
export const hostDir = (name: string): string => join(hostsDir, name);

/** Every namespace, link and cgroup the test bed makes starts with this, so cleanup can find them all. */
export const PREFIX = 'knt';
export const hostNetns = (name: string): string => `${PREFIX}-${name}`;
export const outsideNetns = (name: string): string => `${PREFIX}-out-${name}`;
export const UNDERLAY_NETNS = `${PREFIX}-underlay`;
export const UNDERLAY_BRIDGE = `${PREFIX}-ul`;
export const hostCgroup = (name: string): string => `${PREFIX}-${name}`;

/** Short enough that every derived interface name (`u-NAME`) fits the kernel's 15 characters. */
export function checkHostName(name: string): void {
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) {
    throw new Error(`test host name "${name}" must be 1-10 lower-case letters or digits, starting with a letter`);
  }
}

export const ENGINE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
