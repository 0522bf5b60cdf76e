// knit as a managed plugin on real engines: built by `make plugin`, enabled on an engine that never had knit
// with no preparation, configured with `docker plugin set`, restarted under running containers, re-created
// with its records intact, then removed without a trace.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { post } from '../support/client.js';
import { paths } from '../support/engine.js';
import { repoRoot } from '../support/layout.js';
import { nsIdentity, pidsInNamespaces, removeCgroup } from '../support/reap.js';
import { engineTag, ensureChroot, IMAGE, run, SID, startHost, stopAll, SUITE_ENGINES, TRIXIE, waitFor, type EngineVersion, type Host } from '../support/testbed.js';

const PLUGIN = 'knit:latest';
/** The first build runs debootstrap and npm; later ones reuse plugin/build/cache. */
const BUILD_TIMEOUT_MS = 15 * 60_000;
const CGROUP_ROOT = '/sys/fs/cgroup';

type LogLine = Record<string, unknown>;

/** The lines the plugin printed on stdout, as dockerd logged them: `level=info msg="<json>" plugin=<id>`. */
async function pluginLog(host: Host, pluginId: string): Promise<LogLine[]> {
  const text = await readFile(join(host.logsDir, 'dockerd.log'), 'utf8');
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(`plugin=${pluginId}`)) continue;
    const quoted = /msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
    if (quoted === undefined) continue;
    try {
      const parsed: unknown = JSON.parse(JSON.parse(`"${quoted}"`));
      if (parsed && typeof parsed === 'object') lines.push(parsed as LogLine);
    } catch {
      // Not one of knit's JSON lines (a stack trace, runtime noise).
    }
  }
  return lines;
}

/** knit's processes in the host: node, the plugin's only program. */
async function pluginPids(host: Host): Promise<number[]> {
  const net = await nsIdentity('net', host.netnsPath);
  const pids = net ? await pidsInNamespaces(new Set([net])) : [];
  const comms = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')));
  return pids.filter((_, i) => comms[i].trim() === 'node');
}

/** knit's records of networks, endpoints and IPAM in a state directory no process has open, read with knit's own store. */
async function records(stateDir: string): Promise<Record<string, number>> {
  const store = join(repoRoot, 'dist/store/local.js');
  const script = `
    const { openLocalStore } = await import(${JSON.stringify(store)});
    const s = await openLocalStore(${JSON.stringify(join(stateDir, 'db'))});
    const count = async (p) => (await s.list(p)).length;
    console.log(JSON.stringify({ ipam: await count('ipam/'), nets: await count('net/'), eps: await count('ep/') }));
    await s.close();`;
  return JSON.parse((await run(['node', '--input-type=module', '-e', script])).stdout);
}

/** Cgroups left by plugins: dockerd puts each plugin in a cgroup named by its ID at the top of every hierarchy. */
async function pluginCgroups(ids: ReadonlySet<string>): Promise<string[]> {
  const found: string[] = [];
  for (const hierarchy of await readdir(CGROUP_ROOT)) {
    for (const id of ids) if (existsSync(join(CGROUP_ROOT, hierarchy, id))) found.push(`${hierarchy}/${id.slice(0, 12)}`);
  }
  return found;
}

const cases = SUITE_ENGINES.plugin.map((engine) => ({ engine, name: `plug${engineTag(engine)}` }));

afterAll(() => stopAll(), 120_000);

/**
 * A real host's data-root is /var/lib/docker; the test bed gives each engine its own (DIR/data). Bound at the
 * default path in the host's private mount namespace (inside the chroot for 26.1 and 28.5), the engine looks like a
 * default install to the plugin's mounts, and each test host still has its own. Returns that data-root.
 */
async function atDefaultDataRoot(host: Host, engine: EngineVersion): Promise<string> {
  const dataRoot = paths(host.dir).data;
  const target = engine === '20.10' ? '/var/lib/docker' : join(await ensureChroot(engine === '26.1' ? TRIXIE : SID), 'var/lib/docker');
  await mkdir(target, { recursive: true });
  await host.exec(['mount', '--bind', dataRoot, target], { mount: true });
  return dataRoot;
}

describe.each(cases)('knit as a managed plugin on dockerd $engine', ({ engine, name }) => {
  let host: Host;
  let pluginId = '';
  let stateDir = '';
  const ips: Record<string, string> = {};
  /** Every plugin this describe created on its engine, whose cgroups must not outlive it. */
  const created = new Set<string>();

  const docker = (args: string[], opts: { timeoutMs?: number; reject?: boolean } = {}) => host.docker(args, opts);
  const runDetached = (container: string) =>
    docker(['run', '-d', '--name', container, '--stop-timeout', '1', '--network', 'pnet', IMAGE, 'sleep', '600']);
  const ipOf = async (container: string) =>
    (await docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "pnet").IPAddress}}', container])).stdout.trim();
  /** The address the container really has on its interface, not only the one dockerd remembers. */
  const ipInside = async (container: string) => (await docker(['exec', container, 'ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
  const ping = (from: string, to: string) => docker(['exec', from, 'ping', '-c', '1', '-W', '2', to], { reject: false });
  const knitLinks = async () =>
    (await host.exec(['ip', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => /^\d+: kn[-hcv]|alias knit:/.test(l));
  /**
   * The running plugin's own account of its records, asked on its socket. dockerd keeps it in pluginsDir/ID/,
   * a path longer than a unix socket address may be (108 bytes): a short symlink reaches it.
   */
  const status = async () => {
    const link = join(host.dir, 'psock');
    await rm(link, { force: true });
    await symlink(join(host.pluginsDir, pluginId), link);
    return (await post(join(link, 'knit.sock'), '/knit.Status', '{}', 5_000)).body;
  };

  beforeAll(async () => {
    host = await startHost({ name, engine });
    // Real hosts run with FORWARD policy DROP (dockerd sets it when it enables forwarding itself).
    await host.exec(['iptables', '-P', 'FORWARD', 'DROP']);
    // Where the manifest's defaults put knit's records: DATA-ROOT/plugins/knit.
    stateDir = join(await atDefaultDataRoot(host, engine), 'plugins', 'knit');
    // Records of an earlier run would bring back networks this engine never had.
    await rm(stateDir, { recursive: true, force: true });
  }, 180_000);

  afterAll(async () => {
    if (!host) return;
    // After a failure the plugin may still run: dockerd stops it and removes its cgroup; killing it would not.
    await docker(['plugin', 'rm', '-f', PLUGIN], { reject: false, timeoutMs: 30_000 }).catch(() => undefined);
    await host.stop();
    for (const id of created) await removeCgroup(id);
  }, 180_000);

  /** `make plugin` against this host's engine: a new plugin, disabled, with the manifest's defaults. */
  const makePlugin = async () => {
    const env = [`DOCKER_HOST=unix://${paths(host.dir).sock}`, `PLUGIN=${PLUGIN}`];
    // -o dist/main.js: package the dist/ this run was started with (the test command builds it first),
    // rather than recompile sources that may have changed since and rewrite dist/ under other tests.
    await run(['env', ...env, 'make', '-C', repoRoot, '--no-print-directory', '-o', 'dist/main.js', 'plugin'], { timeoutMs: BUILD_TIMEOUT_MS });
    expect((await docker(['plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}'])).stdout.trim()).toBe(`${PLUGIN} false`);
    const id = (await docker(['plugin', 'inspect', '-f', '{{.Id}}', PLUGIN])).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    created.add(id);
    return id;
  };

  test('make plugin builds the plugin and creates it, disabled, on the engine DOCKER_HOST names', async () => {
    pluginId = await makePlugin();
  }, BUILD_TIMEOUT_MS + 60_000);

  test('on an engine that never had knit, enable works at once with the manifest as it is: no mkdir, no setting', async () => {
    // dockerd made its plugin directory before any plugin could start; knit's own directory is not there yet.
    expect((await stat(join(stateDir, '..'))).isDirectory()).toBe(true);
    expect(existsSync(stateDir)).toBe(false);
    // Every mount's source is one the host has without knit: Docker's plugin directory, and /dev/null.
    const mounts = JSON.parse((await docker(['plugin', 'inspect', '-f', '{{json .Settings.Mounts}}', PLUGIN])).stdout);
    expect(mounts.map((m: { Name: string; Source: string }) => `${m.Name}=${m.Source}`).sort())
      .toEqual(['docker-socket=/dev/null', 'state=/var/lib/docker/plugins', 'xtables-lock=/dev/null']);
    await docker(['plugin', 'enable', PLUGIN]);
    expect((await docker(['plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}'])).stdout.trim()).toBe(`${PLUGIN} true`);
    // knit made its records' directory itself, root's only.
    await waitFor('knit to make its state directory', async () => existsSync(join(stateDir, 'db', 'data.mdb')), { timeoutMs: 10_000 });
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
  });

  test('enabled, it serves a network where two containers ping each other, and knit status reads it', async () => {
    await docker(['network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, 'pnet']);
    await runDetached('p1');
    await runDetached('p2');
    ips.p1 = await ipOf('p1');
    ips.p2 = await ipOf('p2');
    expect(ips.p1).toMatch(/^10\.2(0[89]|1\d|2[0-3])\.\d+\.\d+$/);
    expect(ips.p2).not.toBe(ips.p1);
    expect((await ping('p1', ips.p2)).exitCode).toBe(0);
    expect((await ping('p2', ips.p1)).exitCode).toBe(0);

    const log = await pluginLog(host, pluginId);
    expect(log).toContainEqual(expect.objectContaining({ level: 'info', message: 'knit ready', socket: '/run/docker/plugins/knit.sock' }));
    expect(log).toContainEqual(expect.objectContaining({ message: expect.stringMatching(/^iptables backend nft /) }));
    expect(log.filter((l) => l.level === 'debug')).toEqual([]);
    expect((await status()).endpoints.map((e: { address: string }) => e.address.split('/')[0]).sort()).toEqual([ips.p1, ips.p2].sort());
    // The knit command reads a managed plugin through --socket (the symlink status() made).
    const text = await run(['node', join(repoRoot, 'dist/main.js'), 'status', '--socket', join(host.dir, 'psock', 'knit.sock')]);
    expect(text.stdout).toContain('Networks:  1\n');
    expect(text.stdout).toContain('Endpoints: 2\n');
    for (const ip of [ips.p1, ips.p2]) expect(text.stdout).toMatch(new RegExp(`\\s${ip.replace(/\./g, '\\.')}/\\d+\\s`));
  });

  test('disable, a missing state source refused at enable, set KNIT_LOG_LEVEL=debug, enable: the setting takes effect and running containers keep their addresses', async () => {
    const refused = await docker(['plugin', 'set', PLUGIN, 'KNIT_LOG_LEVEL=debug'], { reject: false });
    expect(refused.exitCode).not.toBe(0);
    const seen = (await pluginLog(host, pluginId)).length;
    await docker(['plugin', 'disable', '-f', PLUGIN]);
    // Control: a state source the host lacks fails enable, as /var/lib/knit did on a fresh host, and changes nothing.
    await docker(['plugin', 'set', PLUGIN, `state.source=${join(host.dir, 'absent')}`]);
    const missing = await docker(['plugin', 'enable', PLUGIN], { reject: false });
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/absent: no such file or directory/);
    expect((await docker(['plugin', 'ls', '--format', '{{.Enabled}}'])).stdout.trim()).toBe('false');
    await docker(['plugin', 'set', PLUGIN, 'state.source=/var/lib/docker/plugins']);
    await docker(['plugin', 'set', PLUGIN, 'KNIT_LOG_LEVEL=debug']);
    await docker(['plugin', 'enable', PLUGIN]);
    expect((await docker(['plugin', 'inspect', '-f', '{{json .Settings.Env}}', PLUGIN])).stdout).toContain('"KNIT_LOG_LEVEL=debug"');

    await runDetached('p3');
    ips.p3 = await ipOf('p3');
    expect([ips.p1, ips.p2]).not.toContain(ips.p3);
    expect(await ipOf('p1')).toBe(ips.p1);
    expect(await ipInside('p1')).toContain(`${ips.p1}/`);
    expect((await ping('p3', ips.p1)).exitCode).toBe(0);
    expect((await ping('p1', ips.p2)).exitCode).toBe(0);
    // dockerd relays plugin output as it comes: wait (bounded) for the debug lines of the new start.
    await waitFor('debug lines from the re-enabled plugin', async () =>
      (await pluginLog(host, pluginId)).slice(seen).some((l) => l.level === 'debug'), { timeoutMs: 10_000 });
  });

  test('killed, the plugin is restarted by dockerd with its records: old addresses kept, a new one distinct', async () => {
    const [pid] = await pluginPids(host);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await waitFor('dockerd to restart the plugin', async () => {
      const now = await pluginPids(host);
      return now.length === 1 && now[0] !== pid;
    }, { timeoutMs: 30_000 });
    // A new start answers GetCapabilities again: a second network can be made and used at once.
    await waitFor('a knit network to be created after the restart', async () =>
      (await docker(['network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, 'pnet2'], { reject: false })).exitCode === 0,
      { timeoutMs: 30_000, intervalMs: 500 });
    await runDetached('p4');
    ips.p4 = await ipOf('p4');
    expect(new Set(Object.values(ips)).size).toBe(4);
    for (const c of ['p1', 'p2', 'p3']) expect(await ipOf(c)).toBe(ips[c]);
    expect((await ping('p4', ips.p2)).exitCode).toBe(0);
    expect((await docker(['run', '--rm', '--network', 'pnet2', IMAGE, 'true'])).exitCode).toBe(0);
  });

  // An engine-independent step (the records are files on the host): shown once, to keep the suite short.
  // Registered for 20.10 only (not skipped on the other engines: there is no such test there).
  const upgradeTest = (name: string, fn: () => Promise<void>, timeout?: number): void => {
    if (engine === '20.10') test(name, fn, timeout);
  };
  upgradeTest('rebuilt and re-created by make plugin (an upgrade without a registry), it finds its records on the host', async () => {
    const oldId = pluginId;
    pluginId = await makePlugin();
    expect(pluginId).not.toBe(oldId);
    // A new plugin starts from the manifest's settings, which point at the same records: nothing to set.
    await docker(['plugin', 'enable', PLUGIN]);
    for (const c of ['p1', 'p2', 'p3', 'p4']) expect(await ipOf(c)).toBe(ips[c]);
    await runDetached('p5');
    ips.p5 = await ipOf('p5');
    expect(new Set(Object.values(ips)).size).toBe(Object.keys(ips).length);
    expect((await ping('p5', ips.p1)).exitCode).toBe(0);
    expect((await status()).endpoints).toHaveLength(5);
  }, BUILD_TIMEOUT_MS + 60_000);

  test('removing containers, networks and the plugin leaves no link, chain, process or record behind', async () => {
    await docker(['rm', '-f', ...Object.keys(ips)]);
    await docker(['network', 'rm', 'pnet', 'pnet2']);
    await docker(['plugin', 'disable', '-f', PLUGIN]);
    await docker(['plugin', 'rm', '-f', PLUGIN]);
    expect((await docker(['plugin', 'ls', '-q'])).stdout.trim()).toBe('');
    await waitFor('the plugin process to exit', async () => (await pluginPids(host)).length === 0, { timeoutMs: 15_000 });
    expect(await pluginCgroups(created)).toEqual([]);
    expect(await knitLinks()).toEqual([]);
    const rules = (await host.exec(['iptables-save'])).stdout;
    expect(rules).not.toMatch(/KNIT-(IN|OUT)-|kn-[0-9a-f]|knh[0-9a-f]/);
    expect(await records(stateDir)).toEqual({ ipam: 0, nets: 0, eps: 0 });
    await rm(join(host.dir, 'psock'), { force: true });
  });
});
