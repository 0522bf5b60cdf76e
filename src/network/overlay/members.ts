// Which hosts have a network on each local segment, as its segment record lists them (`hosts`), kept current by a
// watch on that one record: where watches re-read their prefix (Consul), Peers watches the endpoints of those hosts
// only. One key per segment, so a network made or removed anywhere costs only the hosts that have the segment a
// read of that record.
import { decode } from '../../store/records.js';
import type { Store, Watch, WatchEvent } from '../../store/types.js';
import { K } from './keys.js';
import type { SegmentRecord } from './plan.js';

/** The hosts of a segment; undefined when its record lists none (written before records listed their hosts). */
export type Members = ReadonlySet<string> | undefined;

const NONE: ReadonlySet<string> = new Set();

export class SegmentMembers {
  private readonly watches = new Map<string, Watch>();
  private readonly members = new Map<string, Members>();

  constructor(private readonly deps: { cluster: Store; onChange: () => void }) {}

  /** Follows the segment's record: from revision 0, so the first answer reports it as it is. */
  follow(segment: string): void {
    if (this.watches.has(segment)) return;
    this.members.set(segment, NONE);
    this.watches.set(segment, this.deps.cluster.watch(K.segment(segment), (ev) => this.apply(segment, ev), 0));
  }

  unfollow(segment: string): void {
    this.watches.get(segment)?.close();
    this.watches.delete(segment);
    this.members.delete(segment);
  }

  /** Known hosts of a followed segment (none until its record is read, or once it is gone). */
  of(segment: string): Members {
    return this.members.has(segment) ? this.members.get(segment) : NONE;
  }

  private apply(segment: string, ev: WatchEvent): void {
    // The watch is on a prefix: a longer key that starts with this one is another segment's.
    if (ev.key !== K.segment(segment) || !this.watches.has(segment)) return;
    this.members.set(segment, ev.type === 'put' ? hostsOf(ev) : NONE);
    this.deps.onChange();
  }
}

function hostsOf(e: { key: string; value: string }): Members {
  try {
    const hosts = decode<SegmentRecord>({ ...e, revision: 0 }).hosts;
    return Array.isArray(hosts) ? new Set(hosts.filter((h): h is string => typeof h === 'string')) : undefined;
  } catch {
    return NONE;
  }
}
