// Container churn on test-bed hosts (run, stop, start, connect, disconnect, rm), optionally while knit is SIGKILLed at random moments.
import { setTimeout as sleep } from 'node:timers/promises';
import { IMAGE } from '../../support/testbed.js';
import { prng } from './corpus.js';
import type { FaultCluster } from './fault-cluster.js';
import type { Tally } from './tally.js';

export interface ChurnOptions {
  /** knit networks (same names on every host) the containers use. */
  networks: string[];
  /** Containers started on this network publish a port (-p 80) half of the time. */
  publishOn?: string;
  /** At most this many churned containers per host. */
  perHost: number;
  /** Operations in all, and a time bound: whichever comes first (crashes.min extends the count, not the time). */
  ops: number;
  timeMs: number;
  /** Hosts that churn (default: all). */
  hosts?: number[];
  crashes?: { min: number; everyMs: [number, number]; downMs: [number, number] };
  seed: number;
  /** Name prefix of the churned containers, so that phases of one test file do not collide. */
  prefix?: string;
}

export interface ChurnResult {
  ops: number;
  failed: number;
  crashes: number;
  /** When the last operation or crash ended (for the leak sweep's grace period). */
  lastAt: number;
  byOp: Record<string, { ok: number; failed: number }>;
  /** Successful runs and connects per network: which networks the churn really exercised. */
  joins: Record<string, number>;
}

interface Tracked {
  running: boolean;
  nets: Set<string>;
}

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)];
const between = (r: Rand, [lo, hi]: [number, number]): number => lo + Math.floor(r() * (hi - lo));

/** Asks dockerd what became of a container after a failed operation. */
async function refresh(c: FaultCluster, i: number, name: string, mine: Map<string, Tracked>): Promise<void> {
  const r = await c.docker(i, ['inspect', '-f', '{{.State.Running}}{{range $k, $v := .NetworkSettings.Networks}} {{$k}}{{end}}', name], { reject: false });
  if (r.exitCode !== 0) return void mine.delete(name);
  const [running, ...nets] = r.stdout.trim().split(' ');
  mine.set(name, { running: running === 'true', nets: new Set(nets) });
}

/** One operation chosen by what the host's containers allow; returns its name and the docker argv. */
function plan(r: Rand, o: ChurnOptions, mine: Map<string, Tracked>, next: () => string): { op: string; name: string; args: string[]; after: Tracked | null } {
  const names = [...mine.keys()];
  if (names.length === 0 || (names.length < o.perHost && r() < 0.35)) {
    const name = next();
    const net = pick(r, o.networks);
    const publish = net === o.publishOn && r() < 0.5 ? ['-p', '80'] : [];
    return { op: 'run', name, args: ['run', '-d', '--name', name, '--network', net, ...publish, '--stop-timeout', '1', IMAGE, 'sleep', '3600'], after: { running: true, nets: new Set([net]) } };
  }
  const name = pick(r, names);
  const t = mine.get(name)!;
  const options: Array<{ op: string; args: string[]; after: Tracked | null }> = [{ op: 'rm', args: ['rm', '-f', name], after: null }];
  if (t.running) options.push({ op: 'stop', args: ['stop', '-t', '1', name], after: { ...t, running: false } });
  // Twice: a stopped container is more often started again than removed.
  else options.push({ op: 'start', args: ['start', name], after: { ...t, running: true } }, { op: 'start', args: ['start', name], after: { ...t, running: true } });
  const more = o.networks.filter((n) => !t.nets.has(n));
  if (t.running && more.length) {
    const n = pick(r, more);
    options.push({ op: 'connect', args: ['network', 'connect', n, name], after: { ...t, nets: new Set([...t.nets, n]) } });
  }
  if (t.running && t.nets.size > 1) {
    const n = pick(r, [...t.nets]);
    options.push({ op: 'disconnect', args: ['network', 'disconnect', n, name], after: { ...t, nets: new Set([...t.nets].filter((x) => x !== n)) } });
  }
  return { name, ...pick(r, options) };
}

export async function churn(c: FaultCluster, o: ChurnOptions, tally: Tally): Promise<ChurnResult> {
  const r = prng(o.seed);
  const deadline = Date.now() + o.timeMs;
  const result: ChurnResult = { ops: 0, failed: 0, crashes: 0, lastAt: Date.now(), byOp: {}, joins: {} };
  const minCrashes = o.crashes?.min ?? 0;
  const more = (): boolean => Date.now() < deadline && (result.ops < o.ops || result.crashes < minCrashes);
  let serial = 0;
  const hostLoop = async (i: number): Promise<void> => {
    const mine = new Map<string, Tracked>();
    while (more()) {
      const p = plan(r, o, mine, () => `${o.prefix ?? 'ch'}${i}x${serial++}`);
      const res = await c.docker(i, p.args, { reject: false, timeoutMs: 90_000 });
      const ok = res.exitCode === 0;
      result.ops++;
      if (!ok) result.failed++;
      const tallyOp = (result.byOp[p.op] ??= { ok: 0, failed: 0 });
      if (ok) tallyOp.ok++;
      else tallyOp.failed++;
      const joined = p.op === 'run' ? p.args[p.args.indexOf('--network') + 1] : p.op === 'connect' ? p.args[2] : undefined;
      if (ok && joined) result.joins[joined] = (result.joins[joined] ?? 0) + 1;
      tally.op(ok);
      if (ok && p.after) mine.set(p.name, p.after);
      else if (ok) mine.delete(p.name);
      else await refresh(c, i, p.name, mine);
      result.lastAt = Date.now();
    }
  };
  const crashLoop = async (): Promise<void> => {
    const k = o.crashes;
    if (!k) return;
    const targets = o.hosts ?? c.hosts.map((_, i) => i);
    while (more()) {
      await sleep(between(r, k.everyMs));
      if (!more()) break;
      const knit = c.knits[pick(r, targets)];
      await knit.kill9();
      result.crashes++;
      tally.crash();
      await sleep(between(r, k.downMs));
      await startAgain(knit);
      result.lastAt = Date.now();
    }
  };
  await Promise.all([...(o.hosts ?? c.hosts.map((_, i) => i)).map(hostLoop), crashLoop()]);
  return result;
}

/**
 * What a churn must have achieved to count: enough operations that succeeded, in number and as a share of all, and at
 * least one container started. A churn in which every docker operation failed exercised nothing and is a failure.
 */
export function churnShortfalls(r: ChurnResult, min: { ok: number; okRatio: number }): string[] {
  const ok = r.ops - r.failed;
  const failures: string[] = [];
  if (ok < min.ok) failures.push(`only ${ok} docker operations succeeded (${r.ops} in all); at least ${min.ok} must`);
  if (r.ops === 0 || ok / r.ops < min.okRatio) failures.push(`only ${ok} of ${r.ops} docker operations succeeded; at least ${Math.round(min.okRatio * 100)}% must`);
  if ((r.byOp.run?.ok ?? 0) === 0) failures.push('no container was started');
  return failures;
}

/** Restarts a killed knit; a start can fail while the host is busy, so it is tried a few times. */
async function startAgain(knit: FaultCluster['knits'][number]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await knit.start();
    } catch (err) {
      if (attempt >= 4) throw err;
      await sleep(1_000);
    }
  }
}
