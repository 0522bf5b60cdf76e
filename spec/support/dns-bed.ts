// A test bed for knit's resolver, made of network namespaces: a host (the current namespace, or a new one)
// with the resolver's address on lo and a bridge, "container" namespaces on veths, and real upstream DNS
// servers (dnsmasq) in a namespace of their own. Everything it makes is removed by dispose(), even halfway.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './layout.js';
import { GiveUp, run, type RunResult, spawnLogged, type Spawned, waitFor } from './proc.js';

export const DNS_ADDRESS = '169.254.53.53';
export const GATEWAY = '10.53.0.1';
const UPSTREAM_HOST_SIDE = '10.54.0.1';

export interface ContainerSpec {
  /** Addresses on its one interface (the first is its own; more make a namespace that stands for many clients). */
  ips: string[];
  /** A default route via the host, or only a /32 route to the resolver (an internal network's container). */
  route: 'default' | 'resolver';
}

export interface UpstreamSpec {
  ip: string;
  /** dnsmasq's answers, e.g. ["/ext.test/192.0.2.7", "/nx.test/"]; none: it refuses every query. */
  addresses: string[];
}

export interface ResolverSpec {
  queriers?: Record<string, string[]>;
  records?: Record<string, Record<string, { v4?: string[]; v6?: string[] }>>;
  internal?: string[];
  trusted?: string[];
  tuning?: Record<string, unknown>;
  port?: number;
}

export class DnsBed {
  readonly containers: string[] = [];
  private readonly made: string[] = [];
  private readonly procs: Spawned[] = [];
  resolver?: Spawned;
  readonly resolvConf: string;

  private constructor(readonly prefix: string, readonly dir: string, readonly hostNs?: string) {
    this.resolvConf = join(dir, 'resolv.conf');
  }

  /** `prefix` names everything (namespaces `${prefix}-…`, links `${prefix}…`): at most 8 characters. */
  /** `address` false leaves putting the resolver's address on lo to the test (knit's own code does it there). */
  static async create(a: { prefix: string; ownHost: boolean; address?: boolean }): Promise<DnsBed> {
    const bed = new DnsBed(a.prefix, await mkdtemp(join(tmpdir(), `knit-${a.prefix}-`)), a.ownHost ? `${a.prefix}-host` : undefined);
    try {
      if (bed.hostNs) await bed.netns(bed.hostNs);
      if (a.address !== false) await bed.host(['ip', 'addr', 'add', `${DNS_ADDRESS}/32`, 'dev', 'lo']);
      await bed.host(['ip', 'link', 'add', `${a.prefix}br`, 'up', 'type', 'bridge']);
      await bed.host(['ip', 'addr', 'add', `${GATEWAY}/24`, 'dev', `${a.prefix}br`]);
      await bed.host(['ip', 'link', 'set', `${a.prefix}br`, 'up']);
    } catch (err) {
      await bed.dispose();
      throw err;
    }
    return bed;
  }

  /** Runs a command in the host namespace. */
  host(argv: string[], reject = true): Promise<RunResult> {
    return run(this.hostNs ? ['nsenter', `--net=/run/netns/${this.hostNs}`, '--', ...argv] : argv, { reject });
  }

  private async netns(name: string): Promise<void> {
    await run(['ip', 'netns', 'del', name], { reject: false });
    await run(['ip', 'netns', 'add', name]);
    this.made.push(name);
    await run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** A veth from the host (on `master`, or with `hostIp`) into namespace `ns` with `ips`. */
  private async wire(a: { ns: string; hostEnd: string; nsEnd: string; ips: string[]; master?: string; hostIp?: string }): Promise<void> {
    await this.host(['ip', 'link', 'add', a.hostEnd, 'type', 'veth', 'peer', 'name', a.nsEnd, 'netns', a.ns]);
    if (a.master) await this.host(['ip', 'link', 'set', a.hostEnd, 'master', a.master]);
    if (a.hostIp) await this.host(['ip', 'addr', 'add', a.hostIp, 'dev', a.hostEnd]);
    await this.host(['ip', 'link', 'set', a.hostEnd, 'up']);
    for (const ip of a.ips) await run(['ip', '-n', a.ns, 'addr', 'add', `${ip}/24`, 'dev', a.nsEnd]);
    await run(['ip', '-n', a.ns, 'link', 'set', a.nsEnd, 'up']);
  }

  /** A "container": its namespace's name. */
  async container(c: ContainerSpec): Promise<string> {
    const n = this.containers.length + 1;
    const ns = `${this.prefix}-c${n}`;
    await this.netns(ns);
    await this.wire({ ns, hostEnd: `${this.prefix}h${n}`, nsEnd: `${this.prefix}c${n}`, ips: c.ips, master: `${this.prefix}br` });
    const route = c.route === 'default' ? ['default'] : [`${DNS_ADDRESS}/32`];
    await run(['ip', '-n', ns, 'route', 'add', ...route, 'via', GATEWAY]);
    this.containers.push(ns);
    return ns;
  }

  /** dnsmasq servers in one namespace behind the host (reached through the host's routing, as a real upstream is). */
  async upstreams(specs: UpstreamSpec[]): Promise<void> {
    const ns = `${this.prefix}-up`;
    await this.netns(ns);
    await this.wire({ ns, hostEnd: `${this.prefix}uh`, nsEnd: `${this.prefix}un`, ips: specs.map((s) => s.ip), hostIp: `${UPSTREAM_HOST_SIDE}/24` });
    for (const [i, s] of specs.entries()) {
      const args = ['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--user=root', '--group=root', '--pid-file=', '--no-resolv', '--no-hosts',
        `--listen-address=${s.ip}`, '--bind-interfaces', '--log-queries', `--log-facility=${this.upstreamLog(i)}`, ...s.addresses.map((a) => `--address=${a}`)];
      const proc = spawnLogged(['nsenter', `--net=/run/netns/${ns}`, '--', ...args], { logFile: join(this.dir, `dnsmasq-${i}.out`) });
      this.procs.push(proc);
      await waitFor(`dnsmasq on ${s.ip}`, async () => {
        if (!proc.running()) throw new GiveUp(`dnsmasq exited: ${await readFile(join(this.dir, `dnsmasq-${i}.out`), 'utf8').catch(() => '')}`);
        return (await run(['nsenter', `--net=/run/netns/${ns}`, '--', 'ss', '-lun', `src ${s.ip}:53`], { reject: false })).stdout.includes(`${s.ip}:53`);
      }, { timeoutMs: 10_000, intervalMs: 50 });
    }
  }

  upstreamLog(i: number): string {
    return join(this.dir, `dnsmasq-${i}.log`);
  }

  /** Queries an upstream saw so far (dnsmasq logs one "query[TYPE] name from addr" line for each). */
  async upstreamQueries(i: number): Promise<string[]> {
    return (await readFile(this.upstreamLog(i), 'utf8').catch(() => '')).split('\n').filter((l) => /query\[/.test(l));
  }

  async setUpstreams(ips: string[]): Promise<void> {
    await writeFile(`${this.resolvConf}.new`, ips.map((ip) => `nameserver ${ip}\n`).join(''));
    await run(['mv', `${this.resolvConf}.new`, this.resolvConf]);
  }

  /** Starts the resolver process in the host namespace; resolves once it listens. */
  async startResolver(spec: ResolverSpec): Promise<Spawned> {
    const file = join(this.dir, 'resolver.json');
    await writeFile(file, JSON.stringify({ address: DNS_ADDRESS, resolvConf: this.resolvConf, ...spec }));
    const argv = ['node', join(repoRoot, 'spec/support/dns-server.mjs'), file];
    const proc = spawnLogged(this.hostNs ? ['nsenter', `--net=/run/netns/${this.hostNs}`, '--', ...argv] : argv, { logFile: join(this.dir, 'resolver.log'), capture: true });
    this.resolver = proc;
    await waitFor('the resolver to listen', async () => {
      if (!proc.running()) throw new GiveUp(`the resolver exited: ${proc.stderr.slice(-2000)}`);
      return proc.stdout.includes('"ready":true');
    }, { timeoutMs: 20_000, intervalMs: 50 });
    return proc;
  }

  /** The resolver's counters (it prints them on SIGUSR2). */
  async resolverStats(): Promise<Record<string, number>> {
    const proc = this.resolver;
    if (!proc) throw new Error('no resolver running');
    const before = proc.stdout.length;
    proc.kill('SIGUSR2');
    const line = await waitFor('the resolver\'s stats', async () => proc.stdout.slice(before).split('\n').find((l) => l.startsWith('{"stats"')), { timeoutMs: 5_000, intervalMs: 20 });
    return (JSON.parse(line) as { stats: Record<string, number> }).stats;
  }

  /** Runs the DNS client (spec/support/dns-client.mjs) in namespace `ns`. */
  async ask<T = unknown>(ns: string, spec: object): Promise<T> {
    const r = await run(['ip', 'netns', 'exec', ns, 'node', join(repoRoot, 'spec/support/dns-client.mjs'), JSON.stringify({ server: DNS_ADDRESS, ...spec })], { timeoutMs: 120_000 });
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null') as T;
  }

  async dispose(): Promise<void> {
    await this.resolver?.stop(5_000);
    for (const p of this.procs) await p.stop(5_000);
    for (const ns of this.made.reverse()) await run(['ip', 'netns', 'del', ns], { reject: false });
    if (!this.hostNs) {
      // In the caller's own namespace: the links and the address go one by one (the namespace stays).
      for (const link of [`${this.prefix}br`, `${this.prefix}uh`, ...this.containers.map((_, i) => `${this.prefix}h${i + 1}`)]) {
        await run(['ip', 'link', 'del', link], { reject: false });
      }
      await run(['ip', 'addr', 'del', `${DNS_ADDRESS}/32`, 'dev', 'lo'], { reject: false });
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
