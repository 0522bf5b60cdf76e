// The one route table: each protocol path, how its body is decoded, and the domain call it makes.
import { formatCidr } from '../addr/cidr.js';
import { ADDRESS_SPACES, parsePoolId } from '../ipam/pools.js';
import { badRequest } from '../errors.js';
import type { IpamApi, NetworkApi } from './api.js';
import { decode } from './decode.js';
import type { EngineHints } from './engine-hints.js';
import { GATEWAY_REQUEST, ipamRequests as ir, type IpamDataWire, networkRequests as nr } from './wire.js';
import type { IpamConfig } from '../network/spec.js';

export interface Route {
  /** IPAM replies carry the error under "Error" as well as "Err". */
  ipam: boolean;
  /** Answered at once, even before knit has loaded its state (dockerd drops slow plugins). */
  instant?: boolean;
  handle(body: unknown): Promise<object>;
}

export interface Handlers {
  network: NetworkApi;
  ipam: IpamApi;
  /** Reconciles records and kernel on demand (`knit doctor`). */
  doctor: () => Promise<object>;
  /** Call timings, processes spawned, memory (`knit status`, benchmarks). */
  status: () => Promise<object>;
  /** Rotates this host's WireGuard key (`knit rotate-key`). */
  rotateKey?: () => Promise<object>;
  /** Told what each call shows about dockerd's version. */
  hints?: EngineHints;
}

const ipamConfigs = (list: IpamDataWire[] | null | undefined): IpamConfig[] =>
  (list ?? []).map((d) => ({ addressSpace: d.AddressSpace, pool: d.Pool, gateway: d.Gateway || undefined, aux: d.AuxAddresses ?? {} }));

export function routeTable({ network, ipam, doctor, status, rotateKey, hints }: Handlers): Record<string, Route> {
  const net = (handle: (body: unknown) => Promise<object>): Route => ({ ipam: false, handle });
  const ipm = (handle: (body: unknown) => Promise<object>): Route => ({ ipam: true, handle });
  return {
    '/Plugin.Activate': { ipam: false, instant: true, handle: async () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }) },
    '/NetworkDriver.GetCapabilities': { ipam: false, instant: true, handle: async () => ({ Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: false }) },
    '/NetworkDriver.GwAllocCheck': net(async (b) => (decode(nr.gwAllocCheck, b), { SkipIPv4: false, SkipIPv6: false })),
    '/NetworkDriver.CreateNetwork': net(async (b) => {
      const r = decode(nr.createNetwork, b);
      await network.createNetwork({ id: r.NetworkID, options: r.Options ?? {}, ipv4: ipamConfigs(r.IPv4Data), ipv6: ipamConfigs(r.IPv6Data) });
      return {};
    }),
    '/NetworkDriver.DeleteNetwork': net(async (b) => (await network.deleteNetwork(decode(nr.network, b).NetworkID), {})),
    '/NetworkDriver.AllocateNetwork': net(async () => {
      throw badRequest('knit networks are local-scope; swarm-scoped networks are not supported');
    }),
    '/NetworkDriver.FreeNetwork': net(async (b) => (decode(nr.network, b), {})),
    '/NetworkDriver.CreateEndpoint': net(async (b) => {
      const r = decode(nr.createEndpoint, b);
      const i = r.Interface ?? {};
      const out = await network.createEndpoint({
        networkId: r.NetworkID,
        endpointId: r.EndpointID,
        address: i.Address || undefined,
        addressV6: i.AddressIPv6 || undefined,
        mac: i.MacAddress || undefined,
        options: r.Options ?? {},
      });
      // Fill-in-only rule: Docker refuses any field it had already set, even with the same value.
      return i.MacAddress ? { Interface: null } : { Interface: { MacAddress: out.mac } };
    }),
    '/NetworkDriver.EndpointOperInfo': net(async (b) => {
      const r = decode(nr.endpoint, b);
      return { Value: await network.endpointInfo(r.NetworkID, r.EndpointID) };
    }),
    '/NetworkDriver.DeleteEndpoint': net(async (b) => {
      const r = decode(nr.endpoint, b);
      return (await network.deleteEndpoint(r.NetworkID, r.EndpointID), {});
    }),
    '/NetworkDriver.Join': net(async (b) => {
      const r = decode(nr.join, b);
      const j = await network.join({ networkId: r.NetworkID, endpointId: r.EndpointID, sandboxKey: r.SandboxKey, options: r.Options ?? {} });
      const reply: Record<string, unknown> = { InterfaceName: { SrcName: j.srcName, DstPrefix: 'eth' }, DisableGatewayService: j.disableGatewayService };
      if (j.gateway) reply.Gateway = j.gateway;
      if (j.gatewayV6) reply.GatewayIPv6 = j.gatewayV6;
      if (j.staticRoutes.length) reply.StaticRoutes = j.staticRoutes.map((r) => ({ Destination: r.destination, RouteType: 0, NextHop: r.nextHop }));
      return reply;
    }),
    '/NetworkDriver.Leave': net(async (b) => {
      const r = decode(nr.endpoint, b);
      return (await network.leave(r.NetworkID, r.EndpointID), {});
    }),
    '/NetworkDriver.ProgramExternalConnectivity': net(async (b) => {
      const r = decode(nr.connectivity, b);
      return (await network.programExternal({ networkId: r.NetworkID, endpointId: r.EndpointID, options: r.Options ?? {} }), {});
    }),
    '/NetworkDriver.RevokeExternalConnectivity': net(async (b) => {
      const r = decode(nr.connectivity, b);
      return (await network.revokeExternal(r.NetworkID, r.EndpointID), {});
    }),
    '/NetworkDriver.DiscoverNew': net(async (b) => (decode(nr.discover, b), {})),
    '/NetworkDriver.DiscoverDelete': net(async (b) => (decode(nr.discover, b), {})),
    '/IpamDriver.GetCapabilities': { ipam: true, instant: true, handle: async () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }) },
    '/IpamDriver.GetDefaultAddressSpaces': {
      ipam: true,
      instant: true,
      handle: async () => ({ LocalDefaultAddressSpace: ADDRESS_SPACES.local, GlobalDefaultAddressSpace: ADDRESS_SPACES.global }),
    },
    '/IpamDriver.RequestPool': ipm(async (b) => {
      const r = decode(ir.requestPool, b);
      const p = await ipam.requestPool({ pool: r.Pool || undefined, subPool: r.SubPool || undefined, v6: r.V6 ?? false });
      return { PoolID: p.poolId, Pool: p.pool, Data: {} };
    }),
    '/IpamDriver.ReleasePool': ipm(async (b) => (await ipam.releasePool(decode(ir.releasePool, b).PoolID), {})),
    '/IpamDriver.RequestAddress': ipm(async (b) => {
      const r = decode(ir.requestAddress, b);
      hints?.requestAddress(r.Options);
      const gateway = r.Options?.RequestAddressType === GATEWAY_REQUEST;
      const address = await ipam.requestAddress({ poolId: r.PoolID, address: r.Address || undefined, gateway });
      hints?.addressGiven(r.Options, address);
      return { Address: address, Data: {} };
    }),
    '/IpamDriver.ReleaseAddress': ipm(async (b) => {
      const r = decode(ir.releaseAddress, b);
      // The endpoint first: while it could still announce the address, the address is not free for another.
      await network.addressReleased(formatCidr(parsePoolId(r.PoolID).subnet), r.Address);
      await ipam.releaseAddress(r.PoolID, r.Address);
      hints?.addressReleased(r.Address);
      return {};
    }),
    '/knit.Doctor': net(async () => doctor()),
    '/knit.Status': { ipam: false, instant: true, handle: async () => status() },
    '/knit.RotateKey': net(async () => {
      if (!rotateKey) throw badRequest('this knit has no WireGuard key to rotate');
      return rotateKey();
    }),
  };
}
