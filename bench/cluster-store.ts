// The cluster benchmark's store (KNIT_BENCH_STORE): etcd 3.4 in the underlay's namespace, its counters from its own
// /metrics; or the Consul test server of spec/support (a double of Consul's HTTP API, in this process, on a veth
// from the root namespace to the underlay), its counters from its request log mapped onto etcd's names: KV reads
// as Range, blocking KV reads as Watch, KV writes and transactions as Txn, session renewals as KeepAlive, blocking
// reads answered because their prefix changed as watch events (with their bytes: what a change costs the watchers,
// without the answers of queries whose wait ran out).
import { startConsulServer } from '../spec/support/consul-server.js';
import { startEtcd } from '../spec/support/etcd.js';
import { run } from '../spec/support/proc.js';
import { scrape, type Counters } from './etcd-metrics.js';

export type StoreKind = 'etcd' | 'consul';

/**
 * The store runs at a higher priority than the simulated hosts: in a cluster it has machines of its own, and here
 * it shares two cores with N knit processes. At 60 hosts the Consul test server's one thread, at the default
 * priority, got so little of them during the fill that reads waited more than knit's 4 s request timeout.
 */
const STORE_NICE = -10;

/** What the Consul test server counts of itself (spec/support/consul-core.ts). */
export interface StoreDiagnostics {
  /** Bytes of KV reads by key area (`knit/hosts`, `knit/overlay/endpoints`, …). */
  kvOut: Record<string, number>;
  /** Requests that do not block answered more than 1 s after they arrived, and those never answered. */
  slowReplies: number;
  unanswered: number;
  connections: number;
  /** Its thread's ticks more than 1 s late, and the latest tick so far (ms). */
  loopStalls: number;
  loopMaxMs: number;
}

export interface BenchStore {
  kind: StoreKind;
  /** KNIT_STORE for the hosts. */
  url: string;
  counters(): Promise<Counters>;
  /** The Consul test server's own diagnostics since its start; etcd has no such figures. */
  diagnostics?(): Promise<StoreDiagnostics>;
  /** What the report says of the store at the end (etcd: database size, keys, RSS). */
  endNote(c: Counters, kb: (bytes: number) => string, mib: (bytes: number) => string): string;
  dispose(): Promise<void>;
}

export function storeKind(): StoreKind {
  const raw = process.env.KNIT_BENCH_STORE || 'etcd';
  if (raw !== 'etcd' && raw !== 'consul') throw new Error(`KNIT_BENCH_STORE "${raw}" must be etcd or consul`);
  return raw;
}

/** `underlayNs` holds the underlay bridge `bridge`, with `etcdIp` on it; `rootIp` is free on that /24. */
export async function startBenchStore(kind: StoreKind, a: { underlayNs: string; bridge: string; etcdIp: string; rootIp: string }): Promise<BenchStore> {
  if (kind === 'etcd') {
    const etcd = await startEtcd({ netns: a.underlayNs, host: a.etcdIp, nice: STORE_NICE });
    return {
      kind, url: `etcd://${etcd.endpoint}`,
      counters: () => scrape(a.underlayNs, etcd.endpoint),
      endNote: (c, kb, mib) => `${kb(c.dbSize)} (${kb(c.dbInUse)}), ${c.keys}, ${mib(c.rss)}`,
      dispose: () => etcd.dispose(),
    };
  }
  // The root namespace joins the underlay: the test server runs in this process.
  await run(['ip', 'link', 'add', 'knt-benchkr', 'type', 'veth', 'peer', 'name', 'u-benchkr', 'netns', a.underlayNs]);
  await run(['ip', '-n', a.underlayNs, 'link', 'set', 'u-benchkr', 'master', a.bridge, 'up']);
  await run(['ip', 'addr', 'add', `${a.rootIp}/24`, 'dev', 'knt-benchkr']);
  await run(['ip', 'link', 'set', 'knt-benchkr', 'up']);
  const consul = await startConsulServer({ host: a.rootIp, nice: STORE_NICE });
  return {
    kind, url: `consul://${consul.address}`,
    counters: async () => {
      const c = await consul.counters();
      const n = (k: string) => c[k] ?? 0;
      return {
        range: n('kvGet'), watchRequests: n('kvBlocking'), txn: n('txn') + n('kvWrite'), keepAlive: n('sessionRenew'),
        leaseGrant: n('sessionCreate'), leaseRevoke: n('sessionDestroy'), bytesIn: n('bytesIn'), bytesOut: n('bytesOut'),
        // A blocking read answered because its prefix changed stands for etcd's watch events (one per watch woken).
        events: n('kvWoken'), wokenBytes: n('bytesOutWoken'),
      };
    },
    diagnostics: async () => {
      const c = await consul.counters();
      const n = (k: string) => c[k] ?? 0;
      const kvOut = Object.fromEntries(Object.entries(c).flatMap(([k, v]) => (k.startsWith('kvOut:') ? [[k.slice('kvOut:'.length), v]] : [])));
      return { kvOut, slowReplies: n('slowReplies'), unanswered: n('unanswered'), connections: n('connections'), loopStalls: n('loopStalls'), loopMaxMs: n('loopMaxMs') };
    },
    endNote: () => 'n/a (the Consul test server keeps no database file)',
    dispose: async () => {
      await consul.close();
      await run(['ip', 'link', 'del', 'knt-benchkr'], { reject: false });
    },
  };
}
