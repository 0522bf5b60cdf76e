// iperf3 between two network namespaces (the host's binary, entered with nsenter, so images need no change).
import { join } from 'node:path';
import { run, spawnLogged, waitFor } from '../spec/support/proc.js';
import { fixed } from './stats.js';

/** A namespace path for nsenter --net=… : a container's (by PID) or a named one. */
export const netnsOfPid = (pid: number): string => `/proc/${pid}/ns/net`;
export const inNetns = (path: string): string[] => ['nsenter', `--net=${path}`, '--'];

export const gbit = (bps: number): string => `${fixed(bps / 1e9, 2)} Gbit/s`;

/**
 * One iperf3 test between two network namespaces (one-off server in `server`, client in `client` for `seconds`
 * after a 1 s warm-up that is left out); bits per second received.
 */
export async function iperfBetween(opts: { server: string; client: string; serverIp: string; seconds: number; logDir: string; port?: number }): Promise<number> {
  const port = String(opts.port ?? 5201);
  const server = spawnLogged([...inNetns(opts.server), 'iperf3', '-s', '-1', '-p', port], {
    logFile: join(opts.logDir, 'iperf3-server.log'),
    capture: true,
  });
  try {
    await waitFor('the iperf3 server to listen', async () => {
      const r = await run([...inNetns(opts.server), 'ss', '-Hltn', `sport = :${port}`], { reject: false, timeoutMs: 5_000 });
      return r.stdout.includes(port);
    }, { timeoutMs: 10_000, intervalMs: 50 });
    const client = await run([...inNetns(opts.client), 'iperf3', '-c', opts.serverIp, '-p', port, '-t', String(opts.seconds), '-O', '1', '-J'], {
      timeoutMs: (opts.seconds + 20) * 1000,
    });
    const bps = JSON.parse(client.stdout)?.end?.sum_received?.bits_per_second;
    if (typeof bps !== 'number') throw new Error(`iperf3 gave no throughput: ${client.stdout.slice(0, 300)}`);
    return bps;
  } finally {
    await server.stop(3_000);
  }
}
