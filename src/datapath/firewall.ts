// knit's iptables state as values: chains of rules, rendered into one iptables-restore batch per family.
import { badRequest } from '../errors.js';
import { validateChain, validateIfName } from './names.js';
import { parseCidr, parseIp } from '../addr/cidr.js';

export type Table = 'filter' | 'nat' | 'raw' | 'mangle';

/** One rule: every field that reaches the command line is typed, validated and rendered here. */
export interface Rule {
  in?: string;
  notIn?: string;
  out?: string;
  notOut?: string;
  src?: string;
  notSrc?: string;
  dst?: string;
  notDst?: string;
  proto?: 'tcp' | 'udp' | 'sctp';
  dport?: number | [number, number];
  ctstate?: Array<'RELATED' | 'ESTABLISHED' | 'DNAT' | 'NEW'>;
  dstLocal?: boolean;
  target: string;
  /** For DNAT: "ip:port" or "[ip6]:port". */
  toDestination?: string;
}

export interface Chain {
  table: Table;
  name: string;
  rules: Rule[];
}

/** A jump from a built-in chain into one of knit's, kept first in that chain. */
export interface Jump {
  table: Table;
  from: string;
  to: string;
  rule?: Omit<Rule, 'target'>;
}

const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'MASQUERADE', 'DNAT', 'REJECT']);

function iface(flag: string, name: string | undefined, negate = false): string[] {
  if (name === undefined) return [];
  // A trailing "+" is iptables' interface wildcard; the rest must be a valid interface name.
  validateIfName(name.endsWith('+') ? name.slice(0, -1) : name);
  return negate ? ['!', flag, name] : [flag, name];
}

function addr(flag: string, text: string | undefined, negate = false): string[] {
  if (text === undefined) return [];
  if (text.includes('/')) parseCidr(text, 'rule address', false);
  else parseIp(text);
  return negate ? ['!', flag, text] : [flag, text];
}

function port(p: number): string {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw badRequest(`port ${p} is not between 1 and 65535`);
  return String(p);
}

/** Renders in iptables-save's own order, so a rule can be found again in its output by text. */
export function renderRule(chain: string, r: Rule): string {
  const args = ['-A', validateChain(chain)];
  args.push(...addr('-s', r.src), ...addr('-s', r.notSrc, true), ...addr('-d', r.dst), ...addr('-d', r.notDst, true));
  args.push(...iface('-i', r.in), ...iface('-i', r.notIn, true), ...iface('-o', r.out), ...iface('-o', r.notOut, true));
  if (r.proto) args.push('-p', r.proto);
  if (r.dport !== undefined) {
    if (!r.proto) throw badRequest('a destination port needs a protocol');
    args.push('-m', r.proto, '--dport', Array.isArray(r.dport) ? `${port(r.dport[0])}:${port(r.dport[1])}` : port(r.dport));
  }
  if (r.dstLocal) args.push('-m', 'addrtype', '--dst-type', 'LOCAL');
  if (r.ctstate?.length) args.push('-m', 'conntrack', '--ctstate', r.ctstate.join(','));
  args.push('-j', BUILTIN_TARGETS.has(r.target) ? r.target : validateChain(r.target));
  if (r.toDestination !== undefined) {
    if (!/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\])(:\d{1,5}(-\d{1,5})?)?$/.test(r.toDestination)) {
      throw badRequest(`DNAT destination "${r.toDestination}" is malformed`);
    }
    args.push('--to-destination', r.toDestination);
  }
  return args.join(' ');
}

/**
 * The restore input that makes each given chain hold exactly its rules (declaring a chain
 * under --noflush flushes it), then deletes the chains in `drop` (already unreferenced).
 */
export function renderRestore(chains: Chain[], drop: Array<{ table: Table; name: string }> = []): string {
  const lines: string[] = [];
  for (const table of ['filter', 'nat', 'raw', 'mangle'] as const) {
    const mine = chains.filter((c) => c.table === table);
    const gone = drop.filter((d) => d.table === table);
    if (mine.length === 0 && gone.length === 0) continue;
    lines.push(`*${table}`);
    for (const c of mine) lines.push(`:${validateChain(c.name)} - [0:0]`);
    for (const d of gone) lines.push(`:${validateChain(d.name)} - [0:0]`);
    for (const c of mine) for (const r of c.rules) lines.push(renderRule(c.name, r));
    for (const d of gone) lines.push(`-X ${d.name}`);
    lines.push('COMMIT');
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** The restore lines that put a jump first in its built-in chain (after removing a misplaced one). */
export function renderJump(j: Jump, present: boolean): string {
  const spec = renderRule(j.from, { ...j.rule, target: j.to }).replace(/^-A \S+ /, '');
  return [`*${j.table}`, ...(present ? [`-D ${j.from} ${spec}`] : []), `-I ${j.from} 1 ${spec}`, 'COMMIT', ''].join('\n');
}

/** The rule text iptables-save prints for a jump, to find out whether it is there and first. */
export const jumpText = (j: Jump): string => renderRule(j.from, { ...j.rule, target: j.to });
