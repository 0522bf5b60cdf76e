// Go's time.ParseDuration and Duration.String, because Consul reads wait, TTL and LockDelay with them.

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Nanoseconds, or undefined where Go would return an error ("5" without a unit, "1x", ""). */
export function parseGoDuration(text: string): number | undefined {
  const m = /^([-+]?)(.*)$/s.exec(text);
  if (!m || m[2] === '') return undefined;
  if (m[2] === '0') return 0;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < m[2].length) {
    part.lastIndex = at;
    const p = part.exec(m[2]);
    if (!p) return undefined;
    total += Number(p[1]) * UNIT_NS[p[2]];
    at = part.lastIndex;
  }
  return m[1] === '-' ? -total : total;
}

/** Go's Duration.String for whole-second values and above ("10s", "24h0m0s"), as Consul's messages print them. */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1e9) return `${ns / 1e6}ms`;
  const totalSeconds = ns / 1e9;
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
