// Self-test of the e2e test bed: engines start and run containers, plugins are found, wires work, nothing leaks.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  addOutsideHost,
  connectHosts,
  IMAGE,
  run,
  startHost,
  stopAll,
  waitFor,
  type Host,
} from '../support/testbed.js';
import { hostDir, mountNsDir, testbedDir } from '../support/layout.js';
import { pidsInCgroup } from '../support/reap.js';

const PROBE = fileURLToPath(new URL('../support/probe-plugin.mjs', import.meta.url));

afterAll(() => stopAll(), 120_000);

/** What a stopped host could have left: its namespaces, cgroups, mounts, processes, root-namespace links. */
async function leftovers(names: string[]): Promise<string[]> {
  const found: string[] = [];
  const netns = (await run(['ip', 'netns', 'list'])).stdout;
  for (const name of names) {
    for (const ns of [`knt-${name}`, `knt-out-${name}`]) if (new RegExp(`^${ns}( |$)`, 'm').test(netns)) found.push(`netns ${ns}`);
    if ((await pidsInCgroup(`knt-${name}`)).length > 0) found.push(`processes in cgroup knt-${name}`);
    for (const ctrl of await readdir('/sys/fs/cgroup')) {
      if (existsSync(join('/sys/fs/cgroup', ctrl, `knt-${name}`))) found.push(`cgroup ${ctrl}/knt-${name}`);
    }
    if (existsSync(join(mountNsDir, `knt-${name}`))) found.push(`mount namespace file of ${name}`);
    for (const part of ['data', 'exec', 'plugins', 'docker.sock']) {
      if (existsSync(join(hostDir(name), part))) found.push(`${hostDir(name)}/${part}`);
    }
  }
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
  for (const m of mounts) if (names.some((n) => m.startsWith(hostDir(n)) || m === join(mountNsDir, `knt-${n}`))) found.push(`mount ${m}`);
  const links = (await run(['ip', '-o', 'link', 'show'])).stdout;
  for (const line of links.split('\n')) {
    const link = line.split(':')[1]?.trim() ?? '';
    if (link.startsWith('knt') && names.some((n) => link.includes(n))) found.push(`root link ${link}`);
  }
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
    if (names.some((n) => cmdline.includes(`${hostDir(n)}/`) || cmdline.includes(`knt-${n} `))) found.push(`process ${entry}: ${cmdline}`);
  }
  return found;
}

async function containerIp(host: Host, container: string): Promise<string> {
  const r = await host.docker(['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container]);
  expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  return r.stdout;
}

/** A stand-in plugin spawned in the host is found by the engine at socketPath, as knit will be. */
async function probePluginDiscovery(host: Host): Promise<void> {
  const probe = host.spawnInHost([process.execPath, PROBE, host.socketPath('kntprobe')]);
  await waitFor('probe plugin socket', async () => existsSync(host.socketPath('kntprobe')), { timeoutMs: 10_000 });
  await host.docker(['network', 'create', '--driver', 'kntprobe', 'tbprobe']);
  await host.docker(['network', 'rm', 'tbprobe']);
  expect(probe.stdout).toContain('/NetworkDriver.CreateNetwork 200');
  expect(await probe.stop(5_000)).toBe(0);
}

test('a 20.10 host runs containers on a bridge, finds plugins, and an outside host sees only what it should', async () => {
  const host = await startHost({ name: 'tb20' });
  let enginePid: number | undefined;
  try {
    enginePid = host.enginePid;
    expect((await host.docker(['version', '--format', '{{.Server.Version}}'])).stdout).toMatch(/^20\.10\./);
    expect((await host.docker(['run', '--rm', '--network', 'none', IMAGE, 'true'])).exitCode).toBe(0);

    await host.docker(['network', 'create', '--driver', 'bridge', 'tbnet']);
    await host.docker(['run', '-d', '--name', 'tb-target', '--network', 'tbnet', IMAGE, 'sleep', '120']);
    const target = await containerIp(host, 'tb-target');
    await host.docker(['run', '--rm', '--network', 'tbnet', IMAGE, 'ping', '-c', '1', '-W', '2', target]);
    // The engine's sandboxes are visible where a plugin spawned in the host looks for them (SandboxKey).
    expect((await host.exec(['ls', join(host.execRoot, 'netns')], { mount: true })).stdout).toMatch(/^[0-9a-f]{12}$/m);
    await probePluginDiscovery(host);

    const outside = await addOutsideHost(host);
    await outside.exec(['ping', '-c', '1', '-W', '2', outside.hostIp]);
    expect((await outside.exec(['ip', '-4', 'route', 'show'])).stdout.trim().split('\n')).toHaveLength(1);
    expect((await outside.exec(['ping', '-c', '1', '-W', '1', target], { reject: false })).exitCode).not.toBe(0);
    // Containers reach it through the engine's masquerade, and it reaches a published port.
    await host.docker(['run', '--rm', '--network', 'tbnet', IMAGE, 'ping', '-c', '1', '-W', '2', outside.ip]);
    await host.docker(['run', '-d', '--name', 'tb-web', '--network', 'tbnet', '-p', '18080:80', IMAGE, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const page = await waitFor('published port from outside', async () => {
      // Bookworm's busybox `wget -T` segfaults; `timeout` bounds it instead.
      const url = `http://${outside.hostIp}:18080/passwd`;
      const r = await outside.exec(['timeout', '3', 'busybox', 'wget', '-q', '-O', '-', url], { reject: false });
      return r.exitCode === 0 && r.stdout;
    }, { timeoutMs: 15_000, intervalMs: 500 });
    expect(page).toContain('root:x:0:0');
  } finally {
    await host.stop();
  }
  expect(enginePid && existsSync(`/proc/${enginePid}`)).toBeFalsy();
  expect(await leftovers(['tb20'])).toEqual([]);
}, 180_000);

test.each([
  { engine: '26.1', name: 'tb26', suite: 'trixie' },
  { engine: '28.5', name: 'tb28', suite: 'sid' },
] as const)('a $engine host ($suite chroot) runs containers and finds plugins', async ({ engine, name, suite }) => {
  const host = await startHost({ name, engine });
  try {
    expect((await host.docker(['version', '--format', '{{.Server.Version}}'])).stdout).toMatch(new RegExp(`^${engine.replace('.', '\\.')}\\.`));
    expect((await host.docker(['run', '--rm', '--network', 'none', IMAGE, 'true'])).exitCode).toBe(0);
    await host.docker(['run', '-d', '--name', 'tb-idle', IMAGE, 'sleep', '120']);
    expect((await host.exec(['ls', '/var/run/docker/netns'], { mount: true })).stdout).toMatch(/^[0-9a-f]{12}$/m);
    // What a container sees comes from the image (busybox's sh), not from the machine or the chroot.
    const bin = (await host.docker(['run', '--rm', IMAGE, 'ls', '/bin'])).stdout.split('\n');
    expect(bin).toContain('busybox');
    expect(bin).not.toContain('bash');
    await probePluginDiscovery(host);
  } finally {
    await host.stop();
  }
  expect(await leftovers([name])).toEqual([]);
  expect(existsSync(join(testbedDir, suite, '.knit-complete'))).toBe(true);
}, 420_000);

test('the 28.5 chroot carries Docker Compose v2, which drives that engine', async () => {
  const host = await startHost({ name: 'tbc28', engine: '28.5' });
  try {
    expect((await host.dockerInRoot(['compose', 'version', '--short'])).stdout).toMatch(/^v?2\.\d+\.\d+/);
    const info = await host.dockerInRoot(['info', '--format', '{{.ServerVersion}}']);
    expect(info.stdout).toMatch(/^28\.5\./);
  } finally {
    await host.stop();
  }
  expect(await leftovers(['tbc28'])).toEqual([]);
}, 420_000);

test('connectHosts joins two hosts on an underlay where they ping each other', async () => {
  const a = await startHost({ name: 'tbu1', underlay: {} });
  try {
    expect(a.underlayIp).toBe('198.18.0.1');
    const b = await startHost({ name: 'tbu2' });
    try {
      const [ipA, ipB] = await connectHosts([a, b]);
      expect([ipA, ipB]).toEqual(['198.18.0.1', '198.18.0.2']);
      await a.exec(['ping', '-c', '1', '-W', '2', ipB]);
      await b.exec(['ping', '-c', '1', '-W', '2', ipA]);
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
  }
  expect(await leftovers(['tbu1', 'tbu2'])).toEqual([]);
  expect((await run(['ip', 'netns', 'list'])).stdout).not.toMatch(/^knt-underlay\b/m);
}, 180_000);
