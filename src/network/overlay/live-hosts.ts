// Which other hosts are alive (their liveness key exists), kept in memory from the cluster store: a listing
// after each (re)connect, then the watch's changes. The host with the lowest live ID leads the liveness checks:
// it alone looks for lost hosts at every tick, so the idle load on the store grows with the hosts, not with
// their square. Leading is a matter of load only: the checks are compare-and-set, so two hosts that both
// believe they lead (a watch running late) are as safe as one.
import type { Entry, WatchEvent } from '../../store/types.js';
import { K } from './keys.js';
import type { HostRecords } from './watch.js';

export class LiveHosts implements HostRecords {
  readonly prefix = K.hosts;
  /**
   * Every host writes its liveness key as it starts: on Consul each host would read every key once per start (N³
   * at a cluster's start). Starts within 2 s are read together; a new host's endpoints are followed that much later.
   */
  readonly settleMs = 2_000;
  private live = new Set<string>();
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly hostId: string) {}

  /** Called after every listing and every change (Peers' watches follow the live hosts on Consul). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The other live hosts, as last heard. */
  hosts(): ReadonlySet<string> {
    return this.live;
  }

  /**
   * The host a liveness key names. This host's own key is its lease's, not a record the watch may drop as
   * stale, and this host is alive to itself: both are left out.
   */
  hostOf(key: string): string | undefined {
    const id = key.startsWith(K.hosts) ? key.slice(K.hosts.length) : '';
    return id && !id.includes('/') && id !== this.hostId ? id : undefined;
  }

  async reset(entries: Entry[]): Promise<void> {
    this.live = new Set(entries.flatMap((e) => this.hostOf(e.key) ?? []));
    this.changed();
  }

  change(event: WatchEvent): void {
    const id = this.hostOf(event.key);
    if (!id) return;
    if (event.type === 'put') this.live.add(id);
    else this.live.delete(id);
    this.changed();
  }

  /** Whether no live host has a lower ID than this one's (so this host leads the liveness checks). */
  leads(): boolean {
    for (const id of this.live) if (id < this.hostId) return false;
    return true;
  }

  /** The other live hosts, as last heard. */
  others(): number {
    return this.live.size;
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
