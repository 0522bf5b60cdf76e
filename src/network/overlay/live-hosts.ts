// Which other hosts are alive (their liveness key exists), kept in memory from the cluster store: a listing
// after each (re)connect, then the watch's changes. The host with the lowest live ID leads the liveness checks:
// it alone looks for lost hosts at every tick, so the idle load on the store grows with the hosts, not with
// their square. Leading is a matter of load only: the checks are compare-and-set, so two hosts that both
// believe they lead (a watch running late) are as safe as one.
// Each liveness key also lists its host's overlay segments (HostLease), which Peers uses to choose what to watch.
import { decode } from '../../store/records.js';
import type { Entry, WatchEvent } from '../../store/types.js';
import { K } from './keys.js';
import type { HostRecords } from './watch.js';

/** A host's overlay segments, or undefined when its liveness key does not list them (a knit from before). */
export type HostSegments = ReadonlySet<string> | undefined;

export class LiveHosts implements HostRecords {
  readonly prefix = K.hosts;
  private live = new Map<string, HostSegments>();
  private listeners: Array<() => void> = [];

  constructor(private readonly hostId: string) {}

  /** Called after every change to the set of hosts or to their segments. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The other live hosts and their segments, as last heard. */
  hosts(): ReadonlyMap<string, HostSegments> {
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
    this.live = new Map(entries.flatMap((e) => {
      const id = this.hostOf(e.key);
      return id ? [[id, segmentsOf(e)] as const] : [];
    }));
    this.changed();
  }

  change(event: WatchEvent): void {
    const id = this.hostOf(event.key);
    if (!id) return;
    if (event.type === 'put') this.live.set(id, segmentsOf(event));
    else this.live.delete(id);
    this.changed();
  }

  /** Whether no live host has a lower ID than this one's (so this host leads the liveness checks). */
  leads(): boolean {
    for (const id of this.live.keys()) if (id < this.hostId) return false;
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

function segmentsOf(e: { key: string; value: string }): HostSegments {
  try {
    const segments = decode<{ segments?: unknown }>({ ...e, revision: 0 }).segments;
    return Array.isArray(segments) ? new Set(segments.filter((s): s is string => typeof s === 'string')) : undefined;
  } catch {
    return undefined;
  }
}
