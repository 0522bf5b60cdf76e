// Kernel tests change links and rules: refuse to run in the host's own network namespace.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * /proc/1/ns/net is the reference, but reading it can fail with EACCES (seen on this test VM);
 * then only a namespace that `ip netns add knt*` made (the Makefile's) is accepted.
 */
export function assertThrowawayNetns(): void {
  const mine = statSync('/proc/self/ns/net').ino;
  let host: number | undefined;
  try {
    host = statSync('/proc/1/ns/net').ino;
  } catch {
    host = undefined;
  }
  const named = (): boolean => {
    try {
      return readdirSync('/run/netns').some((n) => n.startsWith('knt') && statSync(join('/run/netns', n)).ino === mine);
    } catch {
      return false;
    }
  };
  if (host === undefined ? !named() : host === mine) {
    throw new Error('kernel tests change links and firewall rules: run them inside a throwaway network namespace (make test-kernel)');
  }
}
