// knit's memory and CPU on each simulated host, from /proc (its own and its children's: ip, bridge, iptables; the
// long-lived ip and bridge batch sessions counted while they run, and through knit's own record once reaped).
import { readFile } from 'node:fs/promises';
import type { ClusterBed, ClusterHost } from './cluster-bed.js';

export interface ProcSample {
  rss: number;
  hwm: number;
  /** knit's own CPU, ms. */
  cpuMs: number;
  /** Its children's: the reaped ones (ip, bridge, iptables) and the live ones (batch sessions), ms. */
  childMs: number;
}

/** /proc counts CPU time in clock ticks, 100 a second on Linux (CLK_TCK). */
const TICK_MS = 10;

async function sample(h: ClusterHost): Promise<ProcSample> {
  const [status, stat] = await Promise.all([readFile(`/proc/${h.knit.pid}/status`, 'utf8'), readFile(`/proc/${h.knit.pid}/stat`, 'utf8')]);
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const f = fields(stat);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), cpuMs: (f[11] + f[12]) * TICK_MS, childMs: (f[13] + f[14]) * TICK_MS + (await liveChildrenMs(h.knit.pid)) };
}

/** Fields after the command name in parentheses: utime is the 14th field, stime, cutime, cstime follow. */
const fields = (stat: string): number[] => stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);

/** CPU of the children still running (a child that exits meanwhile is left out here and counted once reaped). */
async function liveChildrenMs(pid: number): Promise<number> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean);
  const stats = await Promise.all(children.map((c) => readFile(`/proc/${c}/stat`, 'utf8').catch(() => undefined)));
  return stats.reduce((sum, st) => {
    if (!st) return sum;
    const f = fields(st);
    return sum + (f[11] + f[12] + f[13] + f[14]) * TICK_MS;
  }, 0);
}

export const sampleAll = (bed: ClusterBed): Promise<ProcSample[]> => Promise.all(bed.hosts.map(sample));

