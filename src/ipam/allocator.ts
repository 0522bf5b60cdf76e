// Pure address bookkeeping for one pool: which addresses are taken and which one to hand out next.
import { type Cidr, contains, usableBounds } from '../addr/cidr.js';

/**
 * Dynamic addresses come from `range` (or the whole subnet), never the network address or the
 * IPv4 broadcast. Allocation is round-robin from the last address handed out, as Docker's own
 * IPAM does, so a just-released address is not reused at once (stale ARP/conntrack entries).
 */
export class AddressBook {
  private readonly used = new Set<bigint>();
  private usedInRange = 0;
  private readonly first: bigint;
  private readonly last: bigint;
  private cursor: bigint;

  constructor(readonly subnet: Cidr, readonly range?: Cidr) {
    const sub = usableBounds(subnet);
    const r = range ? { first: range.base, last: range.base + (1n << BigInt((subnet.family === 4 ? 32 : 128) - range.prefix)) - 1n } : sub;
    this.first = r.first > sub.first ? r.first : sub.first;
    this.last = r.last < sub.last ? r.last : sub.last;
    this.cursor = this.last;
  }

  get capacity(): bigint {
    return this.last >= this.first ? this.last - this.first + 1n : 0n;
  }

  get count(): number {
    return this.used.size;
  }

  inSubnet(ip: bigint): boolean {
    return contains(this.subnet, ip);
  }

  isUsed(ip: bigint): boolean {
    return this.used.has(ip);
  }

  take(ip: bigint): void {
    if (this.used.has(ip)) return;
    this.used.add(ip);
    if (this.isDynamic(ip)) this.usedInRange++;
  }

  release(ip: bigint): void {
    if (this.used.delete(ip) && this.isDynamic(ip)) this.usedInRange--;
  }

  private isDynamic(ip: bigint): boolean {
    return ip >= this.first && ip <= this.last;
  }

  /** The next free dynamic address after the cursor, or undefined when the range is full. */
  next(): bigint | undefined {
    if (this.capacity - BigInt(this.usedInRange) <= 0n) return undefined;
    let ip = this.cursor;
    // Among usedInRange+1 consecutive addresses at least one is free, so this loop is bounded.
    for (let i = 0; i <= this.used.size; i++) {
      ip = ip >= this.last ? this.first : ip + 1n;
      if (!this.used.has(ip)) {
        this.cursor = ip;
        return ip;
      }
    }
    return undefined;
  }

  /** The lowest free address of the subnet (used for a gateway nobody chose). */
  lowestFree(): bigint | undefined {
    const { first, last } = usableBounds(this.subnet);
    for (let ip = first, i = 0; ip <= last && i <= this.used.size; ip++, i++) {
      if (!this.used.has(ip)) return ip;
    }
    return undefined;
  }
}
