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
