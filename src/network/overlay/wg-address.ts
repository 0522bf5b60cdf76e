// Tunnel addresses, one per host, claimed cluster-wide with compare-and-set (`wireguard/addresses/<ip>` = host ID).
// A claim outlives restarts and outages, so a host's encrypted VXLAN devices keep their local address; it goes
// only when the host is reclaimed as lost.
import { unavailable } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Cidr } from '../../addr/cidr.js';
import type { Store } from '../../store/types.js';
import { chooseAddress, WG } from './wg-plan.js';

const CLAIM_ATTEMPTS = 20;

/** This host's tunnel address: the one it claimed before (remembered at `key` in the local store), or the lowest free one. */
export async function claimAddress(a: { cluster: Store; local: Store; hostId: string; subnet: Cidr; log: Logger; key: string }): Promise<string> {
  const { cluster, local, hostId } = a;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const known = (await local.get(a.key))?.value;
    const claim = known ? await cluster.get(WG.address(known)) : undefined;
    if (known && claim?.value === hostId) return known;
    let ip = known && !claim ? known : undefined;
    if (!ip) {
      const claims = await cluster.list(WG.addresses);
      const mine = claims.find((c) => c.value === hostId);
      ip = mine ? mine.key.slice(WG.addresses.length) : chooseAddress(a.subnet, new Set(claims.map((c) => c.key.slice(WG.addresses.length))));
    }
    const ok = (await cluster.get(WG.address(ip)))?.value === hostId || (await cluster.commit([{ key: WG.address(ip), value: hostId, expect: 0 }])) !== null;
    if (!ok) continue;
    await local.commit([{ key: a.key, value: ip }]);
    a.log.info('WireGuard tunnel address claimed', { address: ip });
    return ip;
  }
  throw unavailable('the cluster store is too busy to claim a WireGuard tunnel address; try again');
}

/** Lost hosts (reclaimed) give their tunnel addresses back. */
export async function releaseAddresses(cluster: Store, hosts: string[]): Promise<void> {
  if (!hosts.length) return;
  const gone = (await cluster.list(WG.addresses)).filter((c) => hosts.includes(c.value));
  for (const c of gone) await cluster.commit([{ key: c.key, value: null, expect: c.revision }]);
}
