// The resolver's address on the host's lo: added when missing, marked as knit's, and never taken from anyone else.
import ipaddr from 'ipaddr.js';
import { badRequest, KnitError } from '../errors.js';
import { run } from './exec.js';
import type { Op } from './ops.js';

/**
 * The kernel keeps an IPv4 address's label, so the mark survives knit's restarts (and `kill -9`): a later
 * knit knows which address it added without a file of its own. IPv6 addresses have no labels.
 */
export const KNIT_LABEL = 'lo:knit';
const DEV = 'lo';

/** One IPv4 address of the host, as `ip -j addr show` prints it. */
export interface HostAddress {
  dev: string;
  local: string;
  prefixlen: number;
  label?: string;
}

interface IpAddrLink {
  ifname?: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; label?: string }>;
}

/** Pure: the IPv4 addresses in `ip -j addr show` output. */
export function parseHostAddresses(json: string): HostAddress[] {
  const links = JSON.parse(json) as IpAddrLink[];
  return links.flatMap((l) => (l.addr_info ?? [])
    .filter((a) => a.family === 'inet' && a.local && a.prefixlen !== undefined)
    .map((a) => ({ dev: l.ifname ?? '', local: a.local as string, prefixlen: a.prefixlen as number, label: a.label })));
}

/** KNIT_DNS_ADDRESS as an address for lo: one IPv4 unicast address (labels, knit's mark, exist for IPv4 only). */
export function validateDnsAddress(value: string): string {
  if (!ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw badRequest(`KNIT_DNS_ADDRESS ${JSON.stringify(value)} is not an IPv4 address; give one such as 169.254.53.53, or leave it empty to turn the resolver off`);
  }
  const range = ipaddr.IPv4.parse(value).range();
  if (['unspecified', 'broadcast', 'multicast', 'loopback'].includes(range)) {
    throw badRequest(`KNIT_DNS_ADDRESS ${value} is a ${range} address; containers must reach it through their gateway: use a link-local one such as 169.254.53.53`);
  }
  return ipaddr.IPv4.parse(value).toString();
}

/**
 * Pure: what to change so that the host has `want` (undefined: the resolver is off) and lo holds no other
 * address of knit's. An address that is already on the host, with any label or on any link, is used as it is
 * and never removed; only addresses carrying knit's label are ever deleted.
 */
export function planDnsAddress(a: { want?: string; held: HostAddress[] }): { ops: Op[]; present: boolean; ours: boolean } {
  const ops: Op[] = a.held
    .filter((h) => h.dev === DEV && h.label === KNIT_LABEL && h.local !== a.want)
    .map((h) => ({ op: 'addr-del', dev: DEV, cidr: `${h.local}/${h.prefixlen}` }));
  if (a.want === undefined) return { ops, present: false, ours: false };
  const found = a.held.find((h) => h.local === a.want);
  if (found) return { ops, present: true, ours: found.dev === DEV && found.label === KNIT_LABEL };
  return { ops: [...ops, { op: 'addr-add', dev: DEV, cidr: `${a.want}/32`, label: KNIT_LABEL }], present: true, ours: true };
}

/**
 * Puts the resolver's address on lo when the host lacks it (and removes knit's earlier ones, e.g. after
 * KNIT_DNS_ADDRESS changed or was emptied). Returns whether knit added it now, and whether it is knit's.
 *
 * There is no removal on stop, on purpose: with the address left in place, a query to a stopped knit gets
 * an ICMP port-unreachable and the client (dockerd's embedded resolver) moves on to its next server at
 * once; without it the query follows the default route and the client waits out its timeout (4 s in
 * dockerd) on every lookup until knit is back. Turning the resolver off (empty address) removes it.
 */
export async function ensureDnsAddress(a: { kernel: { apply(ops: Op[]): Promise<void> }; address?: string }): Promise<{ added: boolean; ours: boolean }> {
  const want = a.address === undefined ? undefined : validateDnsAddress(a.address);
  const r = await run({ tool: 'ip', args: ['-j', 'addr', 'show'] });
  if (r.exitCode !== 0) throw new KnitError('internal', `cannot list the host's addresses: ${r.stderr.trim()}`);
  const plan = planDnsAddress({ want, held: parseHostAddresses(r.stdout) });
  if (plan.ops.length) await a.kernel.apply(plan.ops);
  return { added: plan.ops.some((op) => op.op === 'addr-add'), ours: plan.ours };
}
