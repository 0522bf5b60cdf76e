// What the route table calls: the network driver and IPAM as the protocol sees them, in domain terms
// (camelCase; the wire's PascalCase stays in wire.ts and routes.ts).
import type { JoinReply } from '../network/driver/deps.js';
import type { IpamConfig } from '../network/spec.js';

export interface NetworkApi {
  createNetwork(req: { id: string; options: Record<string, unknown>; ipv4: IpamConfig[]; ipv6: IpamConfig[] }): Promise<void>;
  deleteNetwork(id: string): Promise<void>;
  createEndpoint(req: { networkId: string; endpointId: string; address?: string; addressV6?: string; mac?: string; options: Record<string, unknown> }): Promise<{ mac: string }>;
  endpointInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>>;
  deleteEndpoint(networkId: string, endpointId: string): Promise<unknown>;
  join(req: { networkId: string; endpointId: string; sandboxKey: string; options: Record<string, unknown> }): Promise<JoinReply>;
  leave(networkId: string, endpointId: string): Promise<void>;
  programExternal(req: { networkId: string; endpointId: string; options: Record<string, unknown> }): Promise<void>;
  revokeExternal(networkId: string, endpointId: string): Promise<void>;
  addressReleased(subnet: string, address: string): Promise<void>;
}

export interface IpamApi {
  requestPool(req: { pool?: string; subPool?: string; v6: boolean }): Promise<{ poolId: string; pool: string }>;
  releasePool(poolId: string): Promise<void>;
  requestAddress(req: { poolId: string; address?: string; gateway: boolean }): Promise<string>;
  releaseAddress(poolId: string, address: string): Promise<void>;
}
