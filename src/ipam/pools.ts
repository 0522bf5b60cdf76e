// Pure pool logic: the KNIT_DEFAULT_POOLS ranges, choosing a free subnet, overlap rules, pool IDs.
import { badRequest } from '../errors.js';
import { type Cidr, type Family, formatCidr, overlaps, parseCidr, sameCidr, size } from '../addr/cidr.js';

/** A range subnets are carved from when the user gives none: `base` split into /`size` pools. */
export interface PoolSpec {
  base: Cidr;
  size: number;
}

export const ADDRESS_SPACES = { local: 'knit-local', global: 'knit-global' } as const;

/** "10.208.0.0/12:24,fd6b:6e69:7400::/40:64" */
export function parsePoolSpecs(text: string): PoolSpec[] {
  const specs = text.split(',').map((part) => part.trim()).filter(Boolean).map(parsePoolSpec);
  if (specs.length === 0) throw badRequest('KNIT_DEFAULT_POOLS is empty; give BASE/LEN:SIZE[,...]');
  return specs;
}

function parsePoolSpec(text: string): PoolSpec {
  const at = text.lastIndexOf(':');
  const sizeText = text.slice(at + 1);
  if (at < 0 || !/^\d{1,3}$/.test(sizeText)) {
    throw badRequest(`KNIT_DEFAULT_POOLS entry "${text}" is not BASE/LEN:SIZE (e.g. 10.208.0.0/12:24)`);
  }
  const base = parseCidr(text.slice(0, at), `KNIT_DEFAULT_POOLS base`);
  const poolSize = Number(sizeText);
  const max = base.family === 4 ? 30 : 126;
  if (poolSize < base.prefix || poolSize > max) {
    throw badRequest(`KNIT_DEFAULT_POOLS entry "${text}": size must be between ${base.prefix} and ${max}`);
  }
  return { base, size: poolSize };
}

/**
 * The first /size subnet of the default ranges (in order) that overlaps nothing in `avoid`.
 * `avoid` holds pools knit already gave out plus the host's on-link networks.
 */
export function chooseSubnet(specs: PoolSpec[], family: Family, avoid: Cidr[]): Cidr | undefined {
  for (const spec of specs.filter((s) => s.base.family === family)) {
    const step = 1n << BigInt((family === 4 ? 32 : 128) - spec.size);
    const end = spec.base.base + size(spec.base);
    const relevant = avoid.filter((a) => overlaps(a, spec.base)).sort((a, b) => (a.base < b.base ? -1 : 1));
    let candidate = spec.base.base;
    while (candidate < end) {
      const c: Cidr = { family, base: candidate, prefix: spec.size };
      const clash = relevant.find((a) => overlaps(a, c));
      if (!clash) return c;
      // Skip past the clashing network in one step, aligned to the pool size.
      const clashEnd = clash.base + size(clash);
      candidate = clashEnd > candidate + step ? ((clashEnd + step - 1n) / step) * step : candidate + step;
    }
  }
  return undefined;
}

/** dockerd 29+ asks for "any /N from your default pools" as RequestPool "0.0.0.0/N" or "::/N" (moby#50114). */
export const isAnySubnet = (c: Cidr): boolean => c.base === 0n && c.prefix > 0;

/**
 * The default ranges re-cut into /size pools (for an "any /N" request): ranges narrower than /size cannot hold
 * one and are left out. Empty when none can, or the size leaves no usable addresses.
 */
export function resized(specs: PoolSpec[], family: Family, poolSize: number): PoolSpec[] {
  if (poolSize > (family === 4 ? 30 : 126)) return [];
  return specs.filter((s) => s.base.family === family && s.base.prefix <= poolSize).map((s) => ({ base: s.base, size: poolSize }));
}

/** The first pool in `held` that overlaps `subnet` without being the same subnet, if any. */
export function overlapping(subnet: Cidr, held: Cidr[]): Cidr | undefined {
  return held.find((h) => overlaps(h, subnet) && !sameCidr(h, subnet));
}

/** Whether a pool record's stored ip-range (absent for none) is `range`. */
export const sameRange = (stored: string | undefined, range: Cidr | undefined): boolean =>
  (stored ?? '') === (range ? formatCidr(range) : '');

/** Deterministic pool IDs: "knit:<subnet>" or "knit:<subnet>:<range>" (IPv6 subnets hold ':' too). */
export function poolId(subnet: Cidr, range?: Cidr): string {
  return range ? `knit:${formatCidr(subnet)}~${formatCidr(range)}` : `knit:${formatCidr(subnet)}`;
}

export function parsePoolId(id: unknown): { subnet: Cidr; range?: Cidr } {
  if (typeof id !== 'string' || !id.startsWith('knit:') || id.length > 120) {
    throw badRequest(`PoolID "${String(id).slice(0, 120)}" is not a knit pool`);
  }
  const [subnetText, rangeText, extra] = id.slice(5).split('~');
  if (extra !== undefined) throw badRequest(`PoolID "${id}" is not a knit pool`);
  const subnet = parseCidr(subnetText, 'PoolID subnet');
  return rangeText === undefined ? { subnet } : { subnet, range: parseCidr(rangeText, 'PoolID range') };
}

