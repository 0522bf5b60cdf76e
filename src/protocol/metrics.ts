// Per-call timing as knit served it: counts and latency percentiles over a bounded window per path.
import type { ErrorKind } from '../errors.js';

const WINDOW = 4096;

/** How a call ended: 'ok', or the kind of the error it answered with. */
export type CallOutcome = 'ok' | ErrorKind;

/** Told of every call the route table served (the status document's timings, the daemon's metrics). */
export interface CallObserver {
  record(path: string, ms: number, outcome: CallOutcome): void;
}

interface Series {
  count: number;
  errors: number;
  /** The last WINDOW timings, as a ring: the oldest is overwritten, nothing is moved. */
  recent: number[];
}

export class CallMetrics implements CallObserver {
  private readonly series = new Map<string, Series>();

  record(path: string, ms: number, outcome: CallOutcome): void {
    let s = this.series.get(path);
    if (!s) this.series.set(path, (s = { count: 0, errors: 0, recent: [] }));
    s.count++;
    if (outcome !== 'ok') s.errors++;
    if (s.recent.length < WINDOW) s.recent.push(ms);
    else s.recent[(s.count - 1) % WINDOW] = ms;
  }

  snapshot(): Record<string, { count: number; errors: number; p50: number; p99: number; max: number }> {
    const out: Record<string, { count: number; errors: number; p50: number; p99: number; max: number }> = {};
    for (const [path, s] of this.series) {
      const sorted = [...s.recent].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      out[path] = { count: s.count, errors: s.errors, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
    }
    return out;
  }
}
