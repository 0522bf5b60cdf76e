// The benchmarks' test bed: a simulated Docker host with knit running in it, and helpers shared by every benchmark.
import { readdir } from 'node:fs/promises';
import { post } from '../spec/support/client.js';
import { destroyHost, IMAGE, startHost, type Host, type RunResult } from '../spec/support/testbed.js';
import { BenchKnit } from './knit-run.js';

export { IMAGE };

/** Every benchmark host is named bench*, so its namespace is knt-bench* and nobody else's is touched. */
export const HOST_PREFIX = 'bench';

export type Driver = 'knit' | 'builtin';
export const DRIVERS: readonly Driver[] = ['knit', 'builtin'];

export interface BenchContext {
  quick: boolean;
  /** No new iteration starts after this time (ms since the epoch); every loop also has a fixed count. */
  deadline: number;
  progress(message: string): void;
}

export const inTime = (ctx: BenchContext): boolean => Date.now() < ctx.deadline;

export interface CallStats {
  count: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

/** The part of knit's POST /knit.Status answer the benchmarks read. */
export interface KnitStatus {
  calls: Record<string, CallStats>;
  spawned: Record<string, number>;
  rssBytes: number;
  networks: unknown[];
  endpoints: unknown[];
  /** Encrypted overlays' tunnel, with which WireGuard runs. */
  wireguard?: { backend?: string };
}

export interface Bed {
  host: Host;
  knit: BenchKnit;
  docker(args: string[], opts?: { timeoutMs?: number; reject?: boolean }): Promise<RunResult>;
  status(): Promise<KnitStatus>;
}

export async function knitStatus(socket: string): Promise<KnitStatus> {
  const reply = await post(socket, '/knit.Status', {}, 10_000);
  if (reply.status !== 200) throw new Error(`knit.Status answered ${reply.status}: ${reply.raw.slice(0, 500)}`);
  return reply.body as KnitStatus;
}

/**
 * Starts host `name` (engine 20.10) with knit in it, runs `fn`, and always stops both. The FORWARD policy
 * is DROP as dockerd leaves it on a real host, and knit logs at its default level (info), as users run it.
 */
export async function withBed<T>(name: string, fn: (bed: Bed) => Promise<T>): Promise<T> {
  if (!name.startsWith(HOST_PREFIX)) throw new Error(`benchmark host "${name}" must start with "${HOST_PREFIX}"`);
  const host = await startHost({ name });
  const knit = new BenchKnit(host);
  try {
    await host.exec(['iptables', '-P', 'FORWARD', 'DROP']);
    await knit.start();
    const docker = (args: string[], opts: { timeoutMs?: number; reject?: boolean } = {}) => host.docker(args, opts);
    return await fn({ host, knit, docker, status: () => knitStatus(knit.socket) });
  } finally {
    await knit.stop().catch(() => undefined);
    await host.stop();
  }
}

/** `docker network create` for either driver; knit is both the network and the IPAM driver. */
export function createNetwork(bed: Bed, driver: Driver, name: string, extra: string[] = []): Promise<RunResult> {
  const pick = driver === 'knit' ? ['-d', 'knit', '--ipam-driver', 'knit'] : ['-d', 'bridge'];
  return bed.docker(['network', 'create', ...pick, ...extra, name]);
}

/** Milliseconds `fn` took, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

/**
 * Runs `measure` `count` times per driver, alternating knit, built-in, knit, built-in..., so that a change
 * in the machine's load hits both alike. Stops early (fewer samples) once the context's time is up.
 */
export async function alternate(
  ctx: BenchContext,
  count: number,
  measure: (driver: Driver, i: number) => Promise<number | undefined>,
): Promise<Record<Driver, number[]>> {
  const samples: Record<Driver, number[]> = { knit: [], builtin: [] };
  for (let i = 0; i < count && inTime(ctx); i++) {
    for (const driver of DRIVERS) {
      const value = await measure(driver, i);
      if (value !== undefined) samples[driver].push(value);
    }
  }
  return samples;
}

export const stoppedEarly = (got: number, wanted: number): string[] =>
  got < wanted ? [`Stopped early by the time budget: ${got} of ${wanted} planned iterations.`] : [];

/** Namespaces knt-bench* left by an earlier run that was killed before it could clean up. */
export async function leftoverHosts(): Promise<string[]> {
  const names = await readdir('/run/netns').catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`knt-${HOST_PREFIX}`)).map((n) => n.slice('knt-'.length));
}

/** Removes what leftoverHosts found: only bench* hosts, never another test's (the run lock says no other run owns them). */
export async function removeLeftovers(log: (m: string) => void): Promise<void> {
  for (const name of await leftoverHosts()) {
    log(`removing host ${name} left by an earlier benchmark run`);
    await destroyHost(name);
  }
}

/** Runs `fn` over `items` with at most `limit` at once; stops taking new items once the context's time is up. */
export async function inParallel<T>(ctx: BenchContext, items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length && inTime(ctx)) {
      await fn(items[next++]);
      done++;
    }
  };
  await Promise.all([...Array(limit)].map(worker));
  return done;
}
