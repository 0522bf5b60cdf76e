// The calls dockerd 20.10 makes to knit for an overlay network and for one container's endpoint on it, with the
// captured payloads of docs/protocol.md §2, posted to knit's socket: what a simulated host without dockerd sends.
import { randomBytes } from 'node:crypto';
import { dockerId } from '../spec/support/client.js';
import type { LeanConnection } from './lean-client.js';
import { ENDPOINT_NAME_OPTION } from '../src/protocol/engine-hints.js';

/** What `docker run` sends with no published ports, on CreateEndpoint, Join and ProgramExternalConnectivity. */
const ENDPOINT_OPTIONS = { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] };

export interface OverlayNet {
  id: string;
  poolId: string;
  subnet: string;
}

export interface Endpoint {
  net: OverlayNet;
  id: string;
  /** The address IPAM gave, without its prefix. */
  ip: string;
  mac: string;
}

/** A connection knit closed as idle (65 s) just as a call went out: dockerd retries these, on a new connection. */
const TRANSPORT = /ECONNRESET|EPIPE|connection closed/;

/** Posts one call; anything but 200 is an error naming the call and knit's answer. */
export async function call(c: LeanConnection, route: string, body: object): Promise<Record<string, unknown>> {
  const r = await c.call(route, body).catch((err: Error) => {
    if (!TRANSPORT.test(err.message)) throw err;
    return c.call(route, body);
  });
  const reply = (r.body ?? {}) as Record<string, unknown>;
  if (r.status !== 200) throw new Error(`${route} answered ${r.status}: ${String(reply.Err ?? reply.Error ?? JSON.stringify(reply)).slice(0, 300)}`);
  return reply;
}

/** What dockerd asks a plugin before its first network: both drivers' capabilities and the address spaces. */
export async function activate(c: LeanConnection): Promise<string> {
  await call(c, '/Plugin.Activate', {});
  await call(c, '/NetworkDriver.GetCapabilities', {});
  await call(c, '/IpamDriver.GetCapabilities', {});
  const spaces = await call(c, '/IpamDriver.GetDefaultAddressSpaces', {});
  return String(spaces.LocalDefaultAddressSpace);
}

/** `docker network create -d knit --ipam-driver knit -o knit.mode=overlay --subnet SUBNET`: each host's dockerd gives it an ID of its own. */
export async function createOverlay(c: LeanConnection, space: string, subnet: string): Promise<OverlayNet> {
  const pool = await call(c, '/IpamDriver.RequestPool', { AddressSpace: space, Pool: subnet, SubPool: '', Options: {}, V6: false });
  const poolId = String(pool.PoolID);
  const gw = await call(c, '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const id = dockerId();
  await call(c, '/NetworkDriver.CreateNetwork', {
    NetworkID: id,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': { 'knit.mode': 'overlay' } },
    IPv4Data: [{ AddressSpace: space, Gateway: String(gw.Address), Pool: subnet }],
    IPv6Data: [],
  });
  return { id, poolId, subnet };
}

/**
 * A container start's calls up to the running container: RequestAddress (with dockerd 29's endpoint name), CreateEndpoint (knit publishes the
 * endpoint there), Join, ProgramExternalConnectivity, EndpointOperInfo twice. `onCreate` is called just before
 * CreateEndpoint is sent, the moment the other hosts' clocks start; `address` is `docker run --ip`'s.
 */
export async function startEndpoint(c: LeanConnection, net: OverlayNet, o: { onCreate?: () => void; address?: string } = {}): Promise<Endpoint> {
  // `docker run --ip A` asks for A; without --ip the Address is empty and IPAM picks one. dockerd 29+ names the
  // endpoint there (the container's name): with no engine to ask, knit publishes that name from the Join on.
  const id = dockerId();
  const Options = { [ENDPOINT_NAME_OPTION]: `c${id.slice(0, 12)}` };
  const addr = await call(c, '/IpamDriver.RequestAddress', { PoolID: net.poolId, Address: o.address ?? '', Options });
  const cidr = String(addr.Address);
  const ids = { NetworkID: net.id, EndpointID: id };
  o.onCreate?.();
  const created = await call(c, '/NetworkDriver.CreateEndpoint', { ...ids, Interface: { Address: cidr, AddressIPv6: '', MacAddress: '' }, Options: ENDPOINT_OPTIONS });
  const mac = String((created.Interface as { MacAddress?: string } | undefined)?.MacAddress ?? '');
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new Error(`CreateEndpoint gave no MAC address: ${JSON.stringify(created).slice(0, 200)}`);
  // The sandbox is never opened by knit on Join (docs/protocol.md §3): the veth's peer stays in the host namespace.
  await call(c, '/NetworkDriver.Join', { ...ids, SandboxKey: `/var/run/docker/netns/${randomBytes(6).toString('hex')}`, Options: ENDPOINT_OPTIONS });
  await call(c, '/NetworkDriver.ProgramExternalConnectivity', { ...ids, Options: ENDPOINT_OPTIONS });
  for (let i = 0; i < 2; i++) await call(c, '/NetworkDriver.EndpointOperInfo', ids);
  return { net, id, ip: cidr.split('/')[0], mac };
}

/** A container's stop: Revoke, Leave, DeleteEndpoint (knit withdraws the record; `onDelete` just before), ReleaseAddress. */
export async function stopEndpoint(c: LeanConnection, ep: Endpoint, onDelete: () => void = () => undefined): Promise<void> {
  const ids = { NetworkID: ep.net.id, EndpointID: ep.id };
  await call(c, '/NetworkDriver.RevokeExternalConnectivity', ids);
  await call(c, '/NetworkDriver.Leave', ids);
  onDelete();
  await call(c, '/NetworkDriver.DeleteEndpoint', ids);
  await call(c, '/IpamDriver.ReleaseAddress', { PoolID: ep.net.poolId, Address: ep.ip });
}

/** One dynamic RequestAddress (`docker run` without --ip): the address, or the error text when IPAM refused. */
export async function dynamicAddress(c: LeanConnection, net: OverlayNet): Promise<{ ip: string } | { error: string }> {
  try {
    const addr = await call(c, '/IpamDriver.RequestAddress', { PoolID: net.poolId, Address: '', Options: null });
    return { ip: String(addr.Address).split('/')[0] };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export async function releaseAddress(c: LeanConnection, net: OverlayNet, ip: string): Promise<void> {
  await call(c, '/IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: ip });
}
