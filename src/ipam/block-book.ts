// Pure bookkeeping of one pool on this host: the blocks it holds, the addresses it handed out from them (its
// local ledger), and the addresses of those blocks that have a record in the cluster store (static addresses,
// gateways, records from before blocks). Values in, values out; the store calls live in block-calls.ts.
import { blockOf, type Geometry, usableOf } from './blocks.js';

export class BlockBook {
  /** Held blocks: base address -> the revision of this host's block record. */
  private readonly held = new Map<bigint, number>();
  /** Addresses this host handed out from its blocks (the local ledger), in held blocks or not. */
  private readonly ledger = new Set<bigint>();
  /** Addresses inside held blocks that carry a record in the cluster store. */
  private readonly records = new Set<bigint>();
  /** Taken addresses (ledger or record) per held block, to skip full blocks at once. */
  private readonly used = new Map<bigint, number>();
  /** Ledger addresses per held block: a block with none is empty. */
  private readonly handed = new Map<bigint, number>();
  private cursor?: bigint;
  private sorted?: bigint[];
  /** When the held blocks were last read back from the store (ms). */
  checkedAt = 0;
  /** A block claim in flight: concurrent requests wait for it rather than claim one each. */
  claiming?: Promise<void>;

  constructor(readonly g: Geometry) {}

  /** Held block bases in address order (kept sorted between changes: next() reads them on every call). */
  blocks(): bigint[] {
    this.sorted ??= [...this.held.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.sorted;
  }

  revision(base: bigint): number | undefined {
    return this.held.get(base);
  }

  /** Whether `ip` lies in a block this host holds. */
  holds(ip: bigint): boolean {
    const base = blockOf(this.g, ip);
    return base !== undefined && this.held.has(base);
  }

  inLedger(ip: bigint): boolean {
    return this.ledger.has(ip);
  }

  hasRecord(ip: bigint): boolean {
    return this.records.has(ip);
  }

  isTaken(ip: bigint): boolean {
    return this.ledger.has(ip) || this.records.has(ip);
  }

  own(base: bigint, revision: number): void {
    if (this.held.has(base)) return void this.held.set(base, revision);
    this.held.set(base, revision);
    this.sorted = undefined;
    const { first, last } = usableOf(this.g, base);
    const inside = (ip: bigint) => ip >= first && ip <= last;
    this.used.set(base, [...new Set([...this.ledger, ...this.records])].filter(inside).length);
    this.handed.set(base, [...this.ledger].filter(inside).length);
  }

  /** Stops handing out from a block (released or reclaimed); its ledger addresses stay until released. */
  disown(base: bigint): void {
    this.held.delete(base);
    this.sorted = undefined;
    this.used.delete(base);
    this.handed.delete(base);
    const { first, last } = usableOf(this.g, base);
    for (const ip of this.records) if (ip >= first && ip <= last) this.records.delete(ip);
  }

  /** An address handed out (ledger) or recorded in the store (record). */
  take(ip: bigint, as: 'ledger' | 'record'): void {
    const set = as === 'ledger' ? this.ledger : this.records;
    if (set.has(ip)) return;
    const before = this.isTaken(ip);
    set.add(ip);
    if (!before) this.count(this.used, ip, 1);
    if (as === 'ledger') this.count(this.handed, ip, 1);
  }

  release(ip: bigint, as: 'ledger' | 'record'): void {
    const set = as === 'ledger' ? this.ledger : this.records;
    if (!set.delete(ip)) return;
    if (!this.isTaken(ip)) this.count(this.used, ip, -1);
    if (as === 'ledger') this.count(this.handed, ip, -1);
  }

  private count(counts: Map<bigint, number>, ip: bigint, delta: number): void {
    const base = blockOf(this.g, ip);
    if (base === undefined || !counts.has(base)) return;
    counts.set(base, counts.get(base)! + delta);
  }

  /** Whether some held block has a free address. */
  hasFree(): boolean {
    return this.blocks().some((base) => {
      const { first, last } = usableOf(this.g, base);
      return this.used.get(base)! <= Number(last - first);
    });
  }

  /**
   * The next free address of the held blocks, round-robin after the last one handed out (as Docker's own IPAM,
   * so a just-released address is not reused at once); undefined when every held block is full.
   */
  next(): bigint | undefined {
    for (const { base, from, to } of this.scanOrder()) {
      const { first, last } = usableOf(this.g, base);
      if (this.used.get(base)! > Number(last - first)) continue;
      for (let ip = from; ip <= to; ip++) if (!this.isTaken(ip)) return (this.cursor = ip);
    }
    return undefined;
  }

  /** The held blocks as address spans to look through: after the cursor, the other blocks, up to the cursor. */
  private scanOrder(): Array<{ base: bigint; from: bigint; to: bigint }> {
    const blocks = this.blocks();
    const whole = (base: bigint) => ({ base, from: usableOf(this.g, base).first, to: usableOf(this.g, base).last });
    const cur = this.cursor;
    const at = cur === undefined ? -1 : blocks.indexOf(blockOf(this.g, cur) ?? -1n);
    if (cur === undefined || at < 0) return blocks.map(whole);
    const here = whole(blocks[at]);
    const others = [...blocks.slice(at + 1), ...blocks.slice(0, at)].map(whole);
    return [{ ...here, from: cur + 1n }, ...others, { ...here, to: cur }];
  }

  /** Held blocks with nothing of this host's ledger in them (records do not count: the store keeps those). */
  private emptyBlocks(): bigint[] {
    return this.blocks().filter((base) => this.handed.get(base) === 0);
  }

  /**
   * Empty blocks to give back to the cluster. One empty block stays (hysteresis): a request/release loop
   * would otherwise claim and release a block each time round.
   */
  surplus(): bigint[] {
    return this.emptyBlocks().slice(1);
  }

  /** Every ledger address, with whether its block is still held. */
  ledgerEntries(): Array<{ ip: bigint; held: boolean }> {
    return [...this.ledger].map((ip) => ({ ip, held: this.holds(ip) }));
  }
}
