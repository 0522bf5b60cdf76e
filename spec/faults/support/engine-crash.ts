// SIGKILL to a test host's dockerd, leaving it ready to be started again.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../../support/testbed.js';

/**
 * Its containerd dies with it (parent-death signal) and is re-parented to this sandbox's PID 1, which reaps
 * late; dockerd 20.10 would take the zombie's pid file for a live containerd and time out on its socket.
 */
export async function crashEngine(host: Host): Promise<void> {
  process.kill(host.enginePid!, 'SIGKILL');
  await host.stopEngine();
  const pidFile = join(host.execRoot, 'containerd', 'containerd.pid');
  const pid = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
  const state = pid ? (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.[0] : undefined;
  if (!state || state === 'Z') await rm(pidFile, { force: true });
}
