// The invariants after a fault, run on a whole cluster and counted in the tally; the leak check waits out knit's grace period.
import { setTimeout as sleep } from 'node:timers/promises';
import { connectivity } from './connectivity.js';
import type { FaultCluster } from './fault-cluster.js';
import { abandonedInGrace, blocksHold, endpointsMatch, firewallMatches, ipamMatches, linksMatch, overlayEntriesMatch, uniqueAddresses } from './invariants.js';
import type { Tally } from './tally.js';
import { gather, type ClusterView } from './view.js';

/** src/maintenance.ts ADDRESS_GRACE_MS: an address handed out but unused is left alone this long (dockerd asks IPAM before CreateEndpoint). */
export const ADDRESS_GRACE_MS = 60_000;
/** Overlay entries follow the store's watch: give them this long to converge before calling a difference a failure. */
const CONVERGE_MS = 20_000;

export type Failures = Record<string, string[]>;

/** Gathers until `check` passes or `ms` runs out; returns the last failures. */
async function eventually(c: FaultCluster, check: (v: ClusterView) => string[], ms: number): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const failures = check(await gather(c));
    if (failures.length === 0 || Date.now() > until) return failures;
    await sleep(2_000);
  }
}

/**
 * Everything of point 3 of the issue, after `knit.Doctor` on every host: pings, unique addresses, endpoints and
 * IPAM records in agreement, no orphan link, FDB/neighbour entry or iptables rule. Unused addresses younger than
 * the grace period are tolerated here and returned (verifyNoLeaks waits for them). At least `minPinged` endpoints
 * (default 1) must be left to ping: invariants over an empty cluster hold trivially.
 */
export async function verifyCluster(c: FaultCluster, tally: Tally, o: { minPinged?: number } = {}): Promise<{ failures: Failures; inGrace: number; pinged: number }> {
  await c.settle();
  const v = await gather(c);
  // src/maintenance.ts ENDPOINT_GRACE_MS is the same 60 s.
  const abandoned = abandonedInGrace(v, ADDRESS_GRACE_MS);
  const ipam = ipamMatches(v, ADDRESS_GRACE_MS, abandoned);
  const ping = await connectivity(c, v);
  const minPinged = o.minPinged ?? 1;
  if (ping.pinged > 0 && ping.pinged < minPinged) ping.failures.push(`only ${ping.pinged} container endpoint(s) were left to ping; at least ${minPinged} must be`);
  const failures: Failures = {
    connectivity: tally.check(ping.failures),
    uniqueAddresses: tally.check(uniqueAddresses(v)),
    endpoints: tally.check(endpointsMatch(v, abandoned)),
    ipam: tally.check([...ipam.failures, ...blocksHold(v)]),
    links: tally.check(linksMatch(v)),
    overlayEntries: tally.check(await eventually(c, overlayEntriesMatch, CONVERGE_MS)),
    firewall: tally.check(firewallMatches(v)),
  };
  const endpoints = v.hosts.reduce((n, h) => n + h.docker.length, 0);
  console.log(`verified ${v.hosts.length} host(s): ${endpoints} endpoints, ${ping.pinged} pinged, ${ipam.inGrace.length} unused address(es) and ${abandoned.size} abandoned endpoint(s) still in the grace period`);
  return { failures, inGrace: ipam.inGrace.length + abandoned.size, pinged: ping.pinged };
}

/**
 * The strict leak check. `inGrace` is what verifyCluster last counted (unused addresses and abandoned endpoints): with none, none existed and the
 * check runs at once; otherwise it waits until every address handed out so far is older than the grace period
 * (from `since`, the end of the last operation), runs the sweep through knit.Doctor, and allows no unused address.
 */
export async function verifyNoLeaks(c: FaultCluster, tally: Tally, o: { since: number; inGrace: number }): Promise<string[]> {
  const wait = o.inGrace > 0 ? o.since + ADDRESS_GRACE_MS + 2_000 - Date.now() : 0;
  if (wait > 0) {
    console.log(`waiting ${Math.round(wait / 1000)} s for knit's address grace period to pass before the strict leak check`);
    await sleep(wait);
  }
  await c.settle();
  const v = await gather(c);
  return tally.check([...ipamMatches(v).failures, ...blocksHold(v), ...endpointsMatch(v)]);
}

export const none = (f: Failures): Failures => Object.fromEntries(Object.keys(f).map((k) => [k, []]));
