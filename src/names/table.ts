// The in-memory index the resolver answers from: names and addresses per network key, from every host's records.
import { parseName, type ParsedName } from './records.js';

export interface Addresses {
  v4: string[];
  v6: string[];
}

export class NameTable {
  private readonly records = new Map<string, ParsedName>();
  /** network key -> name -> record keys */
  private readonly byName = new Map<string, Map<string, Set<string>>>();
  /** address -> record keys */
  private readonly byIp = new Map<string, Set<string>>();

  get size(): number {
    return this.records.size;
  }

  /** A record put (value) or deleted (undefined); a malformed value counts as deleted. */
  set(key: string, value: string | undefined): void {
    this.drop(key);
    const r = value === undefined ? undefined : parseName(key, value);
    if (!r) return;
    this.records.set(key, r);
    let names = this.byName.get(r.network);
    if (!names) this.byName.set(r.network, (names = new Map()));
    for (const n of r.names) add(names, n, key);
    for (const ip of [...r.v4, ...r.v6]) add(this.byIp, ip, key);
  }

  /** Every address of every endpoint holding `name` on any of `networks` (an alias on several hosts answers with all). */
  lookup(name: string, networks: string[]): Addresses | undefined {
    const keys = networks.flatMap((n) => [...(this.byName.get(n)?.get(name) ?? [])]);
    if (!keys.length) return undefined;
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    for (const k of keys) {
      const r = this.records.get(k)!;
      r.v4.forEach((a) => v4.add(a));
      r.v6.forEach((a) => v6.add(a));
    }
    return { v4: [...v4].sort(), v6: [...v6].sort() };
  }

  /** The container name of the endpoint holding `ip`, if it is on one of `networks`. */
  reverse(ip: string, networks: string[]): string | undefined {
    for (const k of this.byIp.get(ip) ?? []) {
      const r = this.records.get(k)!;
      if (networks.includes(r.network) && r.names.length) return r.names[0];
    }
    return undefined;
  }

  private drop(key: string): void {
    const old = this.records.get(key);
    if (!old) return;
    this.records.delete(key);
    const names = this.byName.get(old.network);
    for (const n of old.names) if (names) remove(names, n, key);
    if (names?.size === 0) this.byName.delete(old.network);
    for (const ip of [...old.v4, ...old.v6]) remove(this.byIp, ip, key);
  }
}

function add(index: Map<string, Set<string>>, k: string, v: string): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(v);
}

function remove(index: Map<string, Set<string>>, k: string, v: string): void {
  const s = index.get(k);
  s?.delete(v);
  if (s?.size === 0) index.delete(k);
}
