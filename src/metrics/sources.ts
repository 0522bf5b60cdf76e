// What other parts of knit already count or hold, read into gauges and counters at each scrape: processes
// spawned, this host's lease, the overlay's peers and entries per segment, IPAM pools, the resolver's counters.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ResolverStats } from '../dns/names.js';
import type { IpamUsage } from '../ipam/usage.js';
import type { LeaseStats } from '../network/overlay/lease.js';
import type { SegmentStats } from '../network/overlay/peers.js';
import { withTimeout } from '../util/timeout.js';

/** Where each figure comes from; absent parts (no lease without a cluster store, no overlay without KNIT_ADVERTISE) show nothing. */
export interface MetricSources {
  spawned(): Record<string, number>;
  lease?(): LeaseStats;
  segments?(): SegmentStats[];
  /** Reads the store: bounded by IPAM_READ_MS. */
  ipam(): Promise<IpamUsage>;
  /** undefined while the resolver is not running. */
  dns(): ResolverStats | undefined;
}

/** A scrape must answer even when the cluster store does not: past this, the IPAM figures are left out. */
const IPAM_READ_MS = 2_000;
const DNS_OUTCOMES = ['answered', 'forwarded', 'refused', 'dropped', 'servfail', 'formerr', 'notimp'] as const;

const IPAM_NAMES = {
  pools: 'knit_ipam_pools',
  held: 'knit_ipam_pools_held',
  inUse: 'knit_ipam_addresses_in_use',
  mine: 'knit_ipam_addresses_held',
  quarantined: 'knit_ipam_addresses_quarantined',
  lostHosts: 'knit_ipam_quarantined_hosts',
  blocks: 'knit_ipam_blocks',
  blocksMine: 'knit_ipam_blocks_held',
  blocksQuarantined: 'knit_ipam_blocks_quarantined',
};

type Labels = Record<string, string>;

/** A counter that mirrors totals kept elsewhere: each scrape sets it to them (they only grow). */
function mirror(c: Counter, values: Array<[Labels, number]>): void {
  c.reset();
  for (const [labels, v] of values) c.inc(labels, v);
}

/** A gauge whose label sets follow the source: ones that went away (a segment, a pool) disappear. */
function replace(g: Gauge, values: Array<[Labels, number]>): void {
  g.reset();
  for (const [labels, v] of values) g.set(labels, v);
}

export class SourceMetrics {
  private readonly counter: (name: string, help: string, labelNames?: string[]) => Counter;
  private readonly gauge: (name: string, help: string, labelNames?: string[]) => Gauge;

  constructor(private readonly registry: Registry, private readonly sources: MetricSources, private readonly onError: (source: string, err: unknown) => void) {
    this.counter = (name, help, labelNames = []) => new Counter({ name, help, labelNames, registers: [registry] });
    this.gauge = (name, help, labelNames = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  }

  private readonly spawned = this.lazy(() => this.counter('knit_processes_spawned_total', 'Processes knit started, by tool (ip, bridge, iptables-restore, ...).', ['tool']));
  private readonly lease = this.lazy(() => ({
    held: this.gauge('knit_lease_held', '1 while this host holds its lease in the cluster store, else 0.'),
    records: this.gauge('knit_lease_records', 'Records this host publishes under its lease (liveness key not counted).'),
    grants: this.counter('knit_lease_grants_total', 'Leases granted to this host (the first, then one after each loss or outage).'),
    losses: this.counter('knit_lease_losses_total', 'Leases this host lost (expired or revoked in the store).'),
  }));
  private readonly overlay = this.lazy(() => ({
    peers: this.gauge('knit_overlay_peers', 'Other hosts with endpoints on this host\'s overlay segment.', ['segment']),
    endpoints: this.gauge('knit_overlay_remote_endpoints', 'Other hosts\' endpoints on the segment.', ['segment']),
    fdb: this.gauge('knit_overlay_fdb_entries', 'Forwarding (FDB) entries knit programmed into the segment\'s VXLAN device.', ['segment']),
    neigh: this.gauge('knit_overlay_neighbour_entries', 'Neighbour entries knit programmed into the segment\'s VXLAN device.', ['segment']),
  }));
  private readonly ipamGauges = this.lazy(() => ({
    pools: this.gauge(IPAM_NAMES.pools, 'IPAM pools in the store (cluster-wide with a cluster store).'),
    held: this.gauge(IPAM_NAMES.held, 'IPAM pools this host holds.'),
    inUse: this.gauge(IPAM_NAMES.inUse, 'Addresses taken in the pool: every host\'s records in the cluster store (gateways, static addresses, pools too small for blocks) and those this host handed out from its blocks.', ['pool']),
    mine: this.gauge(IPAM_NAMES.mine, 'Addresses of the pool this host holds (records and its blocks\' addresses).', ['pool']),
    quarantined: this.gauge(IPAM_NAMES.quarantined, 'Address records of the pool held by hosts whose lease lapsed: not handed out until they return or are reclaimed.', ['pool']),
    blocks: this.gauge(IPAM_NAMES.blocks, 'Blocks of the pool claimed, by every host.', ['pool']),
    blocksMine: this.gauge(IPAM_NAMES.blocksMine, 'Blocks of the pool this host holds.', ['pool']),
    blocksQuarantined: this.gauge(IPAM_NAMES.blocksQuarantined, 'Blocks of the pool held by hosts whose lease lapsed, with every address in them.', ['pool']),
    lostHosts: this.gauge(IPAM_NAMES.lostHosts, 'Hosts in quarantine (lease lapsed, addresses not yet reclaimed).'),
  }));
  private readonly dnsMetrics = this.lazy(() => ({
    queries: this.counter('knit_dns_queries_total', 'Queries knit\'s resolver received.'),
    outcomes: this.counter('knit_dns_outcomes_total', 'Queries by outcome: answered by knit, forwarded upstream, refused, dropped (rate limit or malformed), servfail (also counts forwards the upstream failed), formerr, notimp.', ['outcome']),
    inflight: this.gauge('knit_dns_forwards_inflight', 'Forwarded queries waiting for an upstream now.'),
    tcp: this.gauge('knit_dns_tcp_connections', 'Open TCP connections to the resolver.'),
  }));
  private readonly sourceErrors = this.lazy(() => this.counter('knit_metrics_source_errors_total', 'Scrapes that left a source\'s figures out because reading it failed, by source.', ['source']));

  /** Reads every source into its metrics; a source that fails is left out of this scrape and counted. */
  async refresh(): Promise<void> {
    const s = this.sources;
    this.sourceErrors();
    mirror(this.spawned(), Object.entries(s.spawned()).map(([tool, n]) => [{ tool }, n]));
    if (s.lease) this.showLease(s.lease());
    if (s.segments) this.showSegments(s.segments());
    this.showDns(s.dns());
    await this.showIpam();
  }

  private showLease(l: LeaseStats): void {
    const m = this.lease();
    m.held.set(l.held ? 1 : 0);
    m.records.set(l.records);
    mirror(m.grants, [[{}, l.grants]]);
    mirror(m.losses, [[{}, l.losses]]);
  }

  private showSegments(list: SegmentStats[]): void {
    const m = this.overlay();
    replace(m.peers, list.map((x) => [{ segment: x.segment }, x.hosts]));
    replace(m.endpoints, list.map((x) => [{ segment: x.segment }, x.endpoints]));
    replace(m.fdb, list.flatMap((x) => (x.fdb === undefined ? [] : [[{ segment: x.segment }, x.fdb]])));
    replace(m.neigh, list.flatMap((x) => (x.neigh === undefined ? [] : [[{ segment: x.segment }, x.neigh]])));
  }

  private showDns(stats: ResolverStats | undefined): void {
    if (!stats) return;
    const m = this.dnsMetrics();
    mirror(m.queries, [[{}, stats.queries]]);
    mirror(m.outcomes, DNS_OUTCOMES.map((outcome) => [{ outcome }, stats[outcome]]));
    m.inflight.set(stats.inflight);
    m.tcp.set(stats.tcpConnections);
  }

  private async showIpam(): Promise<void> {
    const m = this.ipamGauges();
    let usage: IpamUsage;
    try {
      usage = await withTimeout(this.sources.ipam(), IPAM_READ_MS, 'the IPAM records');
    } catch (err) {
      // Left out, not shown as 0: a gauge without labels always has a value, so the families leave the registry.
      for (const name of Object.values(IPAM_NAMES)) this.registry.removeSingleMetric(name);
      this.sourceErrors().inc({ source: 'ipam' });
      return this.onError('ipam', err);
    }
    for (const [key, g] of Object.entries(m)) if (!this.registry.getSingleMetric(IPAM_NAMES[key as keyof typeof m])) this.registry.registerMetric(g);
    m.pools.set(usage.pools.length);
    m.held.set(usage.pools.filter((p) => p.held).length);
    replace(m.inUse, usage.pools.map((p) => [{ pool: p.subnet }, p.inUse]));
    replace(m.mine, usage.pools.map((p) => [{ pool: p.subnet }, p.mine]));
    replace(m.quarantined, usage.pools.map((p) => [{ pool: p.subnet }, p.quarantined]));
    replace(m.blocks, usage.pools.map((p) => [{ pool: p.subnet }, p.blocks]));
    replace(m.blocksMine, usage.pools.map((p) => [{ pool: p.subnet }, p.blocksMine]));
    replace(m.blocksQuarantined, usage.pools.map((p) => [{ pool: p.subnet }, p.blocksQuarantined]));
    m.lostHosts.set(usage.quarantinedHosts);
  }

  /** Made on first use: a knit without a lease, overlay or resolver shows none of their metrics. */
  private lazy<T>(make: () => T): () => T {
    let made: T | undefined;
    return () => (made ??= make());
  }
}
