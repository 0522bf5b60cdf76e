// A long-lived `ip -batch -` or `bridge -batch -` for the overlay's entries: every other host's endpoint start or
// stop changes a neighbour and a forwarding entry on every host, and starting two processes for each cost more CPU
// than everything else knit does for it (forking a ~100 MiB Node process, twice).
//
// The protocol, as iproute2 behaves (6.1 here): a batch tool reads its commands a line at a time and flushes
// stdout after each; a failed command prints its words and "Command failed -:N" (N counts every line the process
// read) on stderr and, without -force, ends the process; `ip neigh` exits without that marker. So each batch is
// written followed by a sentinel command whose one line of output says the batch before it succeeded, and a batch
// that fails ends its process: the next batch starts a new one.
//
// A process also caches which index each link name has: once a link is deleted and made again under the same name,
// its cached index names nothing (or, much later, another link). knit starts a fresh process after any link
// deletion of its own; a link deleted by someone else shows up as "no such device", and a batch that fails so on a
// process that ran earlier batches is run again, from the failed line on, on a fresh one.
import { unavailable } from '../errors.js';
import type { RunBatch } from './batch.js';
import { type LongLived, type RunResult, startTool } from './exec.js';
import type { BatchTool } from './render.js';

/** What one batch on a session came to: all lines done, or the 1-based line it stopped at (unknown for `ip neigh`). */
export type SessionResult = { ok: true } | { ok: false; line?: number; words: string; exitCode: number; reused: boolean };

/** How the tool is started, and the command whose output marks the end of a batch (a line matching `done`). */
const SENTINEL: Record<BatchTool, { args: string[]; command: string; done: RegExp }> = {
  // lo is link 1 in every network namespace; -o prints it on one line.
  ip: { args: ['-o', '-batch', '-'], command: 'link show dev lo', done: /^1: lo[:@]/ },
  // lo is no bridge port: its forwarding entries print as an empty JSON list.
  bridge: { args: ['-j', '-batch', '-'], command: 'fdb show dev lo', done: /^\[\]$/ },
};

const BATCH_TIMEOUT_MS = 30_000;
/** A session nobody used for this long ends (its process and its name cache). */
const IDLE_MS = 30_000;
const MARKER = /^Command failed -:(\d+)$/;
/** What a stale cached link index makes the tools say (ip neigh: "No such device"; bridge fdb: "unknown ifindex"). */
const STALE = /No such device|Cannot find device|unknown ifindex/i;

interface Waiter {
  settle: (r: SessionResult) => void;
  offset: number;
  count: number;
}

/** One tool's long-lived batch process, started when needed; batches run one at a time. */
export class BatchSession {
  private proc?: LongLived;
  private read = 0; // lines written to the current process
  private batches = 0; // batches the current process finished
  private stdout = '';
  private stderr = '';
  private waiter?: Waiter;
  private queue: Promise<unknown> = Promise.resolve();
  private idle?: NodeJS.Timeout;
  private stale = false;

  constructor(readonly tool: BatchTool) {}

  /** Runs `lines` (stopping at the first failure); `fresh` starts a new process for them first. */
  run(lines: string[], fresh = false): Promise<SessionResult> {
    const next = this.queue.then(() => this.runNow(lines, fresh));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The next batch starts a new process (knit deleted a link: cached link indexes may be wrong now). */
  recycle(): void {
    this.stale = true;
  }

  close(): void {
    clearTimeout(this.idle);
    this.proc?.end();
    this.proc = undefined;
  }

  private async runNow(lines: string[], fresh: boolean): Promise<SessionResult> {
    clearTimeout(this.idle);
    if (fresh || this.stale) this.close();
    this.stale = false;
    const proc = this.proc ?? this.start();
    const offset = this.read;
    this.read += lines.length + 1;
    this.stderr = '';
    const result = new Promise<SessionResult>((settle) => (this.waiter = { settle, offset, count: lines.length }));
    proc.write(`${lines.join('\n')}\n${SENTINEL[this.tool].command}\n`);
    const timer = setTimeout(() => {
      proc.kill();
      this.finish({ ok: false, words: `${this.tool} did not finish a batch within ${BATCH_TIMEOUT_MS} ms and was stopped`, exitCode: -1, reused: false });
    }, BATCH_TIMEOUT_MS);
    try {
      const r = await result;
      if (r.ok) this.batches++;
      if (r.ok === false && r.exitCode === -1) throw unavailable(r.words);
      return r;
    } finally {
      clearTimeout(timer);
      this.idle = setTimeout(() => this.close(), IDLE_MS);
      this.idle.unref();
    }
  }

  private start(): LongLived {
    // Output of a process already replaced (ended, killed) is nobody's: only the current one is heard.
    const proc: LongLived = startTool({
      tool: this.tool,
      args: SENTINEL[this.tool].args,
      onStdout: (text) => {
        if (this.proc === proc) this.onStdout(text);
      },
      onStderr: (text) => {
        if (this.proc === proc) this.stderr += text;
      },
    });
    this.proc = proc;
    this.read = 0;
    this.batches = 0;
    this.stdout = '';
    void proc.exited.then(({ exitCode, signal }) => {
      if (this.proc !== proc) return;
      this.proc = undefined;
      // A process that ends while a batch waits ended because of it: every line it printed is in by now.
      const w = this.waiter;
      if (!w) return;
      const code = exitCode ?? (signal ? 128 : 1);
      this.finish(batchFailure(this.stderr, w.offset, w.count, code === 0 ? 1 : code, this.batches > 0));
    });
    return proc;
  }

  private onStdout(text: string): void {
    this.stdout += text;
    const lines = this.stdout.split('\n');
    this.stdout = lines.pop() ?? '';
    if (lines.some((l) => SENTINEL[this.tool].done.test(l))) this.finish({ ok: true });
  }

  private finish(r: SessionResult): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.settle(r);
  }
}

/**
 * Pure: a failed batch from what its process printed on stderr. The marker's line counts every line the process
 * read (`offset` before this batch); the result counts from this batch's first line. A marker outside the batch, or
 * none (`ip neigh`), leaves the line unknown.
 */
export function batchFailure(stderr: string, offset: number, count: number, exitCode: number, reused: boolean): SessionResult {
  const message: string[] = [];
  let line: number | undefined;
  for (const raw of stderr.split('\n')) {
    const text = raw.trim();
    const m = MARKER.exec(text);
    if (m) {
      const n = Number(m[1]) - offset;
      if (n >= 1 && n <= count) line = n;
    } else if (text) {
      message.push(text);
    }
  }
  return { ok: false, line, words: message.join('\n') || `${exitCode === 0 ? 'exited' : `exited with code ${exitCode}`} before finishing`, exitCode, reused };
}

/**
 * Pure: a session's results as one batch process's result would read (the words of each failure followed by
 * "Command failed -:N", N counted from the batch's first line), for the appliers that parse it.
 */
export function asRunResult(failures: Array<{ line?: number; words: string; exitCode: number }>, durationMs: number): RunResult {
  const stderr = failures.map((f) => `${f.words}\n${f.line === undefined ? '' : `Command failed -:${f.line}\n`}`).join('');
  return { stdout: '', stderr, exitCode: failures.length ? failures[failures.length - 1].exitCode || 1 : 0, durationMs };
}

/** The two sessions (ip, bridge) the overlay's entries go through, as a RunBatch. */
export class BatchSessions {
  private readonly sessions: Record<BatchTool, BatchSession> = { ip: new BatchSession('ip'), bridge: new BatchSession('bridge') };

  readonly run: RunBatch = async ({ tool, lines, force }) => {
    const started = performance.now();
    const session = this.sessions[tool];
    const texts = lines.map((l) => l.text);
    const failures: Array<{ line?: number; words: string; exitCode: number }> = [];
    let from = 0; // lines before this one are done (or, with force, tried)
    let retried = false;
    while (from < texts.length) {
      const r = await session.run(texts.slice(from), retried);
      if (r.ok) break;
      // A process that ran earlier batches may hold a link's old index: try again, once, on a fresh one. Without a
      // line number (`ip neigh`) the whole rest goes again: neighbour lines (replace, flush) are idempotent.
      if (r.reused && !retried && STALE.test(r.words)) {
        retried = true;
        if (r.line !== undefined) from += r.line - 1;
        continue;
      }
      retried = false;
      failures.push({ ...r, line: r.line === undefined ? undefined : from + r.line });
      // Without force the batch stops at its first failure, as a batch process does; with force the lines after a
      // known failed one still run. `ip neigh` stops -force batches too, and so it does here.
      if (!force || r.line === undefined) break;
      from += r.line;
    }
    return asRunResult(failures, Math.round(performance.now() - started));
  };

  recycle(): void {
    for (const s of Object.values(this.sessions)) s.recycle();
  }

  close(): void {
    for (const s of Object.values(this.sessions)) s.close();
  }
}
