// The etcd half of the IPAM benchmark: a real etcd inside the bench host, knit restarted on it. Skipped, with
// the reason, while knit cannot use etcd (no openEtcdStore in dist/, or knit refuses KNIT_STORE=etcd://).
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { run } from '../spec/support/proc.js';
import type { Bed } from './bed.js';
import { BenchKnit, builtModule } from './knit-run.js';
import type { Row } from './report.js';

interface EtcdServer {
  endpoint: string;
  dispose(): Promise<void>;
}

type StartEtcd = (opts: { netns?: string }) => Promise<EtcdServer>;

/** Why the etcd part cannot run yet, or undefined when it can. */
async function missingPiece(): Promise<string | undefined> {
  const built = builtModule('store/etcd.js');
  if (!existsSync(built)) return 'dist/store/etcd.js does not exist (no etcd store built)';
  const mod = (await import(pathToFileURL(built).href)) as Record<string, unknown>;
  if (typeof mod.openEtcdStore !== 'function') return 'dist/store/etcd.js has no openEtcdStore';
  return undefined;
}

const skipped = (why: string) => ({ rows: [{ metric: 'Request+Release pairs/s (etcd)', knit: 'skipped' }], notes: [`etcd part skipped: ${why}.`] });

/** Starts etcd in the host's namespace, restarts knit on it, and hands knit's socket to `measure`. */
export async function ipamOnEtcd(bed: Bed, measure: (socket: string) => Promise<Row[]>): Promise<{ rows: Row[]; notes: string[] }> {
  const missing = await missingPiece();
  if (missing) return skipped(missing);
  const { startEtcd } = (await import('../spec/support/etcd.js')) as { startEtcd: StartEtcd };
  const etcd = await startEtcd({ netns: bed.host.netns });
  await bed.knit.stop();
  const knit = new BenchKnit(bed.host, { KNIT_STORE: `etcd://${etcd.endpoint}` }, 'knit-etcd-state');
  try {
    try {
      await knit.start();
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      const said = text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? text;
      return skipped(`knit did not start with KNIT_STORE=etcd://${etcd.endpoint}: ${said.slice(0, 300)}`);
    }
    const rows = await measure(knit.socket);
    return { rows, notes: [`etcd: ${await etcdVersion()} on the bench host's loopback, one member, data in a temp dir; knit restarted with KNIT_STORE=etcd://${etcd.endpoint}.`] };
  } finally {
    await knit.stop().catch(() => undefined);
    await etcd.dispose();
  }
}

async function etcdVersion(): Promise<string> {
  const r = await run(['etcd', '--version'], { reject: false });
  const version = /etcd Version: (\S+)/.exec(r.stdout)?.[1];
  return version ? `etcd ${version}` : 'etcd';
}
