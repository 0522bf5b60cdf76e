// The end-to-end test bed: simulated Docker hosts (20.10, 26.1 or 28.5 engines) in namespaces, and their wiring.
import { join } from 'node:path';
import { liveHosts } from './host.js';
import { ensureImage } from './image.js';
import { repoRoot } from './layout.js';
import { run } from './proc.js';
import { releaseMountNsDir } from './teardown.js';
import { removeUnderlay } from './underlay.js';

export { Host, startHost, type ExecOptions, type HostOptions } from './host.js';
export { ensureImage, IMAGE } from './image.js';
export { chrootDir, ensureChroot, SID, TRIXIE } from './chroot.js';
export { addOutsideHost, connectHosts, DEFAULT_UNDERLAY, removeUnderlay, type OutsideHost } from './underlay.js';
export { destroyHost } from './teardown.js';
export { GiveUp, run, RunError, waitFor, type RunOptions, type RunResult, type Spawned } from './proc.js';
export { ENGINES, engineTag, SUITE_ENGINES, type EngineVersion } from './engine.js';

const TOOLS = ['dockerd', 'docker', 'containerd', 'runc', 'nsenter', 'unshare', 'ip', 'iptables', 'busybox', 'debootstrap', 'etcd'];

async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of TOOLS) {
    if ((await run(['which', tool], { reject: false })).exitCode !== 0) missing.push(tool);
  }
  return missing;
}

/**
 * Removes every knt* namespace, the processes in them, knt* cgroups and root-namespace links, and mounts
 * under .testbed/ (scripts/testbed-cleanup.sh). Machine-wide: call it only when no other test file runs.
 */
export async function cleanupAll(): Promise<void> {
  await run(['bash', join(repoRoot, 'scripts/testbed-cleanup.sh')], { timeoutMs: 180_000 });
}

/** For a jest globalSetup: system packages, the test image, and no leftovers of a crashed earlier run. */
export async function prepare(): Promise<void> {
  if ((await missingTools()).length > 0) await run(['bash', join(repoRoot, 'scripts/testbed-deps.sh')], { timeoutMs: 900_000 });
  const still = await missingTools();
  if (still.length > 0) throw new Error(`test bed tools still missing after scripts/testbed-deps.sh: ${still.join(', ')}`);
  await ensureImage();
  await cleanupAll();
}

/** Stops every host this test file started and its underlay: the afterAll of a test file. */
export async function stopAll(): Promise<void> {
  const errors: string[] = [];
  for (const host of liveHosts()) {
    await host.stop().catch((err: Error) => errors.push(err.message));
  }
  await removeUnderlay().catch((err: Error) => errors.push(err.message));
  await releaseMountNsDir().catch((err: Error) => errors.push(err.message));
  if (errors.length > 0) throw new Error(errors.join('\n'));
}
