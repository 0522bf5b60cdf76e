// A real upstream DNS server for tests: dnsmasq in a namespace the test made, answering one made-up zone.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hostsDir } from './layout.js';
import { run, spawnLogged, waitFor, type Spawned } from './proc.js';

export interface Upstream {
  ip: string;
  stop(): Promise<void>;
}

/**
 * dnsmasq on `ip` (added with `prefix` to `dev` in `netns`, which gives it the route back to its clients) answering `*.<zone>` with `answer` and nothing else (no resolv.conf,
 * no hosts file): it never forwards anywhere.
 */
export async function startUpstream(o: { netns: string; dev: string; ip: string; prefix: number; zone: string; answer: string }): Promise<Upstream> {
  await run(['ip', '-n', o.netns, 'addr', 'add', `${o.ip}/${o.prefix}`, 'dev', o.dev]);
  const dir = join(hostsDir, `dnsmasq-${o.netns}`);
  await mkdir(dir, { recursive: true });
  const proc: Spawned = spawnLogged([
    'nsenter', `--net=/run/netns/${o.netns}`, '--', 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null',
    // Every other name is NXDOMAIN, as a real upstream answers for names that do not exist (without this, REFUSED).
    '--no-resolv', '--no-hosts', '--local=/#/', `--address=/${o.zone}/${o.answer}`, `--listen-address=${o.ip}`, '--bind-interfaces',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--log-queries', '--log-facility=-',
  ], { logFile: join(dir, 'dnsmasq.log'), env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  await waitFor('dnsmasq to listen', async () => {
    if (!proc.running()) throw new Error(`dnsmasq exited (log: ${proc.logFile})`);
    return (await run(['nsenter', `--net=/run/netns/${o.netns}`, '--', 'ss', '-lun', `src ${o.ip}:53`], { reject: false })).stdout.includes(`${o.ip}:53`);
  }, { timeoutMs: 10_000, intervalMs: 100 });
  return {
    ip: o.ip,
    stop: async () => {
      await proc.stop(5_000);
      await run(['ip', '-n', o.netns, 'addr', 'del', `${o.ip}/${o.prefix}`, 'dev', o.dev], { reject: false });
    },
  };
}
