// The captured dockerd payloads (docs/protocol.md §2) as templates, and the fields a mutation may break.
import {
  BAD_ADDRESS_CIDRS, BAD_BOOLS, BAD_GATEWAYS, BAD_IDS, BAD_MACS, BAD_SUBNETS, badGenerics, badPortMaps, NOT_STRINGS,
} from './mutations.js';

/** The live objects the corpus aims at: one network with a joined endpoint, its pool, and things knit does not hold. */
export interface Fixture {
  networkId: string;
  endpointId: string;
  /** e.g. 10.240.0: the fixture's /24 is PREFIX.0/24, its gateway PREFIX.1, its endpoint PREFIX.2. */
  prefix: string;
  poolId: string;
  sandboxKey: string;
  /** IDs knit has never seen, and a /24 it does not hold (FREE.0/24). */
  unknownNetworkId: string;
  unknownEndpointId: string;
  freePrefix: string;
}

export type Path = Array<string | number>;

export interface Field {
  path: Path;
  bad: unknown[];
  /** Leaving the field out is an error too. */
  required?: boolean;
  /** Validated strictly enough that any string knit cannot parse is refused (so bytes may be mangled). */
  strict?: boolean;
}

export interface Template {
  path: string;
  body: Record<string, unknown>;
  fields: Field[];
}

const NOT_OBJECTS: unknown[] = ['str', 42, true, ['a']];

function poolIds(f: Fixture, forRelease: boolean): unknown[] {
  const s = `${f.prefix}.0/24`;
  const ids: unknown[] = [
    '', 'knit:', 'knit', `default/${s}`, `knit:${f.prefix}.0/33`, `knit:${f.prefix}.1/24`, `knit:${s}~`, `knit:${s}~x`,
    `knit:${s}~${f.prefix}.0/25~${f.prefix}.0/26`, 'knit:../../etc', 'knit:$(touch /tmp/knit-hostile-pool)', 'x'.repeat(200),
    `KNIT:${s}`, `knit: ${s}`, 42, null, {}, [],
  ];
  // Asking for an address of a pool knit does not hold fails; releasing in one is a no-op (a replay), so not here.
  return forRelease ? ids : [...ids, `knit:${f.freePrefix}.0/24`, `knit:${s}~${f.prefix}.128/25`];
}

function addresses(f: Fixture, forRelease: boolean): unknown[] {
  const p = f.prefix;
  const bad: unknown[] = [`${p}.0`, `${p}.255`, '10.99.0.5', `${p}.5/24`, '::1', 'fe80::1', `${p}.300`, ` ${p}.5`, 'x'.repeat(65), `$(touch /tmp/knit-hostile-ip)`, 42, {}, true];
  // In use: asking for it again is a conflict; releasing it would be a real release, so not here.
  return forRelease ? bad : [...bad, `${p}.1`, `${p}.2`];
}

export function templates(f: Fixture): Template[] {
  const ids = (withEndpoint = false): Field[] => [
    { path: ['NetworkID'], bad: BAD_IDS, required: true, strict: true },
    ...(withEndpoint ? [{ path: ['EndpointID'], bad: BAD_IDS, required: true, strict: true }] : []),
  ];
  const free = `${f.freePrefix}.0/24`;
  const ipamEntry = { AddressSpace: 'knit-local', Pool: free, Gateway: `${f.freePrefix}.1/24` };
  const portmap = [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 18080, HostPortEnd: 18080 }];
  const known = { NetworkID: f.networkId, EndpointID: f.endpointId };
  const unknown = { NetworkID: f.unknownNetworkId, EndpointID: f.unknownEndpointId };
  return [
    {
      path: '/NetworkDriver.CreateNetwork',
      body: { NetworkID: f.unknownNetworkId, Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} }, IPv4Data: [ipamEntry], IPv6Data: [] },
      fields: [
        ...ids(),
        { path: ['Options'], bad: NOT_OBJECTS },
        { path: ['Options', 'com.docker.network.generic'], bad: [...badGenerics(), ...NOT_OBJECTS] },
        { path: ['Options', 'com.docker.network.internal'], bad: BAD_BOOLS },
        { path: ['Options', 'com.docker.network.enable_ipv4'], bad: [false, 'false', '0', 'x', {}] },
        { path: ['IPv4Data'], bad: ['str', 42, {}, [], [null], ['x'], [{}], Array(17).fill(ipamEntry), [{ ...ipamEntry, Pool: undefined }]] },
        { path: ['IPv4Data', 0, 'Pool'], bad: BAD_SUBNETS, required: true, strict: true },
        { path: ['IPv4Data', 0, 'Gateway'], bad: BAD_GATEWAYS(f.freePrefix), strict: true },
        { path: ['IPv4Data', 0, 'AddressSpace'], bad: [5, {}, [], 'x'.repeat(300)] },
        { path: ['IPv4Data', 0, 'AuxAddresses'], bad: ['str', 42, [], { a: 'x' }, { a: `${f.freePrefix}.5` }, { a: '10.99.0.5/24' }, { a: 5 }, { ['k'.repeat(300)]: `${f.freePrefix}.5/24` }] },
        { path: ['IPv6Data'], bad: ['str', 42, {}, [{ Pool: '10.0.0.0/24' }], [{ Pool: 'fe80::/64%x' }], [{ Pool: '2001:db8::1/64' }], [{}]] },
      ],
    },
    { path: '/NetworkDriver.DeleteNetwork', body: { NetworkID: f.unknownNetworkId }, fields: ids() },
    { path: '/NetworkDriver.FreeNetwork', body: { NetworkID: f.unknownNetworkId }, fields: ids() },
    {
      path: '/NetworkDriver.CreateEndpoint',
      body: { NetworkID: f.networkId, EndpointID: f.unknownEndpointId, Interface: { Address: `${f.prefix}.200/24`, AddressIPv6: '', MacAddress: '' }, Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] } },
      fields: [
        ...ids(true),
        { path: ['Interface'], bad: NOT_OBJECTS },
        { path: ['Interface', 'Address'], bad: BAD_ADDRESS_CIDRS(f.prefix), strict: true },
        { path: ['Interface', 'AddressIPv6'], bad: [...BAD_ADDRESS_CIDRS(f.prefix), '2001:db8::7/64'], strict: true },
        { path: ['Interface', 'MacAddress'], bad: BAD_MACS, strict: true },
        { path: ['Options'], bad: NOT_OBJECTS },
      ],
    },
    {
      path: '/NetworkDriver.Join',
      body: { ...known, SandboxKey: f.sandboxKey, Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] } },
      fields: [
        ...ids(true),
        { path: ['SandboxKey'], bad: [42, true, {}, [], null, `/var/run/docker/netns/${'x'.repeat(5_000)}`], required: true },
        { path: ['Options'], bad: NOT_OBJECTS },
      ],
    },
    {
      path: '/NetworkDriver.ProgramExternalConnectivity',
      body: { ...known, Options: { 'com.docker.network.portmap': portmap } },
      fields: [...ids(true), { path: ['Options'], bad: NOT_OBJECTS }, { path: ['Options', 'com.docker.network.portmap'], bad: badPortMaps() }],
    },
    { path: '/NetworkDriver.EndpointOperInfo', body: { ...known }, fields: ids(true) },
    { path: '/NetworkDriver.RevokeExternalConnectivity', body: { ...unknown }, fields: ids(true) },
    { path: '/NetworkDriver.Leave', body: { ...unknown }, fields: ids(true) },
    { path: '/NetworkDriver.DeleteEndpoint', body: { ...unknown }, fields: ids(true) },
    { path: '/NetworkDriver.GwAllocCheck', body: { Options: {} }, fields: [{ path: ['Options'], bad: NOT_OBJECTS }] },
    {
      path: '/NetworkDriver.DiscoverNew',
      body: { DiscoveryType: 1, DiscoveryData: { Address: '10.0.0.11', BindAddress: '0.0.0.0', Self: true } },
      fields: [{ path: ['DiscoveryType'], bad: ['1', 1.5, null, {}, true, []], required: true }],
    },
    {
      path: '/IpamDriver.RequestPool',
      body: { AddressSpace: 'knit-local', Pool: free, SubPool: '', Options: {}, V6: false },
      fields: [
        { path: ['AddressSpace'], bad: [5, null, {}, [], 'x'.repeat(65)], required: true },
        { path: ['Pool'], bad: BAD_SUBNETS, strict: true },
        { path: ['SubPool'], bad: [`${f.freePrefix}.0/33`, '10.250.0.0/25', `${f.freePrefix}.1/25`, 'x', 'fe80::/64', ...NOT_STRINGS], strict: true },
        { path: ['Options'], bad: [{ a: 1 }, { a: {} }, { a: null }, ...NOT_OBJECTS] },
        { path: ['V6'], bad: ['true', 1, 'false', {}, [], true, null] },
      ],
    },
    { path: '/IpamDriver.ReleasePool', body: { PoolID: `knit:${free}` }, fields: [{ path: ['PoolID'], bad: poolIds(f, true), required: true, strict: true }] },
    {
      path: '/IpamDriver.RequestAddress',
      body: { PoolID: f.poolId, Address: '', Options: null },
      fields: [
        { path: ['PoolID'], bad: poolIds(f, false), required: true, strict: true },
        { path: ['Address'], bad: addresses(f, false), strict: true },
        { path: ['Options'], bad: NOT_OBJECTS },
      ],
    },
    {
      path: '/IpamDriver.ReleaseAddress',
      body: { PoolID: f.poolId, Address: `${f.prefix}.77` },
      fields: [
        { path: ['PoolID'], bad: poolIds(f, true), required: true, strict: true },
        { path: ['Address'], bad: addresses(f, true), required: true, strict: true },
      ],
    },
  ];
}

/** Paths dockerd could never call, and routes spelled almost right: all must be 404. */
export const UNKNOWN_PATHS: string[] = [
  '/NetworkDriver.Frobnicate', '/NetworkDriver.CreateNetwork/', '/networkdriver.createnetwork', '/NetworkDriver.createNetwork',
  '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '//NetworkDriver.CreateNetwork', '/NetworkDriver.CreateNetwork%00',
  '/__proto__', '/constructor', '/toString', '/hasOwnProperty', '/Plugin.Activate/x', '/knit.Doctor/..', '/IpamDriver',
  '/', '/NetworkDriver.', '/.', `/${'a'.repeat(4_000)}`, '/knit.doctor', '/$(touch%20/tmp/knit-hostile-path)', '/-rf',
];

/** A value at `path` of a copy of `body` (undefined deletes the field); unchanged if an earlier mutation replaced a parent. */
export function setAt(body: Record<string, unknown>, path: Path, value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  let node: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const child = node[key];
    if (typeof child !== 'object' || child === null) return copy;
    node = child as Record<string | number, unknown>;
  }
  const last = path[path.length - 1];
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}
