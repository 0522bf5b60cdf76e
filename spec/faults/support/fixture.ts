// Builds, with valid dockerd payloads, the live objects a lone knit guards: a pool, a network, a joined endpoint with a published port.
import { post } from '../../support/client.js';
import type { Fixture } from './templates.js';

const id = (c: string): string => c.repeat(64);

async function call(socket: string, path: string, body: object): Promise<Record<string, unknown>> {
  const r = await post(socket, path, body);
  if (r.status !== 200) throw new Error(`fixture: ${path} answered ${r.status}: ${r.raw}`);
  return r.body as Record<string, unknown>;
}

/** The fixture on 10.240.0.0/24 (gateway .1, endpoint .2, host port 18080); 10.243.0.0/24 stays free. */
export async function createFixture(socket: string): Promise<Fixture> {
  const f: Fixture = {
    networkId: id('b'),
    endpointId: id('c'),
    prefix: '10.240.0',
    poolId: '',
    sandboxKey: '/var/run/docker/netns/f1f2f3f4f5f6',
    unknownNetworkId: id('d'),
    unknownEndpointId: id('e'),
    freePrefix: '10.243.0',
  };
  const pool = await call(socket, '/IpamDriver.RequestPool', { AddressSpace: 'knit-local', Pool: `${f.prefix}.0/24`, SubPool: '', Options: {}, V6: false });
  f.poolId = String(pool.PoolID);
  const gw = await call(socket, '/IpamDriver.RequestAddress', { PoolID: f.poolId, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  await call(socket, '/NetworkDriver.CreateNetwork', {
    NetworkID: f.networkId,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'knit-local', Gateway: gw.Address, Pool: `${f.prefix}.0/24` }],
    IPv6Data: [],
  });
  const addr = await call(socket, '/IpamDriver.RequestAddress', { PoolID: f.poolId, Address: '', Options: null });
  const ports = { 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }], 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 18080, HostPortEnd: 18080 }] };
  await call(socket, '/NetworkDriver.CreateEndpoint', { NetworkID: f.networkId, EndpointID: f.endpointId, Interface: { Address: addr.Address, AddressIPv6: '', MacAddress: '' }, Options: ports });
  await call(socket, '/NetworkDriver.Join', { NetworkID: f.networkId, EndpointID: f.endpointId, SandboxKey: f.sandboxKey, Options: ports });
  await call(socket, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: f.networkId, EndpointID: f.endpointId, Options: ports });
  return f;
}
