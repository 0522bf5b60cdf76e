// One consistent read of a cluster for the invariant checks: what each dockerd, each knit and each kernel holds.
import type { FaultCluster } from './fault-cluster.js';
import { type AddressRec, addressesOf, type BlockRec, blocksOf, endpointsOf, etcdRecords, hostIdOf, ledgerOf, localRecords, networksOf, poolsOf, type EndpointRec, type NetworkRec, type PoolRec } from './records.js';

/** An endpoint as dockerd reports it (docker network inspect). */
export interface DockerEndpoint {
  container: string;
  network: string;
  networkId: string;
  endpointId: string;
  ip: string;
  mac: string;
}

export interface DockerNetwork {
  name: string;
  id: string;
  subnet: string;
  gateway: string;
}

export interface Link {
  name: string;
  kind?: string;
}

export interface HostView {
  index: number;
  name: string;
  hostId: string;
  underlayIp?: string;
  dockerNetworks: DockerNetwork[];
  docker: DockerEndpoint[];
  networks: NetworkRec[];
  endpoints: EndpointRec[];
  links: Link[];
  /** `mac dst` of every forwarding entry with a remote destination, per device. */
  fdb: Map<string, Set<string>>;
  /** `ip mac` of every permanent neighbour entry, per device. */
  neigh: Map<string, Set<string>>;
  iptables: string;
}

export interface ClusterView {
  hosts: HostView[];
  /** Address records, and each host's ledger of addresses handed out from its blocks. */
  addresses: AddressRec[];
  pools: PoolRec[];
  blocks: BlockRec[];
  at: number;
}

interface InspectedNetwork {
  Name: string;
  Id: string;
  IPAM: { Config: Array<{ Subnet?: string; Gateway?: string }> | null };
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string }> | null;
}

async function dockerSide(c: FaultCluster, i: number): Promise<{ networks: DockerNetwork[]; endpoints: DockerEndpoint[] }> {
  const ids = (await c.docker(i, ['network', 'ls', '-q', '--filter', 'driver=knit'])).stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return { networks: [], endpoints: [] };
  const inspected = JSON.parse((await c.docker(i, ['network', 'inspect', ...ids])).stdout) as InspectedNetwork[];
  const networks = inspected.map((n) => ({ name: n.Name, id: n.Id, subnet: n.IPAM.Config?.[0]?.Subnet ?? '', gateway: n.IPAM.Config?.[0]?.Gateway ?? '' }));
  const endpoints = inspected.flatMap((n) =>
    Object.values(n.Containers ?? {}).map((e) => ({ container: e.Name, network: n.Name, networkId: n.Id, endpointId: e.EndpointID, ip: e.IPv4Address.split('/')[0], mac: e.MacAddress })),
  );
  return { networks, endpoints };
}

async function kernelSide(c: FaultCluster, i: number): Promise<Pick<HostView, 'links' | 'fdb' | 'neigh' | 'iptables'>> {
  const h = c.hosts[i];
  const links = JSON.parse((await h.exec(['ip', '-j', '-d', 'link', 'show'])).stdout) as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>;
  const fdbRows = JSON.parse((await h.exec(['bridge', '-j', 'fdb', 'show'])).stdout || '[]') as Array<{ mac: string; ifname: string; dst?: string }>;
  const neighRows = JSON.parse((await h.exec(['ip', '-j', 'neigh', 'show', 'nud', 'permanent'])).stdout || '[]') as Array<{ dst: string; dev: string; lladdr?: string }>;
  const fdb = new Map<string, Set<string>>();
  for (const f of fdbRows.filter((r) => r.dst)) fdb.set(f.ifname, (fdb.get(f.ifname) ?? new Set()).add(`${f.mac} ${f.dst}`));
  const neigh = new Map<string, Set<string>>();
  for (const n of neighRows.filter((r) => r.lladdr)) neigh.set(n.dev, (neigh.get(n.dev) ?? new Set()).add(`${n.dst} ${n.lladdr}`));
  return {
    links: links.map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind })),
    fdb,
    neigh,
    iptables: (await h.exec(['iptables-save'])).stdout,
  };
}

/** Reads every host (dockerd, knit's records, kernel) and the IPAM records (etcd, or each host's own store). */
export async function gather(c: FaultCluster): Promise<ClusterView> {
  const hosts: HostView[] = [];
  const addresses: AddressRec[] = [];
  const pools: PoolRec[] = [];
  const blocks: BlockRec[] = [];
  for (let i = 0; i < c.hosts.length; i++) {
    const recs = await localRecords(c.knits[i].stateDir);
    const docker = await dockerSide(c, i);
    hosts.push({
      index: i,
      name: c.hosts[i].name,
      hostId: hostIdOf(recs),
      underlayIp: c.hosts[i].underlayIp,
      dockerNetworks: docker.networks,
      docker: docker.endpoints,
      networks: networksOf(recs),
      endpoints: endpointsOf(recs),
      ...(await kernelSide(c, i)),
    });
    addresses.push(...ledgerOf(recs, hostIdOf(recs)));
    if (!c.etcd) {
      addresses.push(...addressesOf(recs));
      pools.push(...poolsOf(recs));
    }
  }
  if (c.etcd) {
    const recs = await etcdRecords(c.etcd);
    addresses.push(...addressesOf(recs));
    pools.push(...poolsOf(recs));
    blocks.push(...blocksOf(recs));
  }
  return { hosts, addresses, pools, blocks, at: Date.now() };
}
