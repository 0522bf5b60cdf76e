// Pure bookkeeping for `ip`/`bridge` batches: which ops ran before a failure, and which call of a shared batch failed.
import { KnitError } from '../errors.js';
import type { Op } from './ops.js';
import type { BatchFailure } from './parse.js';
import type { BatchLine } from './render.js';

/** Errors that mean "already gone": teardown is idempotent because dockerd replays deletes. */
export const ABSENT = /Cannot find device|No such file or directory|not found/i;

/** The ops of `lines` before the failed one (an op whose first lines succeeded counts), in order, each once. */
export function opsBefore(lines: BatchLine[], end: number): number[] {
  return [...new Set(lines.slice(0, end).map((l) => l.index))];
}

/**
 * Which ops must be undone and which one failed. With no line number, ip stopped inside a neighbour
 * line (they are rendered last): everything before them succeeded, and undoing every neighbour op is
 * safe because a neighbour delete is an idempotent flush.
 */
export function locate(a: { ops: Op[]; lines: BatchLine[]; failure: BatchFailure }): { done: number[]; failed?: number } {
  const { ops, lines, failure } = a;
  if (failure.line !== undefined) return { done: opsBefore(lines, failure.line - 1), failed: lines[failure.line - 1]?.index };
  const neigh = lines.filter((l) => ops[l.index].op.startsWith('neigh-')).map((l) => l.index);
  if (!neigh.length) return { done: [] };
  return { done: opsBefore(lines, lines.length), failed: neigh.length === 1 ? neigh[0] : undefined };
}

/** The error of a batch: what failed, the tool's words, and a note if undoing the earlier steps failed too. */
export const failedOp = (what: string, failure: BatchFailure, undone: string): KnitError =>
  new KnitError('internal', `${what} failed: ${failure.words}${undone}`);

/**
 * Who a failed shared batch belongs to. The calls' lines ran one after the other (`sizes` lines each) and ip
 * stopped at 1-based line `failedLine`. Without a usable line number no call can be blamed (`culprit`
 * undefined): every call gets the error. Otherwise the calls before the culprit succeeded, the culprit ran
 * its first `within` lines, and the calls after it never ran.
 */
export function attribute(sizes: number[], failedLine: number | undefined): { culprit?: number; within: number } {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (failedLine === undefined || failedLine < 1 || failedLine > total) return { within: 0 };
  let start = 0;
  for (let i = 0; i < sizes.length; i++) {
    if (failedLine - 1 < start + sizes[i]) return { culprit: i, within: failedLine - 1 - start };
    start += sizes[i];
  }
  return { within: 0 };
}
