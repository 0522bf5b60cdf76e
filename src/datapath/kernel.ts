// Applies kernel operations: at most one `ip -batch` and one `bridge -batch` process per call (concurrent
// plain `ip` work shares one), undoing a half-applied batch.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { badRequest, describe, KnitError, unavailable } from '../errors.js';
import { run, type RunResult } from './exec.js';
import { sysctlPath, validateIfName } from './names.js';
import type { LinkState, Op } from './ops.js';
import { type BatchFailure, parseBatchErrors, parseLinks, parseRouteDsts, parseVxlanEntries, type VxlanEntries } from './parse.js';
import { type BatchLine, type BatchTool, describeOp, renderBatches, undoOp } from './render.js';

export type Family = 4 | 6;

export interface KernelOptions {
  log?: (line: object) => void;
}

// Errors that mean "already gone": teardown is idempotent because dockerd replays deletes.
const ABSENT = /Cannot find device|No such file or directory|not found/i;
const TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);
const PROC_SYS = '/proc/sys';

/** The ops of `lines` before the failed one (an op whose first lines succeeded counts), in order, each once. */
function opsBefore(lines: BatchLine[], end: number): number[] {
  return [...new Set(lines.slice(0, end).map((l) => l.index))];
}

/**
 * Which ops must be undone and which one failed. With no line number, ip stopped inside a neighbour
 * line (they are rendered last): everything before them succeeded, and undoing every neighbour op is
 * safe because a neighbour delete is an idempotent flush.
 */
function locate(a: { ops: Op[]; lines: BatchLine[]; failure: BatchFailure }): { done: number[]; failed?: number } {
  const { ops, lines, failure } = a;
  if (failure.line !== undefined) return { done: opsBefore(lines, failure.line - 1), failed: lines[failure.line - 1]?.index };
  const neigh = lines.filter((l) => ops[l.index].op.startsWith('neigh-')).map((l) => l.index);
  if (!neigh.length) return { done: [] };
  return { done: opsBefore(lines, lines.length), failed: neigh.length === 1 ? neigh[0] : undefined };
}

/** The error of a batch: what failed, the tool's words, and a note if undoing the earlier steps failed too. */
const failedOp = (what: string, failure: BatchFailure, undone: string): KnitError =>
  new KnitError('internal', `${what} failed: ${failure.words}${undone}`);

/** A call waiting for a shared `ip` batch. */
interface SharedCall {
  ops: Op[];
  lines: BatchLine[];
  settle: (err?: Error) => void;
}

/** The most calls one shared `ip` batch takes. */
const MAX_SHARED = 64;

export class Kernel {
  private readonly log: (line: object) => void;
  private readonly waiting: SharedCall[] = [];
  private flushing = false;
  private iptablesWait = true;
  private conntrackMissing = false;

  constructor(options: KernelOptions = {}) {
    this.log = options.log ?? (() => undefined);
  }

  /** Applies every op or, when one fails, none: the ones before it are undone, and the error names it. */
  async apply(ops: Op[]): Promise<void> {
    const batches = renderBatches(ops);
    if (!batches.bridge.length && batches.ip.length && !ops.some((op) => op.op.startsWith('neigh-'))) {
      return this.applyShared(ops, batches.ip);
    }
    const applied: number[] = [];
    for (const tool of ['ip', 'bridge'] as const) {
      const lines = batches[tool];
      if (!lines.length) continue;
      const r = await this.batch({ tool, lines, force: false });
      if (r.exitCode === 0) {
        applied.push(...opsBefore(lines, lines.length));
        continue;
      }
      const failure = parseBatchErrors(r.stderr, r.exitCode)[0];
      const { done, failed } = locate({ ops, lines, failure });
      applied.push(...done);
      const undone = await this.undo(applied.map((i) => ops[i]));
      throw failedOp(failed === undefined ? `running ${lines.length} ${tool} commands` : describeOp(ops[failed]), failure, undone);
    }
  }

  /**
   * Plain `ip` work of concurrent calls shares one process (group commit): while one batch runs, the
   * calls that arrive wait and then go together. A burst of 50 container starts made 50 `ip` processes
   * (about 10 ms of CPU each here, most of it on knit's side); an idle host still runs each call at once.
   */
  private applyShared(ops: Op[], lines: BatchLine[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ ops, lines, settle: (err) => (err ? reject(err) : resolve()) });
      if (!this.flushing) void this.flushShared();
    });
  }

  private async flushShared(): Promise<void> {
    this.flushing = true;
    try {
      while (this.waiting.length) {
        const group = this.waiting.splice(0, MAX_SHARED);
        // Nothing may leave a caller waiting forever (a promise settles once: a second settle is a no-op).
        await this.runShared(group).catch((err: Error) => group.forEach((call) => call.settle(err)));
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * One `ip -batch` (stopping at the first error) for the calls of `group`, their lines one after the
   * other. Calls wholly before a failing line succeeded; the failing call's earlier ops are undone and it
   * gets the error; the calls after it never ran and wait for the next batch.
   */
  private async runShared(group: SharedCall[]): Promise<void> {
    const starts: number[] = [];
    const merged: BatchLine[] = [];
    for (const call of group) {
      starts.push(merged.length);
      merged.push(...call.lines);
    }
    // A spawn failure rejects here, and flushShared hands it to every call of the group.
    const r = await this.batch({ tool: 'ip', lines: merged, force: false });
    if (r.exitCode === 0) return group.forEach((call) => call.settle());
    const failure = parseBatchErrors(r.stderr, r.exitCode)[0];
    const at = failure.line === undefined || failure.line > merged.length ? -1 : failure.line - 1;
    let culprit = -1;
    if (at >= 0) starts.forEach((start, i) => void (start <= at && (culprit = i)));
    if (culprit < 0) {
      // ip named no line (as a lone call's batch, nothing is undone: an op that never ran must not be taken back).
      for (const call of group) call.settle(failedOp(`running ${call.lines.length} ip commands`, failure, ''));
      return;
    }
    group.slice(0, culprit).forEach((call) => call.settle());
    const call = group[culprit];
    const within = at - starts[culprit];
    const undone = await this.undo(opsBefore(call.lines, within).map((i) => call.ops[i]));
    call.settle(failedOp(describeOp(call.ops[call.lines[within].index]), failure, undone));
    this.waiting.unshift(...group.slice(culprit + 1));
  }

  /** Takes back applied ops, last first; returns a note for the error message when that fails too. */
  private async undo(applied: Op[]): Promise<string> {
    const undo = applied.reverse().flatMap((op) => undoOp(op) ?? []);
    if (!undo.length) return '';
    try {
      await this.remove(undo);
      return '';
    } catch (err) {
      this.log({ event: 'undo failed', error: describe(err) });
      return `; undoing the earlier steps also failed: ${describe(err)}`;
    }
  }

  /** Best-effort teardown: every op is tried, and "already gone" is success. */
  async remove(ops: Op[]): Promise<void> {
    const batches = renderBatches(ops);
    const problems: string[] = [];
    // Forwarding entries first: they live on links that the ip batch may delete.
    for (const tool of ['bridge', 'ip'] as const) {
      const lines = batches[tool];
      if (!lines.length) continue;
      const r = await this.batch({ tool, lines, force: true });
      if (r.exitCode === 0) continue;
      for (const f of parseBatchErrors(r.stderr, r.exitCode)) {
        if (ABSENT.test(f.words)) continue;
        const line = f.line === undefined ? undefined : lines[f.line - 1];
        problems.push(`${line ? describeOp(ops[line.index]) : `running ${tool} commands`} failed: ${f.words}`);
      }
    }
    if (problems.length) throw new KnitError('internal', problems.join('; '));
  }

  private async batch(a: { tool: BatchTool; lines: BatchLine[]; force: boolean }): Promise<RunResult> {
    const args = a.force ? ['-force', '-batch', '-'] : ['-batch', '-'];
    const r = await run({ tool: a.tool, args, input: a.lines.map((l) => `${l.text}\n`).join('') });
    this.log({ event: 'batch', tool: a.tool, force: a.force, lines: a.lines.length, durationMs: r.durationMs, exitCode: r.exitCode });
    return r;
  }

  /** Every link in this namespace with its kind, alias, master, MTU, state, MAC and global addresses. */
  async links(): Promise<LinkState[]> {
    const r = await run({ tool: 'ip', args: ['-j', '-d', 'addr', 'show'] });
    if (r.exitCode !== 0) throw new KnitError('internal', `listing links failed: ${r.stderr.trim()}`);
    return parseLinks(r.stdout);
  }

  /** The remote entries a VXLAN device holds now (after a restart, knit diffs against these, not against memory). */
  async vxlanEntries(dev: string): Promise<VxlanEntries> {
    const name = validateIfName(dev);
    const [fdb, neigh] = await Promise.all([
      run({ tool: 'bridge', args: ['-j', 'fdb', 'show', 'dev', name] }),
      run({ tool: 'ip', args: ['-j', 'neigh', 'show', 'dev', name] }),
    ]);
    if (fdb.exitCode !== 0 || neigh.exitCode !== 0) {
      if (ABSENT.test(fdb.stderr + neigh.stderr)) return { fdb: new Set(), neigh: new Map() };
      throw new KnitError('internal', `listing the entries of ${name} failed: ${(fdb.stderr + neigh.stderr).trim()}`);
    }
    return parseVxlanEntries(fdb.stdout, neigh.stdout);
  }

  /**
   * Forgets the connection-tracking flows to these host ports (UDP and SCTP; TCP flows end on their own).
   * A datagram flow that keeps sending keeps its entry alive, and with it the old destination: flows created
   * before a mapping existed bypass it, and flows to a removed container never reach its successor. Docker
   * does the same when it adds or removes a mapping. Best effort: a missing conntrack tool is reported once.
   */
  async flushConntrack(flows: Array<{ proto: string; port: number; family: Family }>): Promise<void> {
    const seen = new Set<string>();
    for (const f of flows) {
      if ((f.proto !== 'udp' && f.proto !== 'sctp') || !Number.isInteger(f.port) || f.port < 1 || f.port > 65535) continue;
      const key = `${f.family}/${f.proto}/${f.port}`;
      if (seen.has(key) || this.conntrackMissing) continue;
      seen.add(key);
      try {
        const r = await run({ tool: 'conntrack', args: ['-D', '-f', f.family === 4 ? 'ipv4' : 'ipv6', '-p', f.proto, '--orig-port-dst', String(f.port)] });
        // Exit code 1 with "0 flow entries have been deleted" means there was nothing to forget.
        if (r.exitCode !== 0 && !/0 flow entries/.test(r.stderr)) this.log({ event: 'conntrack flush failed', flow: key, error: r.stderr.trim() });
      } catch (err) {
        // Not installed: say so once. Anything else (a timeout) is logged and the next flush tries again.
        if (/not installed/.test(describe(err))) this.conntrackMissing = true;
        this.log({ event: 'conntrack flush failed: published UDP ports may keep stale flows', error: describe(err) });
      }
    }
  }

  /** IPv4 networks directly attached to this host (main table, scope link), which IPAM must not hand out. */
  async onLinkRoutes(): Promise<string[]> {
    const r = await run({ tool: 'ip', args: ['-j', '-4', 'route', 'show', 'table', 'main', 'scope', 'link'] });
    if (r.exitCode !== 0) throw new KnitError('internal', `listing routes failed: ${r.stderr.trim()}`);
    return parseRouteDsts(r.stdout);
  }

  /** Loads rules without touching chains the input does not name (--noflush). */
  async iptablesRestore(family: Family, input: string): Promise<void> {
    const tool = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
    const body = input.endsWith('\n') ? input : `${input}\n`;
    const restore = async (): Promise<RunResult> => {
      const r = await run({ tool, args: [...(this.iptablesWait ? ['-w'] : []), '--noflush'], input: body });
      this.log({ event: 'restore', tool, lines: body.split('\n').length - 1, durationMs: r.durationMs, exitCode: r.exitCode });
      return r;
    };
    let r = await restore();
    // iptables before 1.6.2 has no -w for restore; every later one (legacy and nft) takes the xtables lock with it.
    if (r.exitCode !== 0 && this.iptablesWait && /invalid option -- 'w'|unrecognized option '(-w|--wait)'/.test(r.stderr)) {
      this.iptablesWait = false;
      r = await restore();
    }
    if (r.exitCode !== 0) throw new KnitError('internal', `${tool} failed: ${r.stderr.trim()}`);
  }

  async iptablesSave(family: Family, table: string): Promise<string> {
    if (!TABLES.has(table)) throw badRequest(`iptables table ${JSON.stringify(table)} is not one of ${[...TABLES].join(', ')}`);
    const tool = family === 4 ? 'iptables-save' : 'ip6tables-save';
    const r = await run({ tool, args: ['-t', table] });
    if (r.exitCode !== 0) throw new KnitError('internal', `${tool} -t ${table} failed: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Reads a sysctl straight from /proc/sys: no process. */
  async sysctl(name: string): Promise<string> {
    try {
      return (await readFile(join(PROC_SYS, sysctlPath(name)), 'utf8')).trim();
    } catch (err) {
      if (err instanceof KnitError) throw err;
      throw new KnitError('internal', `cannot read sysctl ${name}: ${describe(err)}`, { cause: err });
    }
  }

  /** Sets a sysctl unless it already holds the value; a read-only /proc/sys (a managed plugin) gets a message saying what to do. */
  async setSysctl(name: string, value: string): Promise<void> {
    if (!/^[A-Za-z0-9_.:-]+$/.test(value)) throw badRequest(`sysctl value ${JSON.stringify(value)} for ${name} is malformed`);
    const current = await this.sysctl(name);
    if (current === value) return;
    try {
      await writeFile(join(PROC_SYS, sysctlPath(name)), value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
        throw unavailable(
          `${name} is ${current} but knit needs ${value}, and /proc/sys cannot be written here (as in a managed plugin); ` +
            `set it on the host: sysctl -w ${name}=${value}`,
          err,
        );
      }
      throw new KnitError('internal', `cannot set sysctl ${name} to ${value}: ${describe(err)}`, { cause: err });
    }
  }
}
