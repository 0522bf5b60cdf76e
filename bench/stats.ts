// Summary statistics and number formatting for benchmark figures (pure functions, no I/O).

/** The q-quantile (0..1) of the samples, nearest-rank; NaN for no samples. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** knit ÷ built-in, or NaN when either side is missing or the built-in figure is zero. */
export const ratio = (knit: number, builtin: number): number =>
  Number.isFinite(knit) && Number.isFinite(builtin) && builtin !== 0 ? knit / builtin : Number.NaN;

/** A number with `digits` decimals, or "n/a" when it is not finite. */
export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Three significant figures without exponent noise: 0.00123, 1.23, 123, 12300. */
export function sig(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return value.toFixed(Math.min(digits, 4));
}

export const seconds = (ms: number): string => `${fixed(ms / 1000, 3)} s`;
export const millis = (ms: number): string => `${sig(ms)} ms`;
export const times = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');
export const mib = (bytes: number): string => `${fixed(bytes / 2 ** 20, 1)} MiB`;

/** "median (p10–p90, n=N)" of millisecond samples, in seconds. */
export function spreadSeconds(samples: readonly number[]): string {
  return `p10 ${seconds(quantile(samples, 0.1))}, p90 ${seconds(quantile(samples, 0.9))}, n=${samples.length}`;
}
