// A comparable picture of one namespace's kernel state and of knit's records, to prove that requests changed nothing.
import type { RunResult } from '../../support/proc.js';
import { type Records } from './records.js';

export type Exec = (argv: string[]) => Promise<RunResult>;

export interface Snapshot {
  kernel: Record<string, string[]>;
  records: Records;
}

const json = (r: RunResult): Array<Record<string, unknown>> => (r.stdout.trim() ? JSON.parse(r.stdout) : []);
const pickKeys = (o: Record<string, unknown>, keys: string[]): string => JSON.stringify(keys.map((k) => o[k] ?? null));

/** One sorted line per kernel object, keeping only what a request could change (no counters, no timers). */
export async function kernelState(exec: Exec): Promise<Record<string, string[]>> {
  const [links, addrs, routes, neigh, fdb, v4, v6] = await Promise.all([
    exec(['ip', '-j', '-d', 'link', 'show']),
    exec(['ip', '-j', 'addr', 'show']),
    exec(['ip', '-j', 'route', 'show', 'table', 'all']),
    exec(['ip', '-j', 'neigh', 'show', 'nud', 'permanent']),
    exec(['bridge', '-j', 'fdb', 'show']),
    exec(['iptables-save']),
    exec(['ip6tables-save']),
  ]);
  const rules = (r: RunResult): string[] =>
    r.stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '[0:0]'));
  const kind = (l: Record<string, unknown>) => (l.linkinfo as { info_kind?: string } | undefined)?.info_kind;
  return {
    links: json(links).map((l) => `${pickKeys(l, ['ifname', 'address', 'mtu', 'master', 'ifalias', 'flags'])} ${kind(l) ?? ''}`).sort(),
    addrs: json(addrs).flatMap((l) => ((l.addr_info as Array<Record<string, unknown>>) ?? []).map((a) => `${String(l.ifname)} ${pickKeys(a, ['local', 'prefixlen'])}`)).sort(),
    routes: json(routes).map((r) => pickKeys(r, ['dst', 'dev', 'gateway', 'table', 'protocol', 'type'])).sort(),
    neigh: json(neigh).map((n) => pickKeys(n, ['dst', 'dev', 'lladdr'])).sort(),
    fdb: json(fdb).map((f) => pickKeys(f, ['mac', 'ifname', 'master', 'dst', 'state'])).sort(),
    iptables: rules(v4),
    ip6tables: rules(v6),
  };
}

/** What changed between two snapshots, one line per added or removed object or record. */
export function diff(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const part of Object.keys({ ...before.kernel, ...after.kernel })) {
    const a = new Set(before.kernel[part] ?? []);
    const b = new Set(after.kernel[part] ?? []);
    for (const x of a) if (!b.has(x)) out.push(`${part}: gone: ${x}`);
    for (const x of b) if (!a.has(x)) out.push(`${part}: new: ${x}`);
  }
  for (const [k, v] of before.records) if (after.records.get(k) !== v) out.push(`record ${k}: ${after.records.has(k) ? 'changed' : 'gone'}`);
  for (const k of after.records.keys()) if (!before.records.has(k)) out.push(`record ${k}: new`);
  return out;
}
