// The one place the test bed starts processes: argv arrays only, every run bounded in time, failures explained.
import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type Options } from 'execa';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Throw a RunError on a non-zero exit (the default); with false the result carries the exit code. */
  reject?: boolean;
  input?: string;
}

export class RunError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
    readonly durationMs: number,
    readonly timedOut: boolean,
  ) {
    const what = timedOut ? 'timed out' : `exited ${result.exitCode}`;
    const detail = (result.stderr.trim() || result.stdout.trim()).slice(-2_000);
    super(`\`${argv.join(' ')}\` ${what} after ${Math.round(durationMs)} ms${detail ? `: ${detail}` : ''}`);
    this.name = 'RunError';
  }
}

export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  const r = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    forceKillAfterDelay: 2_000,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
  });
  // A command that never started (ENOENT) or was killed has no exit code: report its reason in stderr.
  const exitCode = typeof r.exitCode === 'number' ? r.exitCode : -1;
  const stderr = exitCode === -1 ? `${r.stderr}\n${r.shortMessage}`.trim() : r.stderr;
  const result = { stdout: r.stdout, stderr, exitCode };
  if (exitCode !== 0 && opts.reject !== false) throw new RunError(argv, result, r.durationMs, r.timedOut);
  return result;
}

/** Thrown by a waitFor probe to stop waiting at once (the thing waited for can no longer happen). */
export class GiveUp extends Error {}

/** Polls `probe` until it returns something truthy; bounded by time and therefore by count. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  { timeoutMs = 30_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 1;
  let lastError: unknown;
  for (let i = 0; i < maxTries && Date.now() <= deadline; i++) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`gave up waiting for ${what}: ${err.message}`);
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
}

export const TIMED_OUT = Symbol('timed out');

/** Settles with the promise's value, or TIMED_OUT after ms; leaves no timer behind either way. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A long-running process: its output goes to a log file and, when captured, to a bounded memory buffer. */
export interface Spawned {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly logFile: string;
  /** Resolves with the exit code, or null when a signal ended it. Never rejects. */
  readonly exited: Promise<number | null>;
  /** The last MAX_CAPTURE characters written to stdout / stderr (empty when not captured). */
  readonly stdout: string;
  readonly stderr: string;
  running(): boolean;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | null>;
}

const MAX_CAPTURE = 512 * 1024;

export interface SpawnOptions {
  logFile: string;
  env?: Record<string, string>;
  /** Keep stdout/stderr in memory too, not only in the log file. */
  capture?: boolean;
}

export function spawnLogged(argv: readonly string[], opts: SpawnOptions): Spawned {
  const [file, ...args] = argv;
  const target = opts.capture ? 'pipe' : { file: opts.logFile, append: true };
  // No forceKillAfterDelay: stop() escalates itself, and execa's would SIGKILL a dockerd still shutting down.
  const options: Options = {
    reject: false,
    buffer: false,
    stdin: 'ignore',
    stdout: target,
    stderr: target,
    env: opts.env ?? {},
    cleanup: true,
    forceKillAfterDelay: false,
  };
  const sub = execa(file, args, options);
  if (sub.pid === undefined) throw new Error(`could not start \`${argv.join(' ')}\``);
  const out = { stdout: '', stderr: '' };
  const log = opts.capture ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  for (const key of ['stdout', 'stderr'] as const) {
    sub[key]?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      out[key] = (out[key] + text).slice(-MAX_CAPTURE);
      log?.write(text);
    });
  }
  let done = false;
  const exited = sub.then(async (r) => {
    done = true;
    if (log) await new Promise<void>((resolve) => log.end(resolve));
    return typeof r.exitCode === 'number' ? r.exitCode : null;
  });
  const pid = sub.pid;
  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (!done) sub.kill(signal);
  };
  return {
    pid,
    argv,
    logFile: opts.logFile,
    exited,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    running: () => !done,
    kill,
    async stop(graceMs = 10_000) {
      kill('SIGTERM');
      if ((await within(exited, graceMs)) === TIMED_OUT) kill('SIGKILL');
      return exited;
    },
  };
}
