// etcd's own counters (Prometheus text on its client URL, /metrics): requests by gRPC method, bytes in and out,
// watch events sent, database size. Read from inside etcd's namespace; scraping is plain HTTP, not gRPC, so it
// adds nothing to the gRPC counters it reads.
import { run } from '../spec/support/proc.js';
import { inNetns } from './iperf.js';

export type Counters = Record<string, number>;

/** The counters the cluster benchmark reports, by the short names it uses. */
const WANTED: Array<[string, RegExp]> = [
  ['range', /^grpc_server_msg_received_total\{grpc_method="Range",/],
  ['txn', /^grpc_server_msg_received_total\{grpc_method="Txn",/],
  ['put', /^grpc_server_msg_received_total\{grpc_method="Put",/],
  ['deleteRange', /^grpc_server_msg_received_total\{grpc_method="DeleteRange",/],
  ['leaseGrant', /^grpc_server_msg_received_total\{grpc_method="LeaseGrant",/],
  ['keepAlive', /^grpc_server_msg_received_total\{grpc_method="LeaseKeepAlive",/],
  ['leaseRevoke', /^grpc_server_msg_received_total\{grpc_method="LeaseRevoke",/],
  ['watchRequests', /^grpc_server_msg_received_total\{grpc_method="Watch",grpc_service="etcdserverpb.Watch"/],
  ['watchResponses', /^grpc_server_msg_sent_total\{grpc_method="Watch",grpc_service="etcdserverpb.Watch"/],
  ['events', /^etcd_debugging_mvcc_events_total /],
  ['watchers', /^etcd_debugging_mvcc_watcher_total /],
  ['bytesIn', /^etcd_network_client_grpc_received_bytes_total /],
  ['bytesOut', /^etcd_network_client_grpc_sent_bytes_total /],
  ['dbSize', /^etcd_mvcc_db_total_size_in_bytes /],
  ['dbInUse', /^etcd_mvcc_db_total_size_in_use_in_bytes /],
  ['keys', /^etcd_debugging_mvcc_keys_total /],
  ['cpuSeconds', /^process_cpu_seconds_total /],
  ['rss', /^process_resident_memory_bytes /],
];

/** Requests etcd received (unary calls and stream messages: lease keep-alives, watch creations). */
export const REQUEST_KINDS = ['range', 'txn', 'put', 'deleteRange', 'leaseGrant', 'keepAlive', 'leaseRevoke', 'watchRequests'] as const;

export function parseMetrics(text: string): Counters {
  const out: Counters = {};
  for (const line of text.split('\n')) {
    for (const [name, re] of WANTED) {
      if (re.test(line)) out[name] = (out[name] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return out;
}

export async function scrape(netns: string, endpoint: string): Promise<Counters> {
  const r = await run([...inNetns(`/run/netns/${netns}`), 'curl', '-sf', '--max-time', '5', `http://${endpoint}/metrics`], { timeoutMs: 10_000 });
  const c = parseMetrics(r.stdout);
  if (c.txn === undefined || c.bytesIn === undefined) throw new Error(`etcd's /metrics lacks the gRPC counters: ${r.stdout.slice(0, 200)}`);
  return c;
}

/** b − a for every counter. */
export function delta(a: Counters, b: Counters): Counters {
  return Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)]));
}

export const requests = (c: Counters): number => REQUEST_KINDS.reduce((sum, k) => sum + (c[k] ?? 0), 0);

/** Sum of many deltas. */
export function sumDeltas(ds: Counters[]): Counters {
  const out: Counters = {};
  for (const d of ds) for (const [k, v] of Object.entries(d)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** `c` less what `ratePerMs` (from an idle window) accounts for over `ms`. */
export function lessBackground(c: Counters, ratePerMs: Counters, ms: number): Counters {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v - (ratePerMs[k] ?? 0) * ms]));
}

/** Every counter divided by `by` (a duration, or a number of changes). */
export function divide(c: Counters, by: number): Counters {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v / by]));
}
