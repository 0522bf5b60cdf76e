// The plugin protocol's request shapes, with its own PascalCase field names (docs/protocol.md).
import { z } from 'zod';
import { ADDRESS_SPACES } from '../ipam/pools.js';

const dockerId = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(/^[0-9a-f]{64}$/, `${what} must be 64 lowercase hex characters`);
const optionalString = (what: string) => z.string({ error: `${what} must be a string` }).max(256, `${what} is too long`).optional();
/** Docker sends null, {} or a map; values are arbitrary JSON. */
const optionMap = z.record(z.string(), z.unknown(), { error: 'Options must be an object' }).nullable().optional();

const ipamData = z.object({
  AddressSpace: optionalString('AddressSpace'),
  Pool: z.string({ error: 'IPAMData.Pool must be a string' }).max(64),
  Gateway: optionalString('IPAMData.Gateway'),
  AuxAddresses: z.record(z.string().max(256), z.string().max(64), { error: 'AuxAddresses must map names to addresses' }).nullable().optional(),
});

const ipamList = z.array(ipamData, { error: 'IPv4Data/IPv6Data must be arrays' }).max(16).nullable().optional();

export const networkRequests = {
  createNetwork: z.object({ NetworkID: dockerId('NetworkID'), Options: optionMap, IPv4Data: ipamList, IPv6Data: ipamList }),
  network: z.object({ NetworkID: dockerId('NetworkID') }),
  createEndpoint: z.object({
    NetworkID: dockerId('NetworkID'),
    EndpointID: dockerId('EndpointID'),
    Interface: z
      .object({ Address: optionalString('Interface.Address'), AddressIPv6: optionalString('Interface.AddressIPv6'), MacAddress: optionalString('Interface.MacAddress') }, { error: 'Interface must be an object' })
      .nullable()
      .optional(),
    Options: optionMap,
  }),
  endpoint: z.object({ NetworkID: dockerId('NetworkID'), EndpointID: dockerId('EndpointID') }),
  join: z.object({
    NetworkID: dockerId('NetworkID'),
    EndpointID: dockerId('EndpointID'),
    SandboxKey: z.string({ error: 'SandboxKey must be a string' }).max(4096),
    Options: optionMap,
  }),
  connectivity: z.object({ NetworkID: dockerId('NetworkID'), EndpointID: dockerId('EndpointID'), Options: optionMap }),
  gwAllocCheck: z.object({ Options: optionMap }),
  discover: z.object({ DiscoveryType: z.number({ error: 'DiscoveryType must be a number' }).int(), DiscoveryData: z.unknown() }),
};

const poolIdField = z.string({ error: 'PoolID must be a string' }).min(1, 'PoolID is empty').max(128, 'PoolID is too long');

export const ipamRequests = {
  requestPool: z.object({
    AddressSpace: z.enum(['', ADDRESS_SPACES.local, ADDRESS_SPACES.global], {
      error: `AddressSpace must be ${ADDRESS_SPACES.local} or ${ADDRESS_SPACES.global} (the spaces GetDefaultAddressSpaces names)`,
    }),
    Pool: optionalString('Pool'),
    SubPool: optionalString('SubPool'),
    Options: z.record(z.string(), z.string(), { error: 'Options must map strings to strings' }).nullable().optional(),
    V6: z.boolean({ error: 'V6 must be a boolean' }).optional(),
  }),
  releasePool: z.object({ PoolID: poolIdField }),
  requestAddress: z.object({
    PoolID: poolIdField,
    Address: optionalString('Address'),
    Options: z.record(z.string(), z.unknown(), { error: 'Options must be an object' }).nullable().optional(),
  }),
  releaseAddress: z.object({ PoolID: poolIdField, Address: z.string({ error: 'Address must be a string' }).max(64) }),
};

export type IpamDataWire = z.infer<typeof ipamData>;

export const GATEWAY_REQUEST = 'com.docker.network.gateway';
