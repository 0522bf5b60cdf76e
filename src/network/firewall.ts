// Keeps knit's iptables chains equal to what the records say, one iptables-restore per family per change.
import { type Chain, jumpText, renderJump, renderRestore, type Table } from '../datapath/firewall.js';
import type { Logger } from '../log.js';
import { CHAINS, type FamilyNo, jumps, planNetworkChains, planShared } from './firewall-plan.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { Firewall } from './service.js';

export interface Iptables {
  iptablesRestore(family: FamilyNo, input: string): Promise<void>;
  iptablesSave(family: FamilyNo, table: Table): Promise<string>;
}

/** knit's per-network chains as iptables-save declares them. */
const NETWORK_CHAIN = /^:(KNIT-(?:IN|OUT)-[0-9a-f]{12}) /;

/** IPv6 rules exist only for networks with an IPv6 subnet (as Docker does): a host without one runs no ip6tables-restore. */
/** Macvlan networks have no chains: their traffic goes from the container to the parent's wire, past the host's netfilter. */
const inFamily = (family: FamilyNo) => (n: NetworkRecord): boolean => n.mode !== 'macvlan' && (family === 4 || n.ipv6.length > 0);

export class IptablesFirewall implements Firewall {
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly eps = new Map<string, EndpointRecord[]>();
  private dockerBridges: string[] = [];
  /** The last input restored per family: the same input again changes nothing and is not run. */
  private readonly written = new Map<FamilyNo, string>();

  constructor(private readonly ipt: Iptables, private readonly log: Logger) {}

  /**
   * At start: every network's chains rewritten, chains of networks that no longer exist (a crash between
   * record and rules) dropped, and the jumps first in their built-in chains.
   */
  async init(nets: NetworkRecord[], eps: EndpointRecord[], dockerBridges: string[]): Promise<void> {
    this.dockerBridges = dockerBridges;
    this.nets.clear();
    this.eps.clear();
    for (const n of nets) {
      this.nets.set(n.id, n);
      this.eps.set(n.id, eps.filter((e) => e.networkId === n.id));
    }
    this.forget();
    for (const family of [4, 6] as const) {
      const wanted = new Set(this.netsOf(family).flatMap((n) => [CHAINS.in(n.id), CHAINS.out(n.id)]));
      const present = (await this.ipt.iptablesSave(family, 'filter')).split('\n').flatMap((l) => NETWORK_CHAIN.exec(l)?.[1] ?? []);
      const orphans = present.filter((name) => !wanted.has(name));
      if (orphans.length) this.log.info('firewall chains of removed networks dropped', { family, chains: orphans });
      await this.restore(family, [...this.netsOf(family).flatMap(planNetworkChains), ...this.shared(family)], orphans);
      await this.ensureJumps(family);
    }
  }

  /** The next write runs whatever it is (the doctor: someone may have flushed the tables). */
  forget(): void {
    this.written.clear();
  }

  /** Puts each jump first in its chain; returns how many had to be (re)placed. */
  async ensureJumps(family: FamilyNo): Promise<number> {
    let fixed = 0;
    const saved = new Map<Table, string[]>();
    for (const j of jumps(family)) {
      if (!saved.has(j.table)) saved.set(j.table, (await this.ipt.iptablesSave(family, j.table)).split('\n'));
      // dockerd keeps its DOCKER-USER jump first on every network change; ours may follow it.
      const rules = saved.get(j.table)!.filter((l) => l.startsWith(`-A ${j.from} `) && l !== `-A ${j.from} -j DOCKER-USER`);
      const want = jumpText(j);
      if (rules[0] === want) continue;
      await this.ipt.iptablesRestore(family, renderJump(j, rules.includes(want)));
      fixed++;
    }
    if (fixed) this.log.info('firewall jumps placed', { family, fixed });
    return fixed;
  }

  setDockerBridges(names: string[]): boolean {
    const changed = names.join(',') !== this.dockerBridges.join(',');
    this.dockerBridges = names;
    return changed;
  }

  async syncNetwork(net: NetworkRecord, eps: EndpointRecord[]): Promise<void> {
    this.nets.set(net.id, net);
    this.eps.set(net.id, eps);
    await this.write([net], []);
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    this.nets.delete(net.id);
    this.eps.delete(net.id);
    await this.write([], [net]);
  }

  async syncShared(): Promise<void> {
    await this.write([], []);
  }

  private async write(changed: NetworkRecord[], removed: NetworkRecord[]): Promise<void> {
    for (const family of [4, 6] as const) {
      const chains = [...changed.filter(inFamily(family)).flatMap(planNetworkChains), ...this.shared(family)];
      const gone = removed.filter(inFamily(family)).flatMap((n) => [CHAINS.in(n.id), CHAINS.out(n.id)]);
      await this.restore(family, chains, gone);
    }
  }

  private async restore(family: FamilyNo, chains: Chain[], gone: string[]): Promise<void> {
    const text = renderRestore(chains, gone.map((name) => ({ table: 'filter' as const, name })));
    if (text === this.written.get(family)) return;
    await this.ipt.iptablesRestore(family, text);
    this.written.set(family, text);
  }

  private netsOf(family: FamilyNo): NetworkRecord[] {
    return [...this.nets.values()].filter(inFamily(family));
  }

  private shared(family: FamilyNo): Chain[] {
    const nets = this.netsOf(family);
    return planShared({ nets, eps: nets.flatMap((n) => this.eps.get(n.id) ?? []), dockerBridges: this.dockerBridges, family });
  }
}
