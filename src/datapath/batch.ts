// Runs `ip -batch` and `bridge -batch`: apply all or none (undoing a half-applied batch) and best-effort removal.
import { describe, KnitError } from '../errors.js';
import { ABSENT, failedOp, locate, opsBefore } from './batch-plan.js';
import { run, type RunResult } from './exec.js';
import type { Op } from './ops.js';
import { parseBatchErrors } from './parse.js';
import { type BatchLine, type BatchTool, type Batches, describeOp, renderBatches, undoOp } from './render.js';

export type Log = (line: object) => void;

/**
 * Runs one batch process (stopping at the first error unless `force`) and logs it; `calls`, given by group
 * commit, is how many callers' work it carries.
 */
export type RunBatch = (a: { tool: BatchTool; lines: BatchLine[]; force: boolean; calls?: number }) => Promise<RunResult>;

/** One finished batch process, as the daemon's observer (metrics) sees it. */
export interface BatchRun {
  tool: BatchTool;
  force: boolean;
  lines: number;
  /** Set for a shared (group-commit) batch: how many calls it carried. */
  calls?: number;
  durationMs: number;
  exitCode: number;
}

/** Told of every batch process and of every change that failed; the kernel works the same without one. */
export interface KernelObserver {
  batch(b: BatchRun): void;
  /** An apply (all or none) or a best-effort remove reported a failure to its caller. */
  failed(what: 'apply' | 'remove'): void;
}

/** A batch process per batch, started here. */
const spawnBatch: RunBatch = (a) => {
  const args = a.force ? ['-force', '-batch', '-'] : ['-batch', '-'];
  return run({ tool: a.tool, args, input: a.lines.map((l) => `${l.text}\n`).join('') });
};

/** Runs batches through `runner` (a process each, or a long-lived session), logging each and telling the observer. */
export function batchRunner(log: Log, observer?: KernelObserver, runner: RunBatch = spawnBatch): RunBatch {
  return async (a) => {
    const r = await runner(a);
    const done: BatchRun = { tool: a.tool, force: a.force, lines: a.lines.length, calls: a.calls, durationMs: r.durationMs, exitCode: r.exitCode };
    log({ event: 'batch', ...done });
    observer?.batch(done);
    return r;
  };
}

export class BatchApplier {
  constructor(private readonly runBatch: RunBatch, private readonly log: Log) {}

  /** Applies every op of the rendered `batches` or, when one fails, none: the ones before it are undone, and the error names it. */
  async apply(ops: Op[], batches: Batches): Promise<void> {
    const applied: number[] = [];
    for (const tool of ['ip', 'bridge'] as const) {
      const lines = batches[tool];
      if (!lines.length) continue;
      const r = await this.runBatch({ tool, lines, force: false });
      if (r.exitCode === 0) {
        applied.push(...opsBefore(lines, lines.length));
        continue;
      }
      const failure = parseBatchErrors(r.stderr, r.exitCode)[0];
      const { done, failed } = locate({ ops, lines, failure });
      applied.push(...done);
      const undone = await this.undo(applied.map((i) => ops[i]));
      throw failedOp(failed === undefined ? `running ${lines.length} ${tool} commands` : describeOp(ops[failed]), failure, undone);
    }
  }

  /** Takes back applied ops, last first; returns a note for the error message when that fails too. */
  async undo(applied: Op[]): Promise<string> {
    const undo = applied.reverse().flatMap((op) => undoOp(op) ?? []);
    if (!undo.length) return '';
    try {
      await this.remove(undo);
      return '';
    } catch (err) {
      this.log({ event: 'undo failed', error: describe(err) });
      return `; undoing the earlier steps also failed: ${describe(err)}`;
    }
  }

  /** Best-effort teardown: every op is tried, and "already gone" is success. */
  async remove(ops: Op[]): Promise<void> {
    const batches = renderBatches(ops);
    const problems: string[] = [];
    // Forwarding entries first: they live on links that the ip batch may delete.
    for (const tool of ['bridge', 'ip'] as const) {
      const lines = batches[tool];
      if (!lines.length) continue;
      const r = await this.runBatch({ tool, lines, force: true });
      if (r.exitCode === 0) continue;
      for (const f of parseBatchErrors(r.stderr, r.exitCode)) {
        if (ABSENT.test(f.words)) continue;
        const line = f.line === undefined ? undefined : lines[f.line - 1];
        problems.push(`${line ? describeOp(ops[line.index]) : `running ${tool} commands`} failed: ${f.words}`);
      }
    }
    if (problems.length) throw new KnitError('internal', problems.join('; '));
  }
}
