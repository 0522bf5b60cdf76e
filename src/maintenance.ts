// Periodic clean-up across both handlers: endpoints whose container vanished while knit was away,
// and addresses IPAM handed out that no endpoint or network ended up using.
import { describe } from './errors.js';
import type { Ipam, PoolReads } from './ipam/service.js';
import type { Logger } from './log.js';
import type { EndpointRecord } from './network/records.js';
import type { Datapath, NetworkDriver } from './network/service.js';

/** How long an address may exist with no endpoint: dockerd asks IPAM just before CreateEndpoint. */
export const ADDRESS_GRACE_MS = 60_000;
/** How long an endpoint may stay out of a sandbox: dockerd joins right after CreateEndpoint and deletes right after Leave. */
export const ENDPOINT_GRACE_MS = 60_000;

export interface SweepReport {
  orphanNetworks: number;
  restoredAddresses: number;
  staleEndpoints: number;
  leakedAddresses: number;
  /** Overlay segment memberships put right (left without a network, or missing with one). */
  segments: number;
}

export async function sweep(a: { driver: NetworkDriver; ipam: Ipam; kernel: Datapath; log: Logger; now?: number }): Promise<SweepReport> {
  const { driver, ipam, kernel, log } = a;
  const now = a.now ?? Date.now();
  const report: SweepReport = { orphanNetworks: 0, restoredAddresses: 0, staleEndpoints: 0, leakedAddresses: 0, segments: 0 };
  // Each pool record is read once in this pass (it lists every holding host: at 100 hosts, kilobytes).
  const reads: PoolReads = new Map();
  for (const net of await driver.networks()) {
    // dockerd releases a network's pools just before DeleteNetwork, and also when it gave up on a
    // CreateNetwork whose reply a crash lost: either way the network is gone.
    if (net.knitIpam && !(await ipam.holdsPool(net.ipv4[0].subnet, reads))) {
      await driver.deleteNetwork(net.id);
      report.orphanNetworks++;
    }
  }
  // Records before links: an endpoint joined before this read had its veth made before it, so a
  // veth missing from the later read is really gone (reading links first raced new endpoints).
  const endpoints = await driver.endpoints();
  const links = new Set((await kernel.links()).map((l) => l.name));
  // Stale: joined, but its veth is gone (it lost its namespace: dockerd's own teardown did not reach us), or not
  // joined long after it was made or left (dockerd never got the CreateEndpoint reply, or the DeleteEndpoint after
  // a Leave never reached knit: either way dockerd gave up on it, released its address and will never delete it).
  // A macvlan endpoint's one link (hostIf = peerIf) moves into its container: nothing of a joined one stays here to check.
  const stale = (e: EndpointRecord): boolean =>
    e.sandboxKey !== undefined ? e.hostIf !== e.peerIf && !links.has(e.hostIf) : now - Date.parse(e.leftAt ?? e.createdAt) > ENDPOINT_GRACE_MS;
  for (const ep of endpoints) {
    if (stale(ep) && (await driver.deleteEndpoint(ep.networkId, ep.id, stale))) report.staleEndpoints++;
  }
  // The other direction: every address a local endpoint uses has a record that says it is ours.
  const nets = new Map((await driver.networks()).map((n) => [n.id, n]));
  for (const ep of await driver.endpoints()) {
    const net = nets.get(ep.networkId);
    // Only joined endpoints: one never joined may be abandoned, and dockerd may already have released its address.
    if (!net?.knitIpam || !ep.address || ep.sandboxKey === undefined) continue;
    const state = await ipam.ensureOwned(net.ipv4[0].subnet, ep.address.split('/')[0], reads);
    if (state === 'restored') report.restoredAddresses++;
    if (state === 'taken') log.error('an address a running endpoint uses is held by another host', { endpoint: ep.id.slice(0, 12), address: ep.address });
  }
  const used = new Set<string>();
  for (const ep of await driver.endpoints()) for (const c of [ep.address, ep.addressV6]) if (c) used.add(c.split('/')[0]);
  for (const net of await driver.networks()) {
    for (const s of [...net.ipv4, ...net.ipv6]) for (const ip of Object.values(s.aux ?? {})) used.add(ip);
  }
  for (const addr of await ipam.ownAddresses()) {
    if (addr.record.kind === 'gateway' || used.has(addr.ip)) continue;
    if (now - Date.parse(addr.record.at) < ADDRESS_GRACE_MS) continue;
    try {
      if (await ipam.releaseOwned(addr.key)) report.leakedAddresses++;
    } catch (err) {
      log.warn('could not release a leaked address', { address: addr.ip, error: describe(err) });
    }
  }
  try {
    report.segments = await driver.reconcileSegments();
  } catch (err) {
    log.warn('could not put overlay segment memberships right', { error: describe(err) });
  }
  if (Object.values(report).some((n) => n > 0)) log.info('swept', { ...report });
  return report;
}
