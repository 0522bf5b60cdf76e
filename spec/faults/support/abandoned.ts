// What a crash inside CreateEndpoint leaves behind, made on purpose: knit saved the endpoint, dockerd never saw the
// reply (its retry arrives with an empty body and fails, docs/protocol.md §1), released the address and never calls again.
import { dockerId, post } from '../../support/client.js';
import type { FaultCluster } from './fault-cluster.js';
import type { ClusterView } from './view.js';
import { localRecords } from './records.js';

export interface Abandoned {
  host: number;
  endpointId: string;
  address: string;
  subnet: string;
}

/**
 * `afterLeave`: the endpoint is joined to a sandbox and left again, and the DeleteEndpoint that follows never reaches
 * knit (it died; dockerd's retry comes with an empty body and fails, and dockerd forgets the endpoint).
 */
export async function abandonEndpoint(c: FaultCluster, host: number, network: string, afterLeave = false): Promise<Abandoned> {
  const socket = c.knits[host].socket;
  const inspect = (await c.docker(host, ['network', 'inspect', '-f', '{{.Id}} {{(index .IPAM.Config 0).Subnet}}', network])).stdout.trim();
  const [networkId, subnet] = inspect.split(' ');
  const poolId = `knit:${subnet}`;
  const addr = await post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  const endpointId = dockerId();
  const created = await post(socket, '/NetworkDriver.CreateEndpoint', {
    NetworkID: networkId, EndpointID: endpointId, Interface: { Address: addr.body.Address, AddressIPv6: '', MacAddress: '' }, Options: {},
  });
  if (afterLeave) {
    const ids = { NetworkID: networkId, EndpointID: endpointId };
    const joined = await post(socket, '/NetworkDriver.Join', { ...ids, SandboxKey: `/var/run/docker/netns/${endpointId.slice(0, 12)}`, Options: {} });
    const left = await post(socket, '/NetworkDriver.Leave', ids);
    if (joined.status !== 200 || left.status !== 200) throw new Error(`could not join and leave the abandoned endpoint: ${joined.raw} ${left.raw}`);
  }
  const address = String(addr.body.Address).split('/')[0];
  await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: address });
  if (addr.status !== 200 || created.status !== 200) throw new Error(`could not make the abandoned endpoint: ${addr.raw} ${created.raw}`);
  return { host, endpointId, address, subnet };
}

/**
 * What is left of it: its record, its veth, its address held in the store for no endpoint (a restarted knit hands
 * out the lowest free address first, so a later container may rightly hold the same one).
 */
export async function remainsOf(c: FaultCluster, a: Abandoned, view: ClusterView): Promise<string[]> {
  const inUse = view.hosts.some((h) => h.docker.some((d) => d.ip === a.address && h.networks.some((n) => n.id === d.networkId && n.ipv4[0]?.subnet === a.subnet)));
  const held = view.addresses.some((h) => h.subnet === a.subnet && h.ip === a.address);
  const recs = await localRecords(c.knits[a.host].stateDir);
  const links = (await c.hosts[a.host].exec(['ip', '-o', 'link', 'show'])).stdout;
  const id12 = a.endpointId.slice(0, 12);
  return [
    ...([...recs.keys()].some((k) => k.endsWith(a.endpointId)) ? [`knit still has a record of endpoint ${id12}`] : []),
    ...(links.includes(`knh${id12}`) ? [`veth knh${id12} is still on the bridge`] : []),
    ...(held && !inUse ? [`${a.address} is still held in IPAM and no endpoint uses it`] : []),
  ];
}
