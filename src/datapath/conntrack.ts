// Forgets connection-tracking flows: to published datagram ports, so a mapping change reaches flows that keep
// sending; and of a removed endpoint's addresses, so their next holder inherits none of its flows.
import { readFile } from 'node:fs/promises';
import { type Family, formatIp, parseIp } from '../addr/cidr.js';
import { describe } from '../errors.js';
import type { Log } from './batch.js';
import { run } from './exec.js';
import { trackedAddresses } from './parse.js';

/** Where the kernel lists this network namespace's tracked flows, and how many there are. */
const TABLE = { list: '/proc/net/nf_conntrack', count: '/proc/sys/net/netfilter/nf_conntrack_count' };
/** Above this many flows, reading the table costs more than asking conntrack to delete blindly. */
const READ_LIMIT = 20_000;

export interface Flow {
  proto: string;
  port: number;
  family: Family;
}

export class Conntrack {
  private missing = false;

  constructor(private readonly log: Log) {}

  /**
   * Forgets the flows to these host ports (UDP and SCTP; TCP flows end on their own). A datagram flow that
   * keeps sending keeps its entry alive, and with it the old destination: flows created before a mapping
   * existed bypass it, and flows to a removed container never reach its successor. Docker does the same when
   * it adds or removes a mapping. Best effort: a missing conntrack tool is reported once.
   */
  async flush(flows: Flow[]): Promise<void> {
    const seen = new Set<string>();
    for (const f of flows) {
      if ((f.proto !== 'udp' && f.proto !== 'sctp') || !Number.isInteger(f.port) || f.port < 1 || f.port > 65535) continue;
      const key = `${f.family}/${f.proto}/${f.port}`;
      if (seen.has(key) || this.missing) continue;
      seen.add(key);
      await this.flushOne(f, key);
    }
  }

  /**
   * Forgets every flow from or to these addresses (a removed endpoint's). A tracked flow outlives its container:
   * the next holder of the address would find its packets accepted as replies (as Docker, which clears an
   * endpoint's flows when it goes). Both directions run at once; best effort, like flush. The table is read
   * first (in-process, no process started): most endpoints leave no flow behind, and then nothing runs.
   */
  async forgetAddresses(addresses: string[]): Promise<void> {
    if (this.missing || !addresses.length) return;
    const jobs: Array<Promise<void>> = [];
    for (const text of await this.tracked([...new Set(addresses)])) {
      const { family, value } = parseIp(text);
      const ip = formatIp(family, value);
      for (const side of ['-s', '-d']) jobs.push(this.flushOne(['-f', family === 4 ? 'ipv4' : 'ipv6', side, ip], `${side} ${ip}`));
    }
    await Promise.all(jobs);
  }

  /** The addresses with a tracked flow; all of them when the table cannot be read or is too long to read. */
  private async tracked(addresses: string[]): Promise<string[]> {
    try {
      const count = Number((await readFile(TABLE.count, 'utf8')).trim());
      if (count === 0) return [];
      if (!(count <= READ_LIMIT)) return addresses;
      return trackedAddresses(await readFile(TABLE.list, 'utf8'), addresses);
    } catch {
      return addresses;
    }
  }

  private async flushOne(f: Flow | string[], key: string): Promise<void> {
    const filter = Array.isArray(f) ? f : ['-f', f.family === 4 ? 'ipv4' : 'ipv6', '-p', f.proto, '--orig-port-dst', String(f.port)];
    try {
      const r = await run({ tool: 'conntrack', args: ['-D', ...filter] });
      // Exit code 1 with "0 flow entries have been deleted" means there was nothing to forget.
      if (r.exitCode !== 0 && !/0 flow entries/.test(r.stderr)) this.log({ event: 'conntrack flush failed', flow: key, error: r.stderr.trim() });
    } catch (err) {
      // Not installed: say so once. Anything else (a timeout) is logged and the next flush tries again.
      if (/not installed/.test(describe(err))) this.missing = true;
      this.log({ event: 'conntrack flush failed: published UDP ports may keep stale flows', error: describe(err) });
    }
  }
}
