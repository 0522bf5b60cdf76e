// The benchmark runner (`make bench`): runs each benchmark in turn, prints its table, writes the Markdown report.
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { testbedDir } from '../spec/support/layout.js';
import { TIMED_OUT, within } from '../spec/support/proc.js';
import { stopAll } from '../spec/support/testbed.js';
import { leftoverHosts, removeLeftovers, type BenchContext } from './bed.js';
import { stopClusters } from './cluster-bed.js';
import { snapshotDist } from './knit-run.js';
import { releaseRunLock, takeRunLock } from './run-lock.js';
import { BENCHMARKS, NOT_DONE, type Benchmark } from './list.js';
import { machineInfo, waitForQuiet } from './machine.js';
import { markdown, printSection, type Section } from './report.js';

interface Args {
  quick: boolean;
  only?: string[];
  out: string;
  command: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, out: 'bench/RESULTS.md', command: 'make bench' };
  for (const a of argv) {
    const [key, value = ''] = a.split(/=(.*)/s);
    if (key === '--quick') args.quick = true;
    else if (key === '--only') args.only = value.split(',').filter(Boolean);
    else if (key === '--out') args.out = value;
    else if (key === '--command') args.command = value;
    else throw new Error(`unknown argument ${a}; use --quick, --only=ID[,ID], --out=FILE, --command=TEXT`);
  }
  const ids = BENCHMARKS.map((b) => b.id);
  const unknown = (args.only ?? []).filter((id) => !ids.includes(id));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${ids.join(', ')}`);
  return args;
}

/** Set by SIGINT/SIGTERM: the hosts are being stopped, and what a benchmark still reports is not printed. */
let stopping = false;

/** Before each benchmark: wait (up to a minute) for the CPUs to be this idle, so one benchmark's clean-up is not in the next one's figures. */
const QUIET_IDLE_SHARE = 0.8;
const QUIET_MAX_MS = 60_000;

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** One benchmark within its budget; past budget + grace its hosts are stopped under it and it counts as failed. */
async function runOne(b: Benchmark, quick: boolean): Promise<Section> {
  const budget = quick ? b.budgetMs.quick : b.budgetMs.full;
  const quiet = await waitForQuiet({ idleShare: QUIET_IDLE_SHARE, maxMs: QUIET_MAX_MS });
  const ctx: BenchContext = { quick, deadline: Date.now() + budget, progress: (m) => log(`  ${m}`) };
  const started = performance.now();
  const load = loadavg().map((l) => l.toFixed(1)).join(', ');
  log(`${b.title}: starting (budget ${Math.round(budget / 1000)} s)`);
  let section: Section;
  try {
    const result = await within(b.run(ctx), budget + b.graceMs);
    if (result === TIMED_OUT) {
      await stopAll().catch((err: Error) => log(`stopping its hosts: ${err.message}`));
      await stopClusters();
      section = { id: b.id, title: b.title, rows: [], notes: [], failed: `did not finish within ${Math.round((budget + b.graceMs) / 1000)} s` };
    } else {
      section = { ...result, title: b.title };
    }
  } catch (err) {
    section = { id: b.id, title: b.title, rows: [], notes: [], failed: err instanceof Error ? err.message.slice(0, 2_000) : String(err) };
  }
  section.elapsedMs = performance.now() - started;
  section.notes.push(
    `Load average (1, 5, 15 min) when it started: ${load}; CPUs ${Math.round(quiet.idle * 100)}% idle over the 2 s before (waited ${Math.round(quiet.waitedMs / 1000)} s for them to settle).`,
  );
  return section;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping the benchmark hosts`);
    void Promise.allSettled([stopAll(), stopClusters()])
      .finally(releaseRunLock)
      .finally(() => process.exit(130));
  };
  // `on`, not `once`: while a handler of ours stays, execa's exit hook does not re-raise the signal and kill us mid clean-up.
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await mkdir(join(testbedDir, 'bench'), { recursive: true });
  await takeRunLock();
  await removeLeftovers(log);
  await snapshotDist();
  const info = await machineInfo(args.command, args.quick);
  const chosen = BENCHMARKS.filter((b) => !args.only || args.only.includes(b.id));
  const sections: Section[] = [];
  for (const b of chosen) {
    let section = await runOne(b, args.quick);
    if (section.failed && !stopping) {
      // The machine is shared: another run's clean-up or a reused PID can take a host down under us. One more try,
      // said in the report; a benchmark that fails twice is reported as failed.
      log(`${b.title} failed (${section.failed.split('\n')[0].slice(0, 200)}); trying it once more`);
      const first = section.failed.split('\n')[0].slice(0, 300);
      section = await runOne(b, args.quick);
      section.notes.unshift(`The first attempt failed (${first}); these figures are from a second attempt.`);
    }
    if (stopping) break;
    sections.push(section);
    process.stdout.write(`\n${printSection(section)}\n`);
  }
  // The signal handler exits once the hosts are gone; nothing is written for an interrupted run.
  if (stopping) return new Promise<number>(() => undefined);
  await stopAll();
  const left = await leftoverHosts();
  if (left.length > 0) log(`WARNING: hosts still present after the run: ${left.join(', ')}`);
  info.loadAfter = (await machineInfo(args.command, args.quick)).loadBefore;
  await mkdir(dirname(args.out), { recursive: true });
  await writeFile(args.out, markdown(info, sections, NOT_DONE));
  log(`figures written to ${args.out}`);
  return sections.some((s) => s.failed) ? 1 : 0;
}

main().then(
  async (code) => {
    await releaseRunLock();
    process.exit(code);
  },
  async (err: unknown) => {
    log(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    await stopAll().catch(() => undefined);
    await releaseRunLock();
    process.exit(2);
  },
);
