// The overlay control plane: segments defined once cluster-wide, endpoints published under this
// host's lease, and every other host's endpoints programmed into the local VXLAN devices.
import { vxlanName } from '../datapath/names.js';
import { describe, unavailable } from '../errors.js';
import { parseCidr, subnetKey } from '../addr/cidr.js';
import type { Logger } from '../log.js';
import { decode, encode } from '../store/records.js';
import type { Lease, Store, Watch, WatchEvent, Write } from '../store/types.js';
import { chooseVni, desiredEntries, diffEntries, type Entries, mergeSegment, type RemoteEndpoint, type SegmentRecord } from './overlay-plan.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { Datapath } from './service.js';

export interface OverlayDeps {
  cluster: Store;
  hostId: string;
  /** This host's underlay address (KNIT_ADVERTISE); without it the host only keeps its liveness key. */
  vtep?: string;
  kernel: Datapath;
  log: Logger;
  leaseTtlSeconds: number;
}

/** Store keys of the control plane; `hosts/<id>` lives exactly as long as that host's lease. */
export const K = {
  segments: 'overlay/segments/',
  segment: (sk: string) => `overlay/segments/${sk}`,
  vnis: 'overlay/vnis/',
  vni: (v: number) => `overlay/vnis/${v}`,
  endpoints: 'overlay/endpoints/',
  endpoint: (sk: string, host: string, id: string) => `overlay/endpoints/${sk}/${host}/${id}`,
  hosts: 'hosts/',
  host: (id: string) => `hosts/${id}`,
};

export const segmentKey = (net: { ipv4: Array<{ subnet: string }> }): string => subnetKey(parseCidr(net.ipv4[0].subnet));

type Published = Omit<RemoteEndpoint, 'id' | 'host'>;

const SEGMENT_ATTEMPTS = 20;

export class Overlay {
  private lease?: Lease;
  private watch?: Watch;
  private readonly local = new Map<string, string>(); // segment -> VXLAN device
  private readonly remotes = new Map<string, Map<string, RemoteEndpoint>>(); // segment -> host/id -> endpoint
  private readonly programmed = new Map<string, Entries>(); // device -> entries in the kernel
  private readonly mine = new Map<string, string>(); // store key -> value of our own endpoints
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private reconnecting = false;

  constructor(private readonly deps: OverlayDeps) {}

  async start(nets: NetworkRecord[], eps: EndpointRecord[]): Promise<void> {
    for (const net of nets.filter((n) => n.mode === 'overlay' && n.vni)) {
      this.local.set(segmentKey(net), vxlanName(net.vni!));
      for (const ep of eps.filter((e) => e.networkId === net.id)) this.mine.set(K.endpoint(segmentKey(net), this.deps.hostId, ep.id), this.value(ep));
    }
    await this.connect().catch((err) => {
      this.deps.log.error('cluster store unreachable at start; overlay entries will follow when it returns', { error: describe(err) });
      this.reconnect();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.close();
    await this.lease?.revoke().catch(() => undefined);
  }

  /** Joins (or defines) the segment of an overlay network, as one of its hosts; returns its VNI. */
  async defineSegment(spec: { ipv4: Array<{ subnet: string; gateway?: string }>; vni?: number }, range?: string): Promise<number> {
    const sk = segmentKey(spec);
    const me = this.deps.hostId;
    const wanted = { subnet: spec.ipv4[0].subnet, vni: spec.vni, range, gateway: spec.ipv4[0].gateway };
    for (let attempt = 0; attempt < SEGMENT_ATTEMPTS; attempt++) {
      const entry = await this.deps.cluster.get(K.segment(sk));
      const existing = mergeSegment(entry ? decode<SegmentRecord>(entry) : undefined, wanted);
      if (entry && existing) {
        // A record written before segments listed their hosts (no `hosts`) is kept as it is, forever.
        if (!existing.hosts || existing.hosts.includes(me)) return existing.vni;
        const joined: SegmentRecord = { ...existing, hosts: [...existing.hosts, me] };
        if ((await this.deps.cluster.commit([{ key: entry.key, value: encode(joined), expect: entry.revision }])) !== null) return existing.vni;
        continue;
      }
      const taken = new Set((await this.deps.cluster.list(K.vnis)).map((e) => Number(e.key.slice(K.vnis.length))));
      const vni = spec.vni ?? chooseVni(taken);
      const record: SegmentRecord = { subnet: wanted.subnet, vni, ...(range ? { range } : {}), ...(wanted.gateway ? { gateway: wanted.gateway } : {}), hosts: [me] };
      const ok = await this.deps.cluster.commit([
        { key: K.segment(sk), value: encode(record), expect: 0 },
        { key: K.vni(vni), value: sk, expect: 0 },
      ]);
      if (ok !== null) {
        this.deps.log.info('overlay segment defined', { subnet: record.subnet, vni });
        return vni;
      }
      if (spec.vni !== undefined && (await this.deps.cluster.get(K.vni(spec.vni)))?.value !== sk) {
        throw unavailable(`VXLAN ID ${spec.vni} is already used by another overlay; choose another knit.vni`);
      }
    }
    throw unavailable('the cluster store is too busy to define the overlay segment; try again');
  }

  /**
   * `host` no longer has a network on the segment of `subnet`. The last host to leave removes the
   * segment and frees its VNI, so the overlay can be defined again with other settings.
   */
  async leaveSegment(subnet: string, host = this.deps.hostId): Promise<void> {
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
    const segments = await this.segments();
    for (const host of hosts) for (const r of segments.filter((x) => x.hosts?.includes(host))) await this.leaveSegment(r.subnet, host);
  }

  /**
   * This host's memberships made to match its overlay networks `local`: it leaves the segments it has no
   * network for and is listed again on those it has (the others may have reclaimed it as lost during a
   * long outage). Returns how many memberships changed.
   */
  async reconcileSegments(local: Array<{ ipv4: Array<{ subnet: string; gateway?: string }>; vni?: number }>): Promise<number> {
    const me = this.deps.hostId;
    const segments = new Map((await this.segments()).map((r) => [segmentKey({ ipv4: [r] }), r]));
    const wanted = new Map(local.map((n) => [segmentKey(n), n]));
    let changed = 0;
    for (const [sk, r] of segments) {
      if (r.hosts?.includes(me) && !wanted.has(sk)) (await this.leaveSegment(r.subnet), changed++);
    }
    for (const [sk, net] of wanted) {
      const r = segments.get(sk);
      if (!r || (r.hosts && !r.hosts.includes(me))) (await this.defineSegment(net), changed++);
    }
    return changed;
  }

  private async segments(): Promise<SegmentRecord[]> {
    return (await this.deps.cluster.list(K.segments)).map((e) => decode<SegmentRecord>(e));
  }

  /** A local overlay network now exists: program what the other hosts publish for its segment. */
  attach(net: NetworkRecord): Promise<void> {
    this.local.set(segmentKey(net), vxlanName(net.vni!));
    return this.reprogram(segmentKey(net));
  }

  detach(net: NetworkRecord): void {
    const dev = vxlanName(net.vni!);
    this.local.delete(segmentKey(net));
    this.programmed.delete(dev);
  }

  async publish(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    if (!this.lease) throw unavailable(`the cluster store (${this.deps.cluster.kind}) is unreachable; overlay endpoints cannot be published`);
    if (!this.deps.vtep) throw unavailable('overlay endpoints need KNIT_ADVERTISE');
    const key = K.endpoint(segmentKey(net), this.deps.hostId, ep.id);
    const value = this.value(ep);
    await this.deps.cluster.commit([{ key, value, lease: this.lease }]);
    this.mine.set(key, value);
  }

  async unpublish(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    const key = K.endpoint(segmentKey(net), this.deps.hostId, ep.id);
    this.mine.delete(key);
    await this.deps.cluster.commit([{ key, value: null }]);
  }

  private value(ep: EndpointRecord): string {
    const p: Published = { vtep: this.deps.vtep ?? '', mac: ep.mac };
    if (ep.address) p.ip = ep.address.split('/')[0];
    if (ep.addressV6) p.ipv6 = ep.addressV6.split('/')[0];
    return encode(p);
  }

  /** Lease, host key and our endpoints (again, after an outage), then the others' endpoints and a watch. */
  private async connect(): Promise<void> {
    const lease = await this.deps.cluster.grantLease(this.deps.leaseTtlSeconds);
    const writes: Write[] = [{ key: K.host(this.deps.hostId), value: encode({ vtep: this.deps.vtep, since: new Date().toISOString() }), lease }];
    for (const [key, value] of this.mine) writes.push({ key, value, lease });
    let revision = 0;
    for (let i = 0; i < writes.length; i += 32) revision = (await this.deps.cluster.commit(writes.slice(i, i + 32))) ?? revision;
    this.lease = lease;
    lease.onLost(() => {
      if (this.lease === lease) this.lease = undefined;
      this.deps.log.warn('cluster lease lost; re-publishing when the store answers', { store: this.deps.cluster.kind });
      this.reconnect();
    });
    await this.resync();
    this.watch?.close();
    this.watch = this.deps.cluster.watch(K.endpoints, (ev) => this.onEvent(ev), revision);
    this.deps.log.info('overlay control plane connected', { store: this.deps.cluster.kind, vtep: this.deps.vtep, published: this.mine.size });
  }

  private reconnect(): void {
    if (this.reconnecting || this.stopped) return;
    this.reconnecting = true;
    const attempt = (): void => {
      if (this.stopped) return;
      this.connect().then(
        () => (this.reconnecting = false),
        () => setTimeout(attempt, 2_000).unref(),
      );
    };
    setTimeout(attempt, 1_000).unref();
  }

  /** Rebuilds the view of every segment from a full listing, drops our own stale keys, and reprograms. */
  async resync(): Promise<void> {
    const entries = await this.deps.cluster.list(K.endpoints);
    this.remotes.clear();
    const stale: Write[] = [];
    for (const e of entries) {
      const ep = this.parse(e.key, e.value);
      if (!ep) continue;
      if (ep.host === this.deps.hostId) {
        if (!this.mine.has(e.key)) stale.push({ key: e.key, value: null });
      } else this.remember(ep.segment, ep.remote);
    }
    if (stale.length) await this.deps.cluster.commit(stale.slice(0, 64));
    await Promise.all([...this.local.keys()].map((sk) => this.reprogram(sk)));
  }

  private onEvent(ev: WatchEvent): void {
    const parsed = this.parse(ev.key, ev.type === 'put' ? ev.value : undefined);
    if (!parsed || parsed.remote.host === this.deps.hostId) return;
    if (ev.type === 'put') this.remember(parsed.segment, parsed.remote);
    else this.remotes.get(parsed.segment)?.delete(`${parsed.remote.host}/${parsed.remote.id}`);
    void this.reprogram(parsed.segment);
  }

  private remember(segment: string, r: RemoteEndpoint): void {
    let m = this.remotes.get(segment);
    if (!m) this.remotes.set(segment, (m = new Map()));
    m.set(`${r.host}/${r.id}`, r);
  }

  private parse(key: string, value: string | undefined): { segment: string; host: string; remote: RemoteEndpoint } | undefined {
    const [segment, host, id] = key.slice(K.endpoints.length).split('/');
    if (!segment || !host || !id) return undefined;
    if (value === undefined) return { segment, host, remote: { id, host, vtep: '', mac: '' } };
    try {
      const p = decode<Published>({ key, value, revision: 0 });
      return { segment, host, remote: { id, host, vtep: p.vtep, mac: p.mac, ip: p.ip, ipv6: p.ipv6 } };
    } catch {
      return undefined;
    }
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
        if (!add.length && !del.length) {
          this.programmed.set(dev, desired);
          return;
        }
        if (del.length) await this.deps.kernel.remove(del);
        if (add.length) await this.deps.kernel.apply(add);
        this.programmed.set(dev, desired);
        this.deps.log.info('overlay entries programmed', { device: dev, added: add.length, removed: del.length });
      } catch (err) {
        this.programmed.delete(dev);
        this.deps.log.error('overlay entries failed', { device: dev, error: describe(err) });
      }
    });
    return this.queue;
  }

  /** Hosts whose lease is alive now (their liveness key exists). */
  async liveHosts(): Promise<Set<string>> {
    return new Set((await this.deps.cluster.list(K.hosts)).map((e) => e.key.slice(K.hosts.length)));
  }

  /** For logs and status: how many remote endpoints each local segment has. */
  summary(): Record<string, number> {
    return Object.fromEntries([...this.local.keys()].map((sk) => [sk, this.remotes.get(sk)?.size ?? 0]));
  }
}

