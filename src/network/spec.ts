// Pure: a CreateNetwork request's options turned into a validated network spec (strict on -o options).
import { badRequest } from '../errors.js';
import { type Cidr, contains, formatCidr, formatIp, parseAddrCidr, parseCidr } from '../addr/cidr.js';
import { MACVLAN_OPT, macvlanSpec, type MacvlanSpec, refuseMacvlanOptions } from './macvlan/spec.js';

export type Mode = 'bridge' | 'overlay' | 'macvlan';

export interface IpamConfig {
  /** The IPAM driver's name for the space the pool came from (ours: knit-local, knit-global). */
  addressSpace?: string;
  pool: string;
  gateway?: string;
  aux: Record<string, string>;
}

export interface SubnetSpec {
  subnet: string;
  /** Gateway as CIDR with the pool's prefix (the address that goes on the bridge). */
  gateway?: string;
  /** --aux-address entries: reserved in IPAM, never given to a container. */
  aux?: Record<string, string>;
}

export interface NetworkSpec {
  id: string;
  mode: Mode;
  bridge: string;
  mtu?: number;
  icc: boolean;
  masquerade: boolean;
  internal: boolean;
  hostBindingIpv4?: string;
  vni?: number;
  /** Set on macvlan networks (whose `bridge` is the name of their host leg, when they have one). */
  macvlan?: MacvlanSpec;
  /** `-o encrypted` on an overlay: its VXLAN between hosts travels only inside WireGuard (absent when plain). */
  encrypted?: boolean;
  /** The pools came from knit's own IPAM (so a released pool means the network is gone). */
  knitIpam: boolean;
  ipv4: SubnetSpec[];
  ipv6: SubnetSpec[];
}

export const OPT = {
  bridgeName: 'com.docker.network.bridge.name',
  icc: 'com.docker.network.bridge.enable_icc',
  masquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  hostBinding: 'com.docker.network.bridge.host_binding_ipv4',
  mtu: 'com.docker.network.driver.mtu',
  mode: 'knit.mode',
  vni: 'knit.vni',
  /** Docker's own name for it (swarm overlays); `--opt encrypted` sends an empty value. */
  encrypted: 'encrypted',
} as const;

const KNOWN = new Set<string>([...Object.values(OPT), ...Object.values(MACVLAN_OPT)]);

/** Go's strconv.ParseBool, which Docker uses for these options. */
export function parseBool(key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const v = String(value);
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw badRequest(`option ${key}="${v}" is not a boolean (use true or false)`);
}

function parseInteger(key: string, value: unknown, min: number, max: number): number {
  const v = String(value);
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw badRequest(`option ${key}="${v}" must be a whole number from ${min} to ${max}`);
  return n;
}

/**
 * Options libnetwork itself reads and validates for every driver, then passes on in the generic options
 * (dockerd 28+: how many unsolicited ARP/NA messages it sends for a new interface, and how far apart). They are
 * not knit's: accepted and ignored, where any other unknown key is refused (a typo must not pass silently).
 */
export const LIBNETWORK_OPTIONS = new Set(['com.docker.network.advertise_addr_nmsgs', 'com.docker.network.advertise_addr_ms']);

/** Whether knit reads a generic option (false: libnetwork's own, ignored); throws for one it does not know. */
function ownOption(key: string): boolean {
  if (KNOWN.has(key)) return true;
  if (LIBNETWORK_OPTIONS.has(key)) return false;
  throw badRequest(`unknown option "${key.slice(0, 100)}"; knit accepts ${[...KNOWN].join(', ')}`);
}

export function parseGeneric(generic: unknown): Record<string, string> {
  if (generic === undefined || generic === null) return {};
  if (typeof generic !== 'object' || Array.isArray(generic)) throw badRequest('com.docker.network.generic must be an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(generic)) {
    if (!ownOption(k)) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw badRequest(`option ${k} must be a string`);
    out[k] = String(v);
  }
  return out;
}

export function buildSpec(req: { id: string; options: Record<string, unknown>; ipv4: IpamConfig[]; ipv6: IpamConfig[]; defaultBridge: string }): NetworkSpec {
  const o = parseGeneric(req.options['com.docker.network.generic']);
  const mode = o[OPT.mode] ?? 'bridge';
  if (mode !== 'bridge' && mode !== 'overlay' && mode !== 'macvlan') throw badRequest(`option ${OPT.mode}="${mode}" must be bridge, overlay or macvlan`);
  const internal = req.options['com.docker.network.internal'] === undefined ? false : parseBool('com.docker.network.internal', req.options['com.docker.network.internal']);
  const enableV4 = req.options['com.docker.network.enable_ipv4'];
  if (enableV4 !== undefined && !parseBool('com.docker.network.enable_ipv4', enableV4)) {
    throw badRequest('IPv6-only networks (--ipv4=false) are not supported by knit yet');
  }
  if (req.ipv4.length === 0) throw badRequest('the network has no IPv4 subnet (IPv4Data is empty)');
  const spec: NetworkSpec = {
    id: req.id,
    mode,
    bridge: o[OPT.bridgeName] ?? req.defaultBridge,
    icc: o[OPT.icc] === undefined ? true : parseBool(OPT.icc, o[OPT.icc]),
    masquerade: o[OPT.masquerade] === undefined ? true : parseBool(OPT.masquerade, o[OPT.masquerade]),
    internal,
    knitIpam: req.ipv4.every((c) => c.addressSpace === 'knit-local' || c.addressSpace === 'knit-global'),
    ipv4: req.ipv4.map((c) => subnetSpec(c, 4)),
    ipv6: req.ipv6.map((c) => subnetSpec(c, 6)),
  };
  if (o[OPT.mtu] !== undefined) spec.mtu = parseInteger(OPT.mtu, o[OPT.mtu], 68, 65535);
  if (o[OPT.vni] !== undefined) {
    if (mode !== 'overlay') throw badRequest(`option ${OPT.vni} only applies to ${OPT.mode}=overlay networks`);
    spec.vni = parseInteger(OPT.vni, o[OPT.vni], 1, 16777215);
  }
  if (o[OPT.hostBinding] !== undefined) spec.hostBindingIpv4 = hostBinding(o[OPT.hostBinding]);
  if (mode === 'macvlan') spec.macvlan = macvlanSpec(o, parseBool);
  else refuseMacvlanOptions(o, mode);
  if (o[OPT.encrypted] !== undefined && (o[OPT.encrypted] === '' || parseBool(OPT.encrypted, o[OPT.encrypted]))) {
    if (mode !== 'overlay') throw badRequest(`option ${OPT.encrypted} only applies to ${OPT.mode}=overlay networks (a bridge network never leaves its host)`);
    spec.encrypted = true;
  }
  return spec;
}

function hostBinding(value: string): string {
  const { ip, cidr } = parseAddrCidr(`${value}/32`, `option ${OPT.hostBinding}`);
  if (cidr.family !== 4) throw badRequest(`option ${OPT.hostBinding}="${value}" must be an IPv4 address`);
  return formatIp(4, ip);
}

function subnetSpec(c: IpamConfig, family: 4 | 6): SubnetSpec {
  const subnet: Cidr = parseCidr(c.pool, `IPv${family}Data.Pool`);
  if (subnet.family !== family) throw badRequest(`IPv${family}Data.Pool ${c.pool} is not an IPv${family} subnet`);
  const spec: SubnetSpec = { subnet: formatCidr(subnet) };
  if (c.gateway) {
    const gw = parseAddrCidr(c.gateway, `IPv${family}Data.Gateway`);
    if (gw.cidr.prefix !== subnet.prefix || !contains(subnet, gw.ip)) {
      throw badRequest(`gateway ${c.gateway} is not in subnet ${c.pool}`);
    }
    spec.gateway = `${formatIp(family, gw.ip)}/${subnet.prefix}`;
  }
  const aux = Object.entries(c.aux);
  if (aux.length) {
    spec.aux = {};
    for (const [name, value] of aux) {
      const a = parseAddrCidr(value, `aux address ${name}`);
      if (!contains(subnet, a.ip)) throw badRequest(`aux address ${name}=${value} is not in subnet ${c.pool}`);
      spec.aux[name] = formatIp(family, a.ip);
    }
  }
  return spec;
}
