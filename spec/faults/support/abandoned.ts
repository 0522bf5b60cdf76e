// What a crash inside CreateEndpoint leaves behind, made on purpose: knit saved the endpoint, dockerd never saw the
// reply (its retry arrives with an empty body and fails, protocol.md 1.4), released the address and never calls again.
import { dockerId, post } from '../../support/client.js';
import type { FaultCluster } from './fault-cluster.js';
import { localRecords } from './records.js';

export interface Abandoned {
  host: number;
  endpointId: string;
  address: string;
  subnet: string;
}

export async function abandonEndpoint(c: FaultCluster, host: number, network: string): Promise<Abandoned> {
  const socket = c.knits[host].socket;
  const inspect = (await c.docker(host, ['network', 'inspect', '-f', '{{.Id}} {{(index .IPAM.Config 0).Subnet}}', network])).stdout.trim();
  const [networkId, subnet] = inspect.split(' ');
  const poolId = `knit:${subnet}`;
  const addr = await post(socket, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  const endpointId = dockerId();
  const created = await post(socket, '/NetworkDriver.CreateEndpoint', {
    NetworkID: networkId, EndpointID: endpointId, Interface: { Address: addr.body.Address, AddressIPv6: '', MacAddress: '' }, Options: {},
  });
  const address = String(addr.body.Address).split('/')[0];
  await post(socket, '/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: address });
  if (addr.status !== 200 || created.status !== 200) throw new Error(`could not make the abandoned endpoint: ${addr.raw} ${created.raw}`);
  return { host, endpointId, address, subnet };
}

/** What is left of it: its record, its veth, its address held in the store. */
export async function remainsOf(c: FaultCluster, a: Abandoned, heldAddresses: Array<{ subnet: string; ip: string }>): Promise<string[]> {
  const recs = await localRecords(c.knits[a.host].stateDir);
  const links = (await c.hosts[a.host].exec(['ip', '-o', 'link', 'show'])).stdout;
  const id12 = a.endpointId.slice(0, 12);
  return [
    ...([...recs.keys()].some((k) => k.endsWith(a.endpointId)) ? [`knit still has a record of endpoint ${id12}`] : []),
    ...(links.includes(`knh${id12}`) ? [`veth knh${id12} is still on the bridge`] : []),
    ...(heldAddresses.some((h) => h.subnet === a.subnet && h.ip === a.address) ? [`${a.address} is still held in IPAM`] : []),
  ];
}
