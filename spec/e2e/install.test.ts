// `make install` as a user runs it (into a throwaway PREFIX): the `knit` command answers --help, says plainly
// when no daemon runs, serves a real dockerd as the plain daemon, and `knit status` / `knit doctor` read it.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { post } from '../support/client.js';
import { repoRoot } from '../support/layout.js';
import { GiveUp, IMAGE, run, startHost, stopAll, waitFor, type Host, type Spawned } from '../support/testbed.js';

let prefix = '';
let bin = '';
let host: Host;
let daemon: Spawned | undefined;
let socket = '';

/** -o dist/main.js: install the dist/ this run was started with (the test command builds it first). */
const make = (target: string) =>
  run(['make', '-C', repoRoot, '--no-print-directory', '-o', 'dist/main.js', target, `PREFIX=${prefix}`, `SYSTEMD_UNIT_DIR=${join(prefix, 'etc/systemd/system')}`], { timeoutMs: 300_000 });
const knit = (args: string[], env: string[] = []) => run(['env', ...env, bin, ...args], { reject: false, timeoutMs: 60_000 });

/** Every file under a directory, relative to it, with its size (what a second install must reproduce). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.push(`${relative(dir, path)} ${(await stat(path)).size}`);
  }
  return out.sort();
}

beforeAll(async () => {
  prefix = await mkdtemp(join(tmpdir(), 'knit-install-'));
  bin = join(prefix, 'bin', 'knit');
}, 30_000);

afterAll(async () => {
  if (daemon?.running()) await daemon.stop(10_000);
  await stopAll();
  await rm(prefix, { recursive: true, force: true });
}, 120_000);

test('make install puts knit, its production modules and the unit under PREFIX', async () => {
  await make('install');
  expect((await stat(bin)).mode & 0o111).toBe(0o111);
  expect(existsSync(join(prefix, 'lib/knit/dist/main.js'))).toBe(true);
  // The lock file's production modules, with lmdb's prebuilt binary for this platform; no dev tools.
  const modules = join(prefix, 'lib/knit/node_modules');
  for (const dep of ['express', 'lmdb', 'execa', 'winston', '@lmdb/lmdb-linux-x64']) expect(existsSync(join(modules, dep))).toBe(true);
  for (const dev of ['jest', 'typescript', 'ts-jest']) expect(existsSync(join(modules, dev))).toBe(false);
  const unit = await readFile(join(prefix, 'etc/systemd/system/knit.service'), 'utf8');
  expect(unit).toContain(`\nExecStart=${bin} daemon\n`);
  expect(unit).toContain('\nBefore=docker.service\n');
}, 330_000);

test('knit --help prints the usage; an unknown command prints it on stderr and exits 2', async () => {
  const help = await knit(['--help']);
  expect(help.exitCode).toBe(0);
  expect(help.stdout).toMatch(/^usage: knit \[COMMAND\]/);
  expect(help.stdout).toContain('  status ');
  expect(help.stdout).toContain('  doctor ');
  const bad = await knit(['stauts']);
  expect(bad.exitCode).toBe(2);
  expect(bad.stdout).toBe('');
  expect(bad.stderr).toMatch(/^knit: unknown command "stauts"\n\nusage: knit/);
});

test('with no daemon, knit status says so in one sentence and exits 1', async () => {
  const host0 = await startHost({ name: 'inst' });
  host = host0;
  socket = host.socketPath('knit');
  const r = await knit(['status'], [`KNIT_SOCKET=${socket}`]);
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe(`knit is not running: cannot reach ${socket}`); // run() strips the final newline
}, 180_000);

test('the installed knit serves dockerd as the plain daemon, and knit status shows what it serves', async () => {
  await host.exec(['iptables', '-P', 'FORWARD', 'DROP']);
  const stateDir = join(host.dir, 'installed-state');
  await rm(stateDir, { recursive: true, force: true });
  daemon = host.spawnInHost([bin, 'daemon'], { KNIT_SOCKET: socket, KNIT_STATE_DIR: stateDir });
  const proc = daemon;
  // It answers as soon as it listens and says "knit ready" once its records and the kernel agree.
  const ready = () => proc.stdout.split('\n').find((l) => l.includes('knit ready'));
  await waitFor('the installed knit to be ready', async () => {
    if (!proc.running()) throw new GiveUp(`knit exited: ${proc.stderr.slice(-2000)}`);
    return ready() !== undefined && (await post(socket, '/knit.Status', '{}', 2_000).catch(() => undefined))?.status === 200 ? true : undefined;
  }, { timeoutMs: 20_000, intervalMs: 100 });
  // Not a terminal: the daemon logs JSON lines.
  expect(JSON.parse(ready()!)).toMatchObject({ level: 'info', message: 'knit ready', socket });

  await host.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '--subnet', '10.77.0.0/24', 'inet']);
  const netId = (await host.docker(['network', 'inspect', '-f', '{{.Id}}', 'inet'])).stdout.trim().slice(0, 12);
  await host.docker(['run', '-d', '--name', 'i1', '--stop-timeout', '1', '--network', 'inet', '-p', '18080:80', IMAGE, 'sleep', '600']);
  const ip = (await host.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "inet").IPAddress}}', 'i1'])).stdout.trim();
  expect(ip).toMatch(/^10\.77\.0\.\d+$/);

  const text = await knit(['status'], [`KNIT_SOCKET=${socket}`]);
  expect(text.exitCode).toBe(0);
  const lines = text.stdout.split('\n');
  expect(lines[0]).toMatch(/^Host: {6}[0-9a-f]{16}$/);
  expect(text.stdout).toContain('Store:     local (embedded, this host only)\n');
  expect(text.stdout).toContain('Networks:  1\n');
  expect(lines.find((l) => l.startsWith(`  ${netId}`))).toMatch(new RegExp(`^  ${netId}\\s+bridge\\s+10\\.77\\.0\\.0/24\\s+kn-${netId}\\s+1$`));
  expect(text.stdout).toContain('Endpoints: 1\n');
  expect(lines.find((l) => l.includes(`${ip}/24`))).toMatch(new RegExp(`\\s${netId}\\s+${ip.replace(/\./g, '\\.')}/24\\s+0\\.0\\.0\\.0:18080->80/tcp$`));
  expect(lines.find((l) => l.includes('NetworkDriver.CreateEndpoint'))).toMatch(/NetworkDriver\.CreateEndpoint\s+1\s+[\d.]+ ms\s+[\d.]+ ms\s+0$/);
  expect(text.stdout).toMatch(/\nProcesses: ip \d+/);
  expect(text.stdout).toMatch(/\nMemory: {4}\d+ MB resident$/); // run() strips the final newline
  // The same document for scripts, through --socket this time.
  const json = await knit(['status', '--json', '--socket', socket]);
  expect(json.exitCode).toBe(0);
  const doc = JSON.parse(json.stdout);
  expect(doc.networks).toEqual([expect.objectContaining({ id: netId, mode: 'bridge', subnets: ['10.77.0.0/24'], endpoints: 1 })]);
  expect(doc.endpoints).toEqual([expect.objectContaining({ network: netId, address: `${ip}/24`, ports: [expect.objectContaining({ hostPort: 18080, containerPort: 80, proto: 'tcp' })] })]);
  expect(doc.store).toEqual({ kind: 'local', reachable: true });
  // Kept for the README's sample output.
  await writeFile(join(host.logsDir, 'knit-status.txt'), text.stdout);

  // Nothing is out of place. (Each doctor currently re-places one firewall jump: the IPv6 nat OUTPUT jump is
  // compared as `! -d ::1` with ip6tables-save's `! -d ::1/128`; the text says so, and that is all it may say.)
  const first = await knit(['doctor'], [`KNIT_SOCKET=${socket}`]);
  expect(first.exitCode).toBe(0);
  expect(first.stdout).toMatch(/^knit doctor: records(, kernel links, firewall and addresses agree; nothing to fix| and kernel links agree\nFixed:\n {2}1 firewall jumps restored)$/);
  const again = JSON.parse((await knit(['doctor', '--json'], [`KNIT_SOCKET=${socket}`])).stdout);
  expect(again).toMatchObject({ findings: [], failures: [], repaired: 0, removed: 0, orphanNetworks: 0, staleEndpoints: 0, leakedAddresses: 0 });
  expect(again.firewallJumpsFixed).toBeLessThanOrEqual(1);
}, 120_000);

test('a second make install is the same tree, under a running daemon; make uninstall removes it all', async () => {
  const before = await tree(prefix);
  await make('install');
  expect(await tree(prefix)).toEqual(before);
  // The running daemon keeps serving (its files were replaced as a whole, not rewritten in place).
  expect((await knit(['status', '--json'], [`KNIT_SOCKET=${socket}`])).exitCode).toBe(0);
  await host.docker(['rm', '-f', 'i1']);
  await host.docker(['network', 'rm', 'inet']);
  await daemon!.stop(10_000);
  await make('uninstall');
  for (const gone of [bin, join(prefix, 'lib/knit'), join(prefix, 'etc/systemd/system/knit.service')]) expect(existsSync(gone)).toBe(false);
  expect(await tree(prefix)).toEqual([]);
}, 330_000);
