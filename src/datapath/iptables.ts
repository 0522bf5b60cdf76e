// Loads and reads iptables rules with iptables-restore/-save (one process per family and call).
import type { Family } from '../addr/cidr.js';
import { badRequest, KnitError } from '../errors.js';
import type { Log } from './batch.js';
import { run, type RunResult } from './exec.js';

const TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);

export class Iptables {
  private wait = true;

  constructor(private readonly log: Log) {}

  /** Loads rules without touching chains the input does not name (--noflush). */
  async restore(family: Family, input: string): Promise<void> {
    const tool = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
    const body = input.endsWith('\n') ? input : `${input}\n`;
    const restore = async (): Promise<RunResult> => {
      const r = await run({ tool, args: [...(this.wait ? ['-w'] : []), '--noflush'], input: body });
      this.log({ event: 'restore', tool, lines: body.split('\n').length - 1, durationMs: r.durationMs, exitCode: r.exitCode });
      return r;
    };
    let r = await restore();
    // iptables before 1.6.2 has no -w for restore; every later one (legacy and nft) takes the xtables lock with it.
    if (r.exitCode !== 0 && this.wait && /invalid option -- 'w'|unrecognized option '(-w|--wait)'/.test(r.stderr)) {
      this.wait = false;
      r = await restore();
    }
    if (r.exitCode !== 0) throw new KnitError('internal', `${tool} failed: ${r.stderr.trim()}`);
  }

  async save(family: Family, table: string): Promise<string> {
    if (!TABLES.has(table)) throw badRequest(`iptables table ${JSON.stringify(table)} is not one of ${[...TABLES].join(', ')}`);
    const tool = family === 4 ? 'iptables-save' : 'ip6tables-save';
    const r = await run({ tool, args: ['-t', table] });
    if (r.exitCode !== 0) throw new KnitError('internal', `${tool} -t ${table} failed: ${r.stderr.trim()}`);
    return r.stdout;
  }
}
