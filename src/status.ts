// The status document (`knit status --json`, POST /knit.Status): what this host serves, how its store and lease
// are, which other hosts share its overlays, and what its calls cost. `knit status` prints it for a person.
import { describe } from './errors.js';
import type { EndpointRecord, NetworkRecord, PortMapping } from './network/records.js';
import { K, parseEndpointKey } from './network/overlay/keys.js';
import type { Store } from './store/types.js';
import type { MetricsStatus } from './metrics/start.js';
import { withTimeout } from './util/timeout.js';
import type { TunnelStatus } from './network/overlay/tunnel.js';

/** A status call must answer even when the cluster store does not: past this, the store counts as unreachable. */
const STORE_PROBE_MS = 2_000;

export interface StoreStatus {
  kind: string;
  reachable: boolean;
  error?: string;
  /** Cluster stores: whether this host's lease (its `hosts/<id>` key) is alive in the store. */
  lease?: 'held' | 'lost' | 'unknown';
}

export interface NetworkStatus {
  id: string;
  mode: string;
  bridge: string;
  subnets: string[];
  vni?: number;
  endpoints: number;
}

export interface EndpointStatus {
  id: string;
  network: string;
  address?: string;
  addressV6?: string;
  ports: PortMapping[];
}

export interface PeerStatus {
  host: string;
  vtep?: string;
  endpoints: number;
}

export interface StatusDocument {
  host: string;
  store: StoreStatus;
  networks: NetworkStatus[];
  endpoints: EndpointStatus[];
  /** Other hosts alive in the cluster store (absent with the embedded store). */
  peers?: PeerStatus[];
  calls: Record<string, { count: number; errors: number; p50: number; p99: number; max: number }>;
  /** Encrypted overlays' tunnel (absent without KNIT_ADVERTISE). */
  wireguard?: TunnelStatus;
  spawned: Record<string, number>;
  rssBytes: number;
  /** Absent when KNIT_METRICS is unset (metrics off). */
  metrics?: MetricsStatus;
}

export interface StatusSources {
  hostId: string;
  /** The store pools and overlays live in; the embedded one when it is the same object as `local`. */
  cluster: Store;
  local: Store;
  networks(): Promise<NetworkRecord[]>;
  endpoints(): Promise<EndpointRecord[]>;
  calls(): StatusDocument['calls'];
  spawned(): Record<string, number>;
}

const short = (id: string): string => id.slice(0, 12);

/** Network and endpoint records as the status shows them (pure). */
export function localPart(nets: NetworkRecord[], eps: EndpointRecord[]): Pick<StatusDocument, 'networks' | 'endpoints'> {
  return {
    networks: nets.map((n) => ({
      id: short(n.id),
      mode: n.mode,
      bridge: n.bridge,
      subnets: [...n.ipv4, ...n.ipv6].map((s) => s.subnet),
      ...(n.vni !== undefined ? { vni: n.vni } : {}),
      endpoints: eps.filter((e) => e.networkId === n.id).length,
    })),
    endpoints: eps.map((e) => ({ id: short(e.id), network: short(e.networkId), address: e.address, addressV6: e.addressV6, ports: e.ports })),
  };
}

/** Live hosts (their lease keys) and the overlay endpoints each publishes, this host left out (pure). */
export function peersOf(hostId: string, hosts: Array<{ key: string; value: string }>, published: Array<{ key: string }>): PeerStatus[] {
  const counts = new Map<string, number>();
  for (const { key } of published) {
    // Anchors (K.anchor) are not endpoints.
    const host = parseEndpointKey(key)?.host;
    if (host !== undefined) counts.set(host, (counts.get(host) ?? 0) + 1);
  }
  return hosts
    .map((h) => {
      const host = h.key.slice(K.hosts.length);
      let vtep: string | undefined;
      try {
        vtep = (JSON.parse(h.value) as { vtep?: string }).vtep;
      } catch {
        vtep = undefined;
      }
      return { host, ...(vtep ? { vtep } : {}), endpoints: counts.get(host) ?? 0 };
    })
    .filter((p) => p.host !== hostId);
}

async function clusterPart(s: StatusSources): Promise<Pick<StatusDocument, 'store' | 'peers'>> {
  if (s.cluster === s.local) return { store: { kind: s.local.kind, reachable: true } };
  try {
    const [hosts, published] = await withTimeout(
      Promise.all([s.cluster.list(K.hosts), s.cluster.list(K.endpoints)]), STORE_PROBE_MS, `the ${s.cluster.kind} store`);
    const lease = hosts.some((h) => h.key === K.host(s.hostId)) ? 'held' : 'lost';
    return { store: { kind: s.cluster.kind, reachable: true, lease }, peers: peersOf(s.hostId, hosts, published) };
  } catch (err) {
    return { store: { kind: s.cluster.kind, reachable: false, error: describe(err), lease: 'unknown' } };
  }
}

export async function statusDocument(s: StatusSources): Promise<StatusDocument> {
  const [nets, eps, cluster] = await Promise.all([s.networks(), s.endpoints(), clusterPart(s)]);
  return {
    host: s.hostId,
    store: cluster.store,
    ...localPart(nets, eps),
    ...(cluster.peers ? { peers: cluster.peers } : {}),
    calls: s.calls(),
    spawned: s.spawned(),
    rssBytes: process.memoryUsage().rss,
  };
}
