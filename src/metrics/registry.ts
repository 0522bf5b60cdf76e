// knit's Prometheus metrics: one registry per daemon (never prom-client's global one), every name prefixed knit_.
// The counters here are moved by observers the daemon hands down (plugin calls, kernel batches, store calls);
// what other parts already count or hold (spawned processes, lease, overlay, IPAM, DNS) is read at each scrape
// by sources.ts. No layer below the daemon imports this module.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchRun, KernelObserver } from '../datapath/batch.js';
import type { CallObserver, CallOutcome } from '../protocol/metrics.js';

export const PREFIX = 'knit_';

/** Seconds, from a fast local call (0.5 ms) to a store that is timing out (10 s). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** How many plugin calls one shared `ip -batch` carried (group commit takes at most 64). */
const SHARED_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

/** How a store call ended: 'conflict' is a compare-and-set guard that did not hold (nothing written). */
export type StoreOutcome = 'ok' | 'conflict' | 'error';
export type StoreOp = 'get' | 'list' | 'commit' | 'grantLease';

export class KnitMetrics implements CallObserver, KernelObserver {
  readonly registry = new Registry();
  private readonly reg = [this.registry];

  private readonly calls = new Counter({ name: 'knit_plugin_calls_total', help: 'Plugin calls served, by path and outcome (ok or the error kind: bad-request, not-found, conflict, unavailable, internal).', labelNames: ['path', 'outcome'], registers: this.reg });
  private readonly callSeconds = new Histogram({ name: 'knit_plugin_call_duration_seconds', help: 'Time from request to reply inside knit, by path.', labelNames: ['path'], buckets: LATENCY_BUCKETS, registers: this.reg });

  private readonly batches = new Counter({ name: 'knit_kernel_batches_total', help: 'ip/bridge batches run (a process each, or one batch of the long-lived processes that program overlay entries), by tool and result (failed: a non-zero exit; a best-effort removal of entries already gone exits non-zero too).', labelNames: ['tool', 'result'], registers: this.reg });
  private readonly batchLines = new Counter({ name: 'knit_kernel_batch_lines_total', help: 'Commands sent in ip/bridge batches, by tool.', labelNames: ['tool'], registers: this.reg });
  private readonly batchSeconds = new Histogram({ name: 'knit_kernel_batch_duration_seconds', help: 'Wall time of one ip/bridge batch process, by tool.', labelNames: ['tool'], buckets: LATENCY_BUCKETS, registers: this.reg });
  private readonly shared = new Histogram({ name: 'knit_kernel_shared_batch_calls', help: 'How many concurrent plugin calls one shared ip batch carried (group commit).', buckets: SHARED_BUCKETS, registers: this.reg });
  private readonly kernelFailures = new Counter({ name: 'knit_kernel_failures_total', help: 'Kernel changes that failed and were reported to the caller: apply (all or none, earlier steps undone) or remove (best effort).', labelNames: ['op'], registers: this.reg });

  private readonly storeCalls = new Counter({ name: 'knit_store_calls_total', help: 'Store calls, by store (local, etcd, consul), op and outcome (conflict: a compare-and-set guard did not hold).', labelNames: ['store', 'op', 'outcome'], registers: this.reg });
  private readonly storeSeconds = new Histogram({ name: 'knit_store_call_duration_seconds', help: 'Store call latency, by store and op.', labelNames: ['store', 'op'], buckets: LATENCY_BUCKETS, registers: this.reg });
  private readonly watchEvents = new Counter({ name: 'knit_store_watch_events_total', help: 'Watch events received from the store, by store.', labelNames: ['store'], registers: this.reg });

  private readonly info = new Gauge({ name: 'knit_info', help: 'Always 1: this knit\'s host ID and store kind.', labelNames: ['host', 'store'], registers: this.reg });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** Known once the stores are open. */
  setInfo(a: { hostId: string; store: string }): void {
    this.info.reset();
    this.info.set({ host: a.hostId, store: a.store }, 1);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  record(path: string, ms: number, outcome: CallOutcome): void {
    this.calls.inc({ path, outcome });
    this.callSeconds.observe({ path }, ms / 1000);
  }

  batch(b: BatchRun): void {
    this.batches.inc({ tool: b.tool, result: b.exitCode === 0 ? 'ok' : 'failed' });
    this.batchLines.inc({ tool: b.tool }, b.lines);
    this.batchSeconds.observe({ tool: b.tool }, b.durationMs / 1000);
    if (b.calls !== undefined) this.shared.observe(b.calls);
  }

  failed(op: 'apply' | 'remove'): void {
    this.kernelFailures.inc({ op });
  }

  storeCall(store: string, op: StoreOp, seconds: number, outcome: StoreOutcome): void {
    this.storeCalls.inc({ store, op, outcome });
    this.storeSeconds.observe({ store, op }, seconds);
  }

  storeEvent(store: string): void {
    this.watchEvents.inc({ store });
  }
}
