// Pure: the address behind a reverse-lookup name (in-addr.arpa, ip6.arpa), and addresses in one canonical form.
import ipaddr from 'ipaddr.js';

const V4_SUFFIX = '.in-addr.arpa';
const V6_SUFFIX = '.ip6.arpa';
const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const NIBBLE = /^[0-9a-f]$/;

/**
 * An address as knit's records hold it: IPv4 dotted, IPv6 in RFC 5952 form; an IPv4-mapped IPv6 source
 * (a dual-stack socket's view of an IPv4 client) becomes the IPv4 address.
 */
export function canonicalIp(ip: string): string | undefined {
  try {
    const addr = ipaddr.parse(ip.split('%')[0]);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) return (addr as ipaddr.IPv6).toIPv4Address().toString();
    return addr.toString();
  } catch {
    return undefined;
  }
}

/** The address a PTR question asks about (lower-case name), or undefined when it names no single address. */
export function ptrAddress(name: string): string | undefined {
  if (name.endsWith(V4_SUFFIX)) {
    const octets = name.slice(0, -V4_SUFFIX.length).split('.');
    if (octets.length !== 4 || !octets.every((o) => OCTET.test(o))) return undefined;
    return octets.reverse().join('.');
  }
  if (name.endsWith(V6_SUFFIX)) {
    const nibbles = name.slice(0, -V6_SUFFIX.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => NIBBLE.test(n))) return undefined;
    const hex = nibbles.reverse().join('');
    const groups = Array.from({ length: 8 }, (_, i) => hex.slice(i * 4, i * 4 + 4));
    return canonicalIp(groups.join(':'));
  }
  return undefined;
}
