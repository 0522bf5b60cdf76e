// Overlay segments, defined once cluster-wide: join (or define), leave, forget lost hosts, reconcile memberships.
import { unavailable } from '../../errors.js';
import { parseCidr, subnetKey } from '../../addr/cidr.js';
import type { Logger } from '../../log.js';
import { decode, encode } from '../../store/records.js';
import type { Store, Write } from '../../store/types.js';
import { K, segmentKey } from './keys.js';
import { chooseVni, mergeSegment, type SegmentRecord, type SegmentWanted } from './plan.js';

/** What a segment is defined from: an overlay network's first IPv4 subnet, its knit.vni and its --ip-range. */
export interface SegmentSpec {
  ipv4: Array<{ subnet: string; gateway?: string }>;
  vni?: number;
  /** '' for none; absent when the network's IPAM is not knit's (the range is then unknown and not compared). */
  ipRange?: string;
  encrypted?: boolean;
}

/** Each compare-and-set lost to another host is read again and retried, this many times at most. */
const SEGMENT_ATTEMPTS = 20;

export class Segments {
  constructor(private readonly deps: { cluster: Store; hostId: string; log: Logger }) {}

  /** Joins (or defines) the segment of an overlay network, as one of its hosts; returns its VNI. */
  async define(spec: SegmentSpec): Promise<number> {
    const sk = segmentKey(spec);
    const wanted: SegmentWanted = { subnet: spec.ipv4[0].subnet, vni: spec.vni, range: spec.ipRange, gateway: spec.ipv4[0].gateway, encrypted: spec.encrypted ?? false };
    for (let attempt = 0; attempt < SEGMENT_ATTEMPTS; attempt++) {
      const entry = await this.deps.cluster.get(K.segment(sk));
      const existing = mergeSegment(entry ? decode<SegmentRecord>(entry) : undefined, wanted);
      if (entry && existing) {
        if (await this.join(entry.key, entry.revision, existing)) return existing.vni;
        continue;
      }
      const vni = await this.create(sk, wanted);
      if (vni !== undefined) return vni;
      if (spec.vni !== undefined && (await this.deps.cluster.get(K.vni(spec.vni)))?.value !== sk) {
        throw unavailable(`VXLAN ID ${spec.vni} is already used by another overlay; choose another knit.vni`);
      }
    }
    throw unavailable('the cluster store is too busy to define the overlay segment; try again');
  }

  /** This host listed on an existing segment; false when another host changed the record first. */
  private async join(key: string, revision: number, existing: SegmentRecord): Promise<boolean> {
    const me = this.deps.hostId;
    // A record written before segments listed their hosts (no `hosts`) is kept as it is, forever.
    if (!existing.hosts || existing.hosts.includes(me)) return true;
    const joined: SegmentRecord = { ...existing, hosts: [...existing.hosts, me] };
    return (await this.deps.cluster.commit([{ key, value: encode(joined), expect: revision }])) !== null;
  }

  /** A new segment with the lowest free VNI (or the one asked for); undefined when another host was first. */
  private async create(sk: string, wanted: SegmentWanted): Promise<number | undefined> {
    const taken = new Set((await this.deps.cluster.list(K.vnis)).map((e) => Number(e.key.slice(K.vnis.length))));
    const vni = wanted.vni ?? chooseVni(taken);
    const record: SegmentRecord = { subnet: wanted.subnet, vni, hosts: [this.deps.hostId] };
    if (wanted.range) record.range = wanted.range;
    if (wanted.gateway) record.gateway = wanted.gateway;
    if (wanted.encrypted) record.encrypted = true;
    const ok = await this.deps.cluster.commit([
      { key: K.segment(sk), value: encode(record), expect: 0 },
      { key: K.vni(vni), value: sk, expect: 0 },
    ]);
    if (ok === null) return undefined;
    this.deps.log.info('overlay segment defined', { subnet: record.subnet, vni, range: record.range, encrypted: record.encrypted ?? false });
    return vni;
  }

  /**
   * `host` no longer has a network on the segment of `subnet`. The last host to leave removes the
   * segment and frees its VNI, so the overlay can be defined again with other settings.
   */
  async leave(subnet: string, host = this.deps.hostId): Promise<void> {
    const sk = subnetKey(parseCidr(subnet));
    for (let attempt = 0; attempt < SEGMENT_ATTEMPTS; attempt++) {
      const entry = await this.deps.cluster.get(K.segment(sk));
      const record = entry ? decode<SegmentRecord>(entry) : undefined;
      if (!entry || !record?.hosts?.includes(host)) return;
      const hosts = record.hosts.filter((h) => h !== host);
      const writes: Write[] = hosts.length
        ? [{ key: entry.key, value: encode({ ...record, hosts }), expect: entry.revision }]
        : [{ key: entry.key, value: null, expect: entry.revision }, { key: K.vni(record.vni), value: null }];
      if ((await this.deps.cluster.commit(writes)) !== null) {
        if (!hosts.length) this.deps.log.info('overlay segment removed: no host has it any more', { subnet: record.subnet, vni: record.vni });
        return;
      }
    }
    throw unavailable('the cluster store is too busy to leave the overlay segment; try again');
  }

  /** Lost hosts (their addresses reclaimed) leave every segment they were on. */
  async forgetHosts(hosts: string[]): Promise<void> {
    if (hosts.length === 0) return;
    const segments = await this.list();
    for (const host of hosts) for (const r of segments.filter((x) => x.hosts?.includes(host))) await this.leave(r.subnet, host);
  }

  /**
   * This host's memberships made to match its overlay networks `local`: it leaves the segments it has no
   * network for and is listed again on those it has (the others may have reclaimed it as lost during a
   * long outage). Returns how many memberships changed.
   */
  async reconcile(local: SegmentSpec[]): Promise<number> {
    const me = this.deps.hostId;
    const segments = new Map((await this.list()).map((r) => [segmentKey({ ipv4: [r] }), r]));
    const wanted = new Map(local.map((n) => [segmentKey(n), n]));
    let changed = 0;
    for (const [sk, r] of segments) {
      if (r.hosts?.includes(me) && !wanted.has(sk)) (await this.leave(r.subnet), changed++);
    }
    for (const [sk, net] of wanted) {
      const r = segments.get(sk);
      if (!r || (r.hosts && !r.hosts.includes(me))) (await this.define(net), changed++);
    }
    return changed;
  }

  async list(): Promise<SegmentRecord[]> {
    return (await this.deps.cluster.list(K.segments)).map((e) => decode<SegmentRecord>(e));
  }
}
