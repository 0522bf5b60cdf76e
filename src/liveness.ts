// The liveness checks of a cluster: at every tick the leading host (the lowest live ID, LiveHosts) reads which
// hosts are alive, has IPAM quarantine and reclaim the lost ones, and clears their segment memberships, tunnel
// addresses and host addresses from the store. Every host runs the checks once every FULL_CHECK_EVERY ticks
// whether it leads or not, so a watch running late never stops them; the checks are compare-and-set throughout.
import { describe } from './errors.js';
import type { HostAddresses } from './ipam/host-addresses.js';
import type { Ipam } from './ipam/service.js';
import type { Logger } from './log.js';
import type { HostLease } from './network/overlay/lease.js';
import type { LiveHosts } from './network/overlay/live-hosts.js';
import type { Segments } from './network/overlay/segments.js';

/** Every host checks on the twelfth tick (once a minute at 5 s ticks); the leader at every tick. */
export const FULL_CHECK_EVERY = 12;

export interface LivenessDeps {
  lease: HostLease;
  live: LiveHosts;
  ipam: Pick<Ipam, 'reclaimLost'>;
  segments: Pick<Segments, 'forgetHosts'>;
  tunnel?: { forgetHosts(hosts: string[]): Promise<void> };
  hostAddrs: Pick<HostAddresses, 'forget' | 'reload'>;
  log: Logger;
  afterMs: number;
}

/** One tick's work (tick counts from 1); resolves to whether the checks ran. Never rejects: failures are logged. */
export async function livenessTick(d: LivenessDeps, tick: number): Promise<boolean> {
  const full = tick % FULL_CHECK_EVERY === 0;
  if (!full && !d.live.leads()) return false;
  try {
    const live = await d.lease.liveHosts();
    const reclaimed = await d.ipam.reclaimLost({ live, now: Date.now(), afterMs: d.afterMs });
    await d.segments.forgetHosts(reclaimed);
    await d.tunnel?.forgetHosts(reclaimed);
    await d.hostAddrs.forget(reclaimed);
    // Other hosts' addresses, read again now and then besides their watch.
    if (full || reclaimed.length) await d.hostAddrs.reload();
  } catch (err) {
    d.log.warn('liveness check failed', { error: describe(err) });
  }
  return true;
}

/** Runs the ticks every `intervalMs` until stopped. */
export function startLiveness(d: LivenessDeps, intervalMs: number): { stop(): void } {
  let tick = 0;
  const timer = setInterval(() => void livenessTick(d, ++tick), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
