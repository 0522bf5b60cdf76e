// knit's memory and CPU on each simulated host, from /proc (its own and its reaped children's: ip, bridge, iptables).
import { readFile } from 'node:fs/promises';
import type { ClusterBed, ClusterHost } from './cluster-bed.js';

export interface ProcSample {
  rss: number;
  hwm: number;
  /** knit's own CPU and its reaped children's (ip, bridge, iptables), ms. */
  cpuMs: number;
  childMs: number;
}

/** /proc counts CPU time in clock ticks, 100 a second on Linux (CLK_TCK). */
const TICK_MS = 10;

async function sample(h: ClusterHost): Promise<ProcSample> {
  const [status, stat] = await Promise.all([readFile(`/proc/${h.knit.pid}/status`, 'utf8'), readFile(`/proc/${h.knit.pid}/stat`, 'utf8')]);
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  // Fields after the command name in parentheses: utime is the 14th field, stime, cutime, cstime follow.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), cpuMs: (f[11] + f[12]) * TICK_MS, childMs: (f[13] + f[14]) * TICK_MS };
}

export const sampleAll = (bed: ClusterBed): Promise<ProcSample[]> => Promise.all(bed.hosts.map(sample));

