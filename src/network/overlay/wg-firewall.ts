// The fail-closed rules of encrypted overlays (wg-plan.ts's chains) put into the kernel, and taken out once the
// host has no encrypted overlay left. They outlive knit, so a crash or restart never opens a gap.
import { jumpText, renderJump, renderRestore, type Table } from '../../datapath/firewall.js';
import type { Iptables } from '../firewall.js';
import { WG_CHAINS, wgChains, wgJumps } from './wg-plan.js';

export class WgFirewall {
  constructor(private readonly ipt: Iptables) {}

  /** Chains rewritten, then each jump put first in its built-in chain. */
  async install(dev: string, subnet: string): Promise<void> {
    await this.ipt.iptablesRestore(4, renderRestore(wgChains(dev, subnet)));
    const saved = await this.saved();
    for (const j of wgJumps) {
      const rules = saved.get(j.table)!.filter((l) => l.startsWith(`-A ${j.from} `));
      if (rules[0] !== jumpText(j)) await this.ipt.iptablesRestore(4, renderJump(j, rules.includes(jumpText(j))));
    }
  }

  /** Jumps out, then the chains: what was never installed is skipped. */
  async remove(): Promise<void> {
    const saved = await this.saved();
    for (const j of wgJumps) {
      const lines = saved.get(j.table)!;
      const jump = lines.includes(jumpText(j)) ? [`-D ${jumpText(j).slice(3)}`] : [];
      const chain = lines.some((l) => l.startsWith(`:${j.to} `)) ? [`:${j.to} - [0:0]`, `-X ${j.to}`] : [];
      if (jump.length || chain.length) await this.ipt.iptablesRestore(4, [`*${j.table}`, ...jump, ...chain, 'COMMIT', ''].join('\n'));
    }
  }

  /** Whether the rules are there now (status, tests). */
  async installed(): Promise<boolean> {
    const saved = await this.saved();
    return wgJumps.every((j) => saved.get(j.table)!.includes(jumpText(j))) && saved.get('raw')!.some((l) => l.startsWith(`:${WG_CHAINS.pre} `));
  }

  private async saved(): Promise<Map<Table, string[]>> {
    const out = new Map<Table, string[]>();
    for (const t of ['raw', 'mangle'] as const) out.set(t, (await this.ipt.iptablesSave(4, t)).split('\n'));
    return out;
  }
}
