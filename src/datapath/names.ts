// Validation of every name and value that reaches a kernel command line, and the names knit derives from Docker IDs.
import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { badRequest } from '../errors.js';
import type { LinkRole } from './ops.js';

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw badRequest(`${what} ${show(value)} is not a string`);
  return value;
}

function integer(value: unknown, what: string, range: { min: number; max: number }): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw badRequest(`${what} ${show(value)} is not a whole number between ${range.min} and ${range.max}`);
  }
  return value;
}

/** The kernel's IFNAMSIZ is 16 with the terminating NUL; the character set is stricter than the kernel's on purpose. */
export function validateIfName(value: unknown): string {
  const name = text(value, 'interface name');
  if (name.length < 1 || name.length > 15) throw badRequest(`interface name ${show(name)} must be 1 to 15 characters long`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw badRequest(`interface name ${show(name)} may contain only letters, digits, "_", "." and "-"`);
  }
  if (name.startsWith('-')) throw badRequest(`interface name ${show(name)} must not start with "-"`);
  if (name === '.' || name === '..') throw badRequest(`interface name ${show(name)} is reserved`);
  return name;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export const ZERO_MAC = '00:00:00:00:00:00';

/** A unicast MAC address, returned in lowercase (the form `ip -j` prints). */
export function validateMac(value: unknown): string {
  const mac = text(value, 'MAC address').toLowerCase();
  if (!MAC.test(mac)) throw badRequest(`MAC address ${show(value)} is not six colon-separated hex bytes`);
  // The low bit of the first byte marks group (multicast and broadcast) addresses.
  if (parseInt(mac.slice(0, 2), 16) & 1) throw badRequest(`MAC address ${show(value)} is a multicast address; a unicast one is needed`);
  if (mac === ZERO_MAC) throw badRequest(`MAC address ${show(value)} is all zeros`);
  return mac;
}

/** A forwarding-entry MAC: a unicast MAC, or all zeros (the VXLAN default destination, used for flooding). */
export function validateFdbMac(value: unknown): string {
  const mac = text(value, 'MAC address').toLowerCase();
  return mac === ZERO_MAC ? mac : validateMac(mac);
}

/** An IPv4 (dotted quad) or IPv6 address, without zone, returned in canonical form. */
export function validateIp(value: unknown, what = 'IP address'): string {
  const addr = text(value, what);
  if (addr.includes('%')) throw badRequest(`${what} ${show(addr)} must not carry a zone`);
  if (ipaddr.IPv4.isValidFourPartDecimal(addr)) return ipaddr.IPv4.parse(addr).toString();
  if (ipaddr.IPv6.isValid(addr)) return ipaddr.IPv6.parse(addr).toRFC5952String();
  throw badRequest(`${what} ${show(addr)} is not an IPv4 or IPv6 address`);
}

/** "address/prefix" as an interface address: host bits may be set (a gateway is one). */
export function validateCidr(value: unknown, what = 'address'): string {
  const cidr = text(value, what);
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) throw badRequest(`${what} ${show(cidr)} is not in address/prefix form`);
  const ip = validateIp(m[1], what);
  const prefix = Number(m[2]);
  const max = ip.includes(':') ? 128 : 32;
  if (prefix > max) throw badRequest(`${what} ${show(cidr)} has a prefix longer than ${max}`);
  return `${ip}/${prefix}`;
}

export const validateVni = (value: unknown): number => integer(value, 'VNI', { min: 1, max: 16777215 });
export const validateMtu = (value: unknown): number => integer(value, 'MTU', { min: 68, max: 65535 });
export const validatePort = (value: unknown): number => integer(value, 'UDP port', { min: 1, max: 65535 });

/** An IPv4 address label: the kernel takes only the device's name, a colon and a word, 15 characters in all. */
export function validateAddrLabel(value: unknown, dev: string): string {
  const label = text(value, 'address label');
  if (label.length > 15 || !label.startsWith(`${dev}:`) || !/^[A-Za-z0-9_.-]+$/.test(label.slice(dev.length + 1))) {
    throw badRequest(`address label ${show(label)} is not "${dev}:" followed by letters or digits, 15 characters at most`);
  }
  return label;
}

const ALIAS = /^knit:[a-z]+:[0-9a-f]{12}$/;

export function validateAlias(value: unknown): string {
  const alias = text(value, 'link alias');
  if (!ALIAS.test(alias)) throw badRequest(`link alias ${show(alias)} is not of the form knit:<role>:<12 hex digits>`);
  return alias;
}

/**
 * iptables allows 28 characters in a chain name (XT_EXTENSION_MAXNAMELEN 29 with the NUL). Lowercase
 * is allowed because per-network chains end in the network's 12 hex digits (KNIT-IN-4fb789de0a1b).
 */
export function validateChain(value: unknown): string {
  const chain = text(value, 'iptables chain name');
  if (chain.length < 1 || chain.length > 28) throw badRequest(`iptables chain name ${show(chain)} must be 1 to 28 characters long`);
  if (!/^[A-Za-z0-9_-]+$/.test(chain)) throw badRequest(`iptables chain name ${show(chain)} may contain only letters, digits, "_" and "-"`);
  if (chain.startsWith('-')) throw badRequest(`iptables chain name ${show(chain)} must not start with "-"`);
  return chain;
}

/**
 * A sysctl name as a path under /proc/sys: "net.ipv4.ip_forward", or the slash form
 * "net/ipv4/conf/eth0.100/forwarding" that sysctl(8) uses when an interface name holds a dot.
 */
export function sysctlPath(value: unknown): string {
  const name = text(value, 'sysctl name');
  const slashed = name.includes('/');
  const parts = name.split(slashed ? '/' : '.');
  const part = slashed ? /^[A-Za-z0-9_.-]+$/ : /^[A-Za-z0-9_-]+$/;
  if (parts.length < 2 || parts.some((p) => !part.test(p) || p === '.' || p === '..')) {
    throw badRequest(`sysctl name ${show(name)} is not a dotted name like net.ipv4.ip_forward`);
  }
  return parts.join('/');
}

export const isDockerId = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

function id12(id: unknown, what: string): string {
  if (!isDockerId(id)) throw badRequest(`${what} ${show(id)} is not a Docker ID (64 lowercase hex digits)`);
  return id.slice(0, 12);
}

export const bridgeName = (networkId: string): string => `kn-${id12(networkId, 'network ID')}`;

/** Derived from the endpoint ID so that a delete finds both ends without a lookup. */
export function vethNames(endpointId: string): { host: string; peer: string } {
  const id = id12(endpointId, 'endpoint ID');
  return { host: `knh${id}`, peer: `knc${id}` };
}

/** A locally administered unicast MAC derived from an ID (an endpoint's; a host leg's), so replays and re-creations give the same one. */
export function macFor(id: string): string {
  const h = createHash('sha256').update(id).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * An endpoint's MAC: from its IPv4 address where it has one (02:6b, then the four bytes), else from its ID. An
 * address handed out again comes back with the same MAC, so the ARP caches of containers that talked to the
 * previous holder stay right (with a new MAC they would keep sending to the old one until their entry expired:
 * seconds of silence for a new container). Unique wherever its address is; the same on every replay.
 */
export function endpointMac(endpointId: string, ipv4Cidr?: string): string {
  const m = ipv4Cidr ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/\d{1,2})?$/.exec(ipv4Cidr) : null;
  if (!m || m.slice(1).some((o) => Number(o) > 255)) return macFor(endpointId);
  return ['02', '6b', ...m.slice(1).map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

export const vxlanName = (vni: number): string => `knv${validateVni(vni)}`;

export const aliasFor = (role: LinkRole, id: string): string => `knit:${role}:${id12(id, 'ID')}`;
