// Token buckets per source address, in a bounded table, against floods.

interface Bucket {
  tokens: number;
  at: number;
}

export interface RateLimitOptions {
  /** Queries per second a source may sustain. */
  rate: number;
  /** Queries a source may send at once after being quiet. */
  burst: number;
  /** The most sources tracked; sources beyond share one bucket. */
  maxSources: number;
  now?: () => number;
}

/** Sources past the table's size share this key's bucket, so a flood from many addresses cannot grow memory. */
const OVERFLOW = '*';
const SWEEP_EVERY_MS = 1000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private swept = 0;

  constructor(private readonly o: RateLimitOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Whether one more query from `source` may be handled now. */
  allow(source: string): boolean {
    const now = this.now();
    const bucket = this.bucketOf(source, now);
    bucket.tokens = Math.min(this.o.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.o.rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }

  private bucketOf(source: string, now: number): Bucket {
    const known = this.buckets.get(source);
    if (known) return known;
    if (this.buckets.size >= this.o.maxSources) this.sweep(now);
    const key = this.buckets.size >= this.o.maxSources ? OVERFLOW : source;
    const bucket = this.buckets.get(key) ?? { tokens: this.o.burst, at: now };
    this.buckets.set(key, bucket);
    return bucket;
  }

  /** Forgets sources whose bucket has filled up again (quiet ones): they lose nothing by starting afresh. */
  private sweep(now: number): void {
    if (now - this.swept < SWEEP_EVERY_MS) return;
    this.swept = now;
    const refill = (this.o.burst / this.o.rate) * 1000;
    for (const [key, b] of this.buckets) if (key !== OVERFLOW && now - b.at >= refill) this.buckets.delete(key);
  }
}
