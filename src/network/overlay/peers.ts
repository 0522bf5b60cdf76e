// The other hosts' overlay endpoints, programmed into this host's VXLAN devices: one queue, each segment's
// kernel entries made exactly what the store lists.
import { describe } from '../../errors.js';
import type { Logger } from '../../log.js';
import { decode } from '../../store/records.js';
import type { Entry, WatchEvent } from '../../store/types.js';
import type { Datapath } from '../datapath.js';
import { K, parseAnchorKey, parseEndpointKey, type PublishedEndpoint } from './keys.js';
import type { SegmentMembers } from './members.js';
import { desiredEntries, diffEntries, type Entries, type RemoteEndpoint } from './plan.js';
import type { HostRecords } from './watch.js';

/** One local segment as metrics show it: the other hosts and endpoints on it, and the entries programmed. */
export interface SegmentStats {
  segment: string;
  device: string;
  hosts: number;
  endpoints: number;
  /** Absent while knit does not know what the device holds (before the first programming, after a failure). */
  fdb?: number;
  neigh?: number;
}

export class Peers implements HostRecords {
  readonly prefix = K.endpoints;
  private readonly local = new Map<string, string>(); // segment -> VXLAN device
  private readonly remotes = new Map<string, Map<string, RemoteEndpoint>>(); // segment -> host/id -> endpoint
  private readonly programmed = new Map<string, Entries>(); // device -> entries in the kernel
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: { kernel: Datapath; log: Logger; live?: { hosts(): ReadonlySet<string> }; members?: SegmentMembers }) {}

  /** The host of an endpoint record or of an anchor (so that this host's stale anchors are deleted too). */
  hostOf(key: string): string | undefined {
    return (parseEndpointKey(key) ?? parseAnchorKey(key))?.host;
  }

  /**
   * The records of each other live host on each local segment its record lists it on (every live host for a
   * segment whose record lists none).
   */
  partitions(): string[] {
    const out: string[] = [];
    for (const segment of this.local.keys()) {
      const members = this.deps.members?.of(segment);
      for (const host of this.deps.live?.hosts() ?? []) if (!members || members.has(host)) out.push(K.anchor(segment, host));
    }
    return out;
  }

  forget(partition: string): void {
    const p = parseAnchorKey(partition);
    const remotes = p && this.remotes.get(p.segment);
    if (!p || !remotes) return;
    let gone = 0;
    for (const [key, r] of remotes) if (r.host === p.host && remotes.delete(key)) gone++;
    if (gone) void this.reprogram(p.segment);
  }

  /** A local VXLAN device for `segment` (known at start, or just made): the others' endpoints go into it. */
  attach(segment: string, device: string): Promise<void> {
    this.local.set(segment, device);
    this.deps.members?.follow(segment);
    return this.reprogram(segment);
  }

  /** Known at start: programmed at the first reset, with everything else. */
  adopt(segment: string, device: string): void {
    this.local.set(segment, device);
    this.deps.members?.follow(segment);
  }

  detach(segment: string, device: string): void {
    this.local.delete(segment);
    this.deps.members?.unfollow(segment);
    this.programmed.delete(device);
  }

  stats(): SegmentStats[] {
    return [...this.local].map(([segment, device]) => {
      const remotes = [...(this.remotes.get(segment)?.values() ?? [])];
      const programmed = this.programmed.get(device);
      return {
        segment, device, hosts: new Set(remotes.map((r) => r.host)).size, endpoints: remotes.length,
        ...(programmed ? { fdb: programmed.fdb.size, neigh: programmed.neigh.size } : {}),
      };
    });
  }

  async reset(entries: Entry[]): Promise<void> {
    this.remotes.clear();
    for (const e of entries) {
      const r = parseRemote(e.key, e.value);
      if (r) this.remember(r.segment, r.remote);
    }
    await Promise.all([...this.local.keys()].map((sk) => this.reprogram(sk)));
  }

  change(ev: WatchEvent): void {
    const r = parseRemote(ev.key, ev.type === 'put' ? ev.value : undefined);
    if (!r) return;
    if (ev.type === 'put') this.remember(r.segment, r.remote);
    else this.remotes.get(r.segment)?.delete(`${r.remote.host}/${r.remote.id}`);
    void this.reprogram(r.segment);
  }

  private remember(segment: string, r: RemoteEndpoint): void {
    let m = this.remotes.get(segment);
    if (!m) this.remotes.set(segment, (m = new Map()));
    m.set(`${r.host}/${r.id}`, r);
  }

  /** Serialised: the kernel's entries for one segment become exactly what the store lists. */
  private reprogram(segment: string): Promise<void> {
    this.queue = this.queue.then(async () => {
      const dev = this.local.get(segment);
      if (!dev) return;
      const desired = desiredEntries([...(this.remotes.get(segment)?.values() ?? [])]);
      try {
        // What knit programmed is remembered only while it runs: after a restart or a failure, ask the kernel, so that
        // entries of endpoints that went away meanwhile are removed too.
        const current = this.programmed.get(dev) ?? (await this.deps.kernel.vxlanEntries(dev));
        const { add, del } = diffEntries(dev, current, desired);
        if (del.length) await this.deps.kernel.remove(del);
        if (add.length) await this.deps.kernel.apply(add);
        this.programmed.set(dev, desired);
        if (add.length || del.length) this.deps.log.info('overlay entries programmed', { device: dev, added: add.length, removed: del.length });
      } catch (err) {
        this.programmed.delete(dev);
        this.deps.log.error('overlay entries failed', { device: dev, error: describe(err) });
      }
    });
    return this.queue;
  }
}

/** An endpoint record as a remote endpoint (a deletion carries no value); undefined for a malformed one. */
export function parseRemote(key: string, value: string | undefined): { segment: string; remote: RemoteEndpoint } | undefined {
  const k = parseEndpointKey(key);
  if (!k) return undefined;
  const { segment, host, id } = k;
  if (value === undefined) return { segment, remote: { id, host, vtep: '', mac: '' } };
  try {
    const p = decode<PublishedEndpoint>({ key, value, revision: 0 });
    return { segment, remote: { id, host, vtep: p.vtep, mac: p.mac, ip: p.ip, ipv6: p.ipv6 } };
  } catch {
    return undefined;
  }
}
