// Group commit: the plain `ip` work of concurrent calls shares one `ip -batch` process.
import { attribute, failedOp, opsBefore } from './batch-plan.js';
import type { RunBatch } from './batch.js';
import type { Op } from './ops.js';
import { parseBatchErrors } from './parse.js';
import { type BatchLine, describeOp } from './render.js';

/** A call waiting for a shared `ip` batch. */
interface SharedCall {
  ops: Op[];
  lines: BatchLine[];
  settle: (err?: Error) => void;
}

/** The most calls one shared `ip` batch takes. */
const MAX_SHARED = 64;

/**
 * While one batch runs, the calls that arrive wait and then go together: a burst of container starts
 * costs a few `ip` processes instead of one each, and an idle host still runs each call at once.
 */
export class GroupCommit {
  private readonly waiting: SharedCall[] = [];
  private flushing = false;

  /** `undo` takes back ops a failed call applied and returns a note for its error (empty when it worked). */
  constructor(private readonly runBatch: RunBatch, private readonly undo: (applied: Op[]) => Promise<string>) {}

  submit(ops: Op[], lines: BatchLine[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ ops, lines, settle: (err) => (err ? reject(err) : resolve()) });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.waiting.length) {
        const group = this.waiting.splice(0, MAX_SHARED);
        // Nothing may leave a caller waiting forever (a promise settles once: a second settle is a no-op).
        await this.runGroup(group).catch((err: Error) => group.forEach((call) => call.settle(err)));
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * One `ip -batch` (stopping at the first error) for the calls of `group`, their lines one after the
   * other. Calls wholly before a failing line succeeded; the failing call's earlier ops are undone and it
   * gets the error; the calls after it never ran and wait for the next batch.
   */
  private async runGroup(group: SharedCall[]): Promise<void> {
    // A spawn failure rejects here, and flush hands it to every call of the group.
    const r = await this.runBatch({ tool: 'ip', lines: group.flatMap((call) => call.lines), force: false, calls: group.length });
    if (r.exitCode === 0) return group.forEach((call) => call.settle());
    const failure = parseBatchErrors(r.stderr, r.exitCode)[0];
    const { culprit, within } = attribute(group.map((call) => call.lines.length), failure.line);
    if (culprit === undefined) {
      // ip named no line (as a lone call's batch, nothing is undone: an op that never ran must not be taken back).
      for (const call of group) call.settle(failedOp(`running ${call.lines.length} ip commands`, failure, ''));
      return;
    }
    group.slice(0, culprit).forEach((call) => call.settle());
    const call = group[culprit];
    const undone = await this.undo(opsBefore(call.lines, within).map((i) => call.ops[i]));
    call.settle(failedOp(describeOp(call.ops[call.lines[within].index]), failure, undone));
    this.waiting.unshift(...group.slice(culprit + 1));
  }
}
