// Describes the run for the report: machine, engine, knit's commit, date, load.
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { repoRoot } from '../spec/support/layout.js';
import { run } from '../spec/support/proc.js';
import type { RunInfo } from './report.js';

async function osName(): Promise<string> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => '');
  return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? 'unknown OS';
}

async function commit(): Promise<string> {
  const head = await run(['git', '-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { reject: false });
  if (head.exitCode !== 0) return 'unknown commit';
  const dirty = (await run(['git', '-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'], { reject: false })).stdout.trim();
  return `commit ${head.stdout.trim()}${dirty ? ' with uncommitted changes' : ''}`;
}

export async function machineInfo(command: string, quick: boolean): Promise<RunInfo> {
  const engine = await run(['dockerd', '--version'], { reject: false });
  const model = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return {
    command,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: [
      `Machine: ${await osName()}, Linux ${release()}, ${cpus().length} × ${model}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM`,
      `Node ${process.version}`,
    ],
    engine: engine.exitCode === 0 ? engine.stdout.trim() : 'dockerd not found',
    commit: await commit(),
    loadBefore: loadavg().map((l) => l.toFixed(2)).join(', '),
    quick,
  };
}

/** Busy and total CPU ticks of the whole machine, from /proc/stat. */
async function cpuTicks(): Promise<{ idle: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait count as idle.
  return { idle: f[3] + f[4], total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/**
 * Waits (at most `maxMs`) until the CPUs were at least `idleShare` idle over a 2 s window: the clean-up
 * of a previous benchmark (50 containers going away) otherwise runs into the next one's figures.
 * Returns the idle share seen last and how long it waited.
 */
export async function waitForQuiet(opts: { idleShare: number; maxMs: number }): Promise<{ idle: number; waitedMs: number }> {
  const started = Date.now();
  let idle = 0;
  do {
    const a = await cpuTicks();
    await new Promise((r) => setTimeout(r, 2_000));
    const b = await cpuTicks();
    idle = (b.idle - a.idle) / Math.max(1, b.total - a.total);
  } while (idle < opts.idleShare && Date.now() - started < opts.maxMs);
  return { idle, waitedMs: Date.now() - started };
}
