// The one door to the kernel: applies ops (at most one `ip -batch` and one `bridge -batch` process per call,
// concurrent plain `ip` work sharing one, the overlay's entries through two long-lived ones), reads links and
// routes, and fronts conntrack, iptables and sysctl.
import type { Family } from '../addr/cidr.js';
import { KnitError } from '../errors.js';
import { ABSENT } from './batch-plan.js';
import { BatchApplier, batchRunner, type KernelObserver, type Log, type RunBatch } from './batch.js';
import { BatchSessions } from './batch-session.js';
import { Conntrack, type Flow } from './conntrack.js';
import { run, type RunResult } from './exec.js';
import { GroupCommit } from './group-commit.js';
import { Iptables } from './iptables.js';
import { validateIfName } from './names.js';
import type { LinkState, Op } from './ops.js';
import { parseLinks, parseRouteDsts, parseVxlanEntries, type VxlanEntries } from './parse.js';
import { renderBatches } from './render.js';
import { readSysctl, writeSysctl } from './sysctl.js';
import { WireGuard } from './wireguard.js';

export interface KernelOptions {
  log?: Log;
  /** Told of each batch process and each failed change (the daemon's metrics). */
  observer?: KernelObserver;
}

export class Kernel {
  private readonly batches: BatchApplier;
  private readonly shared: GroupCommit;
  /** Neighbour and forwarding entries only: each host programs every other host's endpoints, so they are the most. */
  private readonly entries: BatchApplier;
  private readonly sessions = new BatchSessions();
  private readonly conntrack: Conntrack;
  private readonly iptables: Iptables;
  private readonly observer?: KernelObserver;
  /** WireGuard devices, keys and peers (encrypted overlays). */
  readonly wireguard = new WireGuard();

  constructor(options: KernelOptions = {}) {
    const log = options.log ?? (() => undefined);
    this.observer = options.observer;
    const spawned = batchRunner(log, options.observer);
    // A link knit deletes may come back under its name: the sessions' cached link indexes go with it.
    const runBatch: RunBatch = (a): Promise<RunResult> => {
      if (a.tool === 'ip' && a.lines.some((l) => l.text.startsWith('link del '))) this.sessions.recycle();
      return spawned(a);
    };
    this.batches = new BatchApplier(runBatch, log);
    this.entries = new BatchApplier(batchRunner(log, options.observer, this.sessions.run), log);
    this.shared = new GroupCommit(runBatch, (applied) => this.batches.undo(applied));
    this.conntrack = new Conntrack(log);
    this.iptables = new Iptables(log);
  }

  /** Applies every op or, when one fails, none: the ones before it are undone, and the error names it. */
  async apply(ops: Op[]): Promise<void> {
    const batches = renderBatches(ops);
    if (entriesOnly(ops)) return this.told('apply', this.entries.apply(ops, batches));
    // Neighbour lines carry no line number when they fail, so only their own batch can tell which call failed.
    const shared = !batches.bridge.length && batches.ip.length && !ops.some((op) => op.op.startsWith('neigh-'));
    return this.told('apply', shared ? this.shared.submit(ops, batches.ip) : this.batches.apply(ops, batches));
  }

  /** Best-effort teardown: every op is tried, and "already gone" is success. */
  async remove(ops: Op[]): Promise<void> {
    return this.told('remove', (entriesOnly(ops) ? this.entries : this.batches).remove(ops));
  }

  /** Ends the long-lived batch processes (they also end by themselves when knit dies or leaves them idle). */
  close(): void {
    this.sessions.close();
  }

  /** The observer hears of a failure the caller gets; the caller gets it unchanged. */
  private async told(what: 'apply' | 'remove', work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (err) {
      this.observer?.failed(what);
      throw err;
    }
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

  /** IPv4 networks directly attached to this host (main table, scope link), which IPAM must not hand out. */
  async onLinkRoutes(): Promise<string[]> {
    const r = await run({ tool: 'ip', args: ['-j', '-4', 'route', 'show', 'table', 'main', 'scope', 'link'] });
    if (r.exitCode !== 0) throw new KnitError('internal', `listing routes failed: ${r.stderr.trim()}`);
    return parseRouteDsts(r.stdout);
  }

  /** Forgets tracked flows to these published ports, and every flow from or to these addresses. */
  async flushConntrack(flows: Flow[], addresses: string[] = []): Promise<void> {
    await Promise.all([this.conntrack.flush(flows), this.conntrack.forgetAddresses(addresses)]);
  }

  /** Loads rules without touching chains the input does not name (--noflush). */
  async iptablesRestore(family: Family, input: string): Promise<void> {
    return this.iptables.restore(family, input);
  }

  async iptablesSave(family: Family, table: string): Promise<string> {
    return this.iptables.save(family, table);
  }

  /** Reads a sysctl straight from /proc/sys. */
  async sysctl(name: string): Promise<string> {
    return readSysctl(name);
  }

  /** Sets a sysctl unless it already holds the value. */
  async setSysctl(name: string, value: string): Promise<void> {
    return writeSysctl(name, value);
  }
}

/** Neighbour and forwarding entries, nothing else: the ops the long-lived sessions take. */
function entriesOnly(ops: Op[]): boolean {
  return ops.length > 0 && ops.every((op) => op.op.startsWith('neigh-') || op.op.startsWith('fdb-'));
}
