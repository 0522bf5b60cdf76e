// Macvlan parents: checked before a network is made, 802.1q sub-interfaces made when missing and removed
// with the last network that uses them. Which ones knit made is recorded, so a parent the user made stays.
import { describe, KnitError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Store } from '../../store/types.js';
import { isMacvlan, parentToRelease, planParent } from './plan.js';
import type { NetworkRecord } from '../records.js';
import type { Datapath } from '../datapath.js';

const MADE = 'macvlan/made/';

export class MacvlanParents {
  constructor(private readonly deps: { store: Store; kernel: Datapath; log: Logger }) {}

  /** The sub-interfaces knit made and has not removed yet. */
  async made(): Promise<string[]> {
    return (await this.deps.store.list(MADE)).map((e) => e.key.slice(MADE.length));
  }

  /**
   * Sets the network's MTU from its parent and makes the parent if it is a missing IF.VID. The record goes
   * first: a crash right after making the link leaves it known as knit's (reconcile removes it if unused).
   */
  async prepare(net: NetworkRecord, others: NetworkRecord[]): Promise<void> {
    if (!isMacvlan(net)) return;
    const plan = planParent({ net, others, links: await this.deps.kernel.links() });
    net.mtu ??= plan.mtu;
    if (plan.source) net.hostLegSource = plan.source;
    if (!plan.make) return;
    await this.deps.store.commit([{ key: MADE + plan.make.name, value: JSON.stringify({ link: plan.make.link, vid: plan.make.vid }) }]);
    try {
      await this.deps.kernel.apply([plan.make]);
    } catch (err) {
      await this.deps.store.commit([{ key: MADE + plan.make.name, value: null }]);
      throw new KnitError('unavailable', `parent ${plan.make.name} does not exist and knit could not make it as an 802.1q sub-interface of ` +
        `${plan.make.link} (VLAN ${plan.make.vid}): ${describe(err)}. The kernel may lack 802.1q (the 8021q module); ` +
        'create the sub-interface yourself or choose an existing parent', { cause: err });
    }
    this.deps.log.info('802.1q parent made', { parent: plan.make.name, link: plan.make.link, vid: plan.make.vid });
  }

  /**
   * The host leg hears every broadcast the LAN sends its parent, and would answer ARP for all of the host's
   * addresses with its own MAC: the LAN would then send the host's traffic to the leg (seen here: the host lost
   * its store). With arp_filter it answers only where the reply would leave through it: its own containers.
   */
  async tuneHostLeg(net: NetworkRecord): Promise<void> {
    if (isMacvlan(net) && net.macvlan.hostLeg) await this.deps.kernel.setSysctl(`net/ipv4/conf/${net.bridge}/arp_filter`, '1');
  }

  /** After a macvlan network went (or failed to be made): its parent goes too if knit made it and no other network uses it. */
  async release(net: NetworkRecord, others: NetworkRecord[]): Promise<void> {
    if (!isMacvlan(net)) return;
    const parent = parentToRelease({ net, others, made: await this.made() });
    if (parent) await this.drop([parent]);
  }

  /** Link first, record after: a crash in between leaves a record with no link, which the next reconcile drops. */
  async drop(names: string[]): Promise<void> {
    for (const name of names) {
      await this.deps.kernel.remove([{ op: 'link-del', name }]);
      await this.deps.store.commit([{ key: MADE + name, value: null }]);
      this.deps.log.info('802.1q parent removed: no network uses it any more', { parent: name });
    }
  }
}
