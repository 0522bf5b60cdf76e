// The liveness checks of a cluster: a check reads which hosts are alive, has IPAM quarantine and reclaim the lost
// ones, and clears their segment memberships, tunnel addresses and host addresses from the store.
//
// When (CheckSchedule): the leading host (the lowest live ID, LiveHosts) checks at the tick after its watch of
// the liveness keys changed (a host gone starts its quarantine, a host back ends it) and again once a lost host's
// quarantine can have run out (KNIT_RECLAIM_AFTER after the change, plus a tick). Besides, every host runs its
// own check now and then whether it leads or not, so that a watch running late never stops the checks: once a
// minute up to 12 hosts, and less often beyond, so that the cluster as a whole runs about one a tick (each was
// once a minute on every host: at 100 hosts 100 listings of every liveness key, pool and host address a minute).
// Every step is a compare-and-set: two hosts checking at once are as safe as one.
import { describe } from './errors.js';
import type { HostAddresses } from './ipam/host-addresses.js';
import type { Ipam } from './ipam/service.js';
import type { Logger } from './log.js';
import type { HostLease } from './network/overlay/lease.js';
import type { LiveHosts } from './network/overlay/live-hosts.js';
import type { Segments } from './network/overlay/segments.js';

/** A host's own check comes every FULL_CHECK_EVERY ticks (once a minute at 5 s ticks) up to as many hosts. */
export const FULL_CHECK_EVERY = 12;
/** Deadlines remembered at most (each change within a tick of the last shares its deadline). */
const MAX_DEADLINES = 10_000;

export type CheckKind = 'full' | 'lead';

export interface ScheduleOptions {
  live: Pick<LiveHosts, 'leads' | 'others' | 'onChange'>;
  /** KNIT_RECLAIM_AFTER in ms. */
  afterMs: number;
  intervalMs: number;
  /** Where in its period this host's own check falls (random at start, so that hosts do not check together). */
  phase: number;
  now?: () => number;
}

/** Which ticks run the checks. */
export class CheckSchedule {
  /** The leader checks at the next tick: the live hosts changed, or the last check failed. */
  private dirty = true;
  /** When a quarantine started by a change can have run out (ascending). */
  private readonly deadlines: number[] = [];
  private readonly now: () => number;

  constructor(private readonly o: ScheduleOptions) {
    this.now = o.now ?? Date.now;
    o.live.onChange(() => this.changed());
  }

  /** Ticks between this host's own checks: FULL_CHECK_EVERY up to that many hosts, then about one a host. */
  period(): number {
    return FULL_CHECK_EVERY * Math.max(1, Math.ceil((this.o.live.others() + 1) / FULL_CHECK_EVERY));
  }

  /** What tick `tick` (counted from 1) runs: this host's own check, the leader's, or none. */
  at(tick: number): CheckKind | undefined {
    const now = this.now();
    let due = false;
    while (this.deadlines.length && this.deadlines[0] <= now) {
      this.deadlines.shift();
      due = true;
    }
    const kind = (tick + this.o.phase) % this.period() === 0 ? 'full' : this.o.live.leads() && (this.dirty || due) ? 'lead' : undefined;
    if (kind) this.dirty = false;
    return kind;
  }

  /** A check failed: the leader tries again at the next tick. */
  retry(): void {
    this.dirty = true;
  }

  private changed(): void {
    this.dirty = true;
    const at = this.now() + this.o.afterMs + this.o.intervalMs;
    const last = this.deadlines[this.deadlines.length - 1];
    if (last !== undefined && at - last < this.o.intervalMs) return;
    this.deadlines.push(at);
    if (this.deadlines.length > MAX_DEADLINES) this.deadlines.shift();
  }
}

export interface LivenessDeps {
  lease: HostLease;
  schedule: CheckSchedule;
  ipam: Pick<Ipam, 'reclaimLost'>;
  segments: Pick<Segments, 'forgetHosts'>;
  tunnel?: { forgetHosts(hosts: string[]): Promise<void> };
  hostAddrs: Pick<HostAddresses, 'forget' | 'reload'>;
  log: Logger;
  afterMs: number;
}

/** One tick's work (tick counts from 1); resolves to whether the checks ran. Never rejects: failures are logged. */
export async function livenessTick(d: LivenessDeps, tick: number): Promise<boolean> {
  const kind = d.schedule.at(tick);
  if (!kind) return false;
  try {
    const live = await d.lease.liveHosts();
    const reclaimed = await d.ipam.reclaimLost({ live, now: Date.now(), afterMs: d.afterMs });
    await d.segments.forgetHosts(reclaimed);
    await d.tunnel?.forgetHosts(reclaimed);
    await d.hostAddrs.forget(reclaimed);
    // Other hosts' addresses, read again now and then besides their watch.
    if (kind === 'full' || reclaimed.length) await d.hostAddrs.reload();
  } catch (err) {
    d.schedule.retry();
    d.log.warn('liveness check failed', { error: describe(err) });
  }
  return true;
}

/** Runs the ticks every `intervalMs` until stopped. */
export function startLiveness(d: Omit<LivenessDeps, 'schedule'> & { live: LiveHosts }, intervalMs: number): { stop(): void } {
  const schedule = new CheckSchedule({ live: d.live, afterMs: d.afterMs, intervalMs, phase: Math.floor(Math.random() * 1_000_000) });
  const deps: LivenessDeps = { ...d, schedule };
  let tick = 0;
  const timer = setInterval(() => void livenessTick(deps, ++tick), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
