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

export class IptablesFirewall implements Firewall {
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly eps = new Map<string, EndpointRecord[]>();
  private dockerBridges: string[] = [];

  constructor(private readonly ipt: Iptables, private readonly log: Logger) {}

  /** At start: the jumps first in their built-in chains, and every network's chains rewritten. */
  async init(nets: NetworkRecord[], eps: EndpointRecord[], dockerBridges: string[]): Promise<void> {
    this.dockerBridges = dockerBridges;
    for (const n of nets) {
      this.nets.set(n.id, n);
      this.eps.set(n.id, eps.filter((e) => e.networkId === n.id));
    }
    for (const family of [4, 6] as const) {
      await this.ipt.iptablesRestore(family, renderRestore(this.allChains(family)));
      await this.ensureJumps(family);
    }
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
    await this.write([planNetworkChains(net)], []);
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    this.nets.delete(net.id);
    this.eps.delete(net.id);
    await this.write([], [CHAINS.in(net.id), CHAINS.out(net.id)]);
  }

  async syncShared(): Promise<void> {
    await this.write([], []);
  }

  private async write(networkChains: Chain[][], drop: string[]): Promise<void> {
    for (const family of this.families()) {
      const chains = [...networkChains.flat(), ...this.shared(family)];
      const gone = drop.map((name) => ({ table: 'filter' as const, name }));
      await this.ipt.iptablesRestore(family, renderRestore(chains, gone));
    }
  }

  /** IPv6 rules only matter once a network has an IPv6 subnet; the chains exist in both anyway. */
  private families(): FamilyNo[] {
    return [4, 6];
  }

  private shared(family: FamilyNo): Chain[] {
    return planShared({ nets: [...this.nets.values()], eps: [...this.eps.values()].flat(), dockerBridges: this.dockerBridges, family });
  }

  private allChains(family: FamilyNo): Chain[] {
    return [...[...this.nets.values()].flatMap(planNetworkChains), ...this.shared(family)];
  }
}
