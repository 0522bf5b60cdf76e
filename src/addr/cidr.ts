// Address arithmetic on IPv4/IPv6 as bigints, with ipaddr.js doing the parsing and printing.
import ipaddr from 'ipaddr.js';
import { badRequest } from '../errors.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const bits = (family: Family): number => (family === 4 ? 32 : 128);

export function parseIp(text: string): { family: Family; value: bigint } {
  if (typeof text !== 'string' || !ipaddr.isValid(text) || text.includes('%')) {
    throw badRequest(`"${String(text)}" is not an IP address`);
  }
  const addr = ipaddr.parse(text);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    throw badRequest(`"${text}" is an IPv4-mapped IPv6 address; give the IPv4 address instead`);
  }
  const family: Family = addr.kind() === 'ipv4' ? 4 : 6;
  if (family === 4 && !ipaddr.IPv4.isValidFourPartDecimal(text)) {
    throw badRequest(`"${text}" is not an IPv4 address in dotted-quad form`);
  }
  let value = 0n;
  for (const byte of addr.toByteArray()) value = (value << 8n) | BigInt(byte);
  return { family, value };
}

export function formatIp(family: Family, value: bigint): string {
  const bytes: number[] = [];
  for (let i = bits(family) / 8 - 1; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** Parses "a.b.c.d/n"; `strict` refuses host bits set (what Docker sends for --subnet). */
export function parseCidr(text: string, what = 'subnet', strict = true): Cidr {
  const m = typeof text === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(text) : null;
  if (!m) throw badRequest(`${what} "${String(text)}" is not in CIDR form (address/prefix)`);
  const { family, value } = parseIp(m[1]);
  const prefix = Number(m[2]);
  if (prefix > bits(family)) throw badRequest(`${what} "${text}" has a prefix longer than ${bits(family)}`);
  const base = value & netmask(family, prefix);
  if (strict && base !== value) {
    throw badRequest(`${what} "${text}" has host bits set; did you mean ${formatCidr({ family, base, prefix })}?`);
  }
  return { family, base, prefix };
}

/** Parses "a.b.c.d/n" keeping the address: the form IPAM answers and Docker sends for endpoints. */
export function parseAddrCidr(text: string, what = 'address'): { ip: bigint; cidr: Cidr } {
  const c = parseCidr(text, what, false);
  const { value } = parseIp(text.split('/')[0]);
  return { ip: value, cidr: c };
}

export function netmask(family: Family, prefix: number): bigint {
  const total = bits(family);
  return ((1n << BigInt(total)) - 1n) ^ ((1n << BigInt(total - prefix)) - 1n);
}

export const size = (c: Cidr): bigint => 1n << BigInt(bits(c.family) - c.prefix);
export const last = (c: Cidr): bigint => c.base + size(c) - 1n;
export const formatCidr = (c: Cidr): string => `${formatIp(c.family, c.base)}/${c.prefix}`;

export function contains(outer: Cidr, ip: bigint): boolean {
  return ip >= outer.base && ip <= last(outer);
}

export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && contains(outer, inner.base);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= last(b) && b.base <= last(a);
}

export const sameCidr = (a: Cidr, b: Cidr): boolean =>
  a.family === b.family && a.base === b.base && a.prefix === b.prefix;

/** The addresses a pool may hand out: not the network address, and not the IPv4 broadcast. */
export function usableBounds(subnet: Cidr): { first: bigint; last: bigint } {
  const hostBits = bits(subnet.family) - subnet.prefix;
  if (subnet.family === 4 && hostBits <= 1) return { first: subnet.base, last: last(subnet) };
  if (subnet.family === 6 && hostBits === 0) return { first: subnet.base, last: subnet.base };
  return { first: subnet.base + 1n, last: subnet.family === 4 ? last(subnet) - 1n : last(subnet) };
}

/** A subnet as one key segment (no '/'): "10.20.0.0_24". */
export const subnetKey = (c: Cidr): string => formatCidr(c).replace('/', '_');
