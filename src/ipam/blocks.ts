// Pure block geometry: how a pool's dynamic addresses are cut into blocks a host claims whole, and which
// free block a host claims next. Values in, values out.
import { type Cidr, formatCidr, type Family, usableBounds } from '../addr/cidr.js';

/** A block is at most 64 addresses: few enough that a host rarely holds many it does not use. */
const LARGEST = { 4: 26, 6: 122 } as const;
/** Every pool has at least 16 blocks, so that a pool shared by several hosts is not taken by one claim. */
const MIN_BLOCKS_BITS = 4;
/** A block of fewer than 8 addresses saves too little: such small pools keep one claim per address. */
const MIN_BLOCK_BITS = 3;

const bits = (family: Family): number => (family === 4 ? 32 : 128);

/** Where a pool's dynamic addresses come from and how they are cut into blocks. */
export interface Geometry {
  subnet: Cidr;
  range?: Cidr;
  /** The ip-range, or the whole subnet: what the blocks tile. */
  space: Cidr;
  /** The prefix length of one block. */
  prefix: number;
  /** The first and last address a block may hand out (no network or broadcast address, nothing outside the range). */
  first: bigint;
  last: bigint;
}

/** The blocks of a pool, or undefined when the pool is too small for blocks (it keeps one claim per address). */
export function geometry(subnet: Cidr, range?: Cidr): Geometry | undefined {
  const space = range ?? subnet;
  const prefix = Math.max(LARGEST[space.family], space.prefix + MIN_BLOCKS_BITS);
  if (prefix > bits(space.family) - MIN_BLOCK_BITS) return undefined;
  const usable = usableBounds(subnet);
  const spaceLast = space.base + blockSize(space.family, space.prefix) - 1n;
  const first = space.base > usable.first ? space.base : usable.first;
  const last = spaceLast < usable.last ? spaceLast : usable.last;
  return { subnet, range, space, prefix, first, last };
}

const blockSize = (family: Family, prefix: number): bigint => 1n << BigInt(bits(family) - prefix);

/** How many addresses one block spans. */
export const spanOf = (g: Geometry): bigint => blockSize(g.space.family, g.prefix);

/** How many blocks the pool has. */
export const blockCount = (g: Geometry): bigint => 1n << BigInt(g.prefix - g.space.prefix);

/** The base address of the block `ip` lies in, or undefined when `ip` is not a dynamic address of the pool. */
export function blockOf(g: Geometry, ip: bigint): bigint | undefined {
  if (ip < g.first || ip > g.last) return undefined;
  return g.space.base + ((ip - g.space.base) / spanOf(g)) * spanOf(g);
}

/** The addresses of the block at `base` that may be handed out. */
export function usableOf(g: Geometry, base: bigint): { first: bigint; last: bigint } {
  const end = base + spanOf(g) - 1n;
  return { first: base > g.first ? base : g.first, last: end < g.last ? end : g.last };
}

/** The block as CIDR text, for records and messages. */
export const blockText = (g: Geometry, base: bigint): string => formatCidr({ family: g.space.family, base, prefix: g.prefix });

/**
 * The next block to claim: the highest one not in `held`. From the top down, because users choose static
 * addresses (--ip) mostly low in a subnet, and the gateway is the lowest: those stay outside blocks longest.
 * Bounded by the number of held blocks, whatever the pool's size.
 */
export function freeBlock(g: Geometry, held: Set<bigint>): bigint | undefined {
  const span = spanOf(g);
  const count = blockCount(g);
  for (let i = 0n; i < count && i <= BigInt(held.size); i++) {
    const base = g.space.base + (count - 1n - i) * span;
    const { first, last } = usableOf(g, base);
    if (!held.has(base) && first <= last) return base;
  }
  return undefined;
}
