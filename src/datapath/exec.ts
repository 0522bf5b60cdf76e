// The one place that starts processes: a fixed set of kernel tools, no shell, a timeout, and a count per tool.
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { KnitError, unavailable } from '../errors.js';

export type Tool = 'ip' | 'bridge' | 'iptables-restore' | 'ip6tables-restore' | 'iptables-save' | 'ip6tables-save' | 'sysctl' | 'conntrack' | 'wg' | 'wireguard-go';

export interface Command {
  tool: Tool;
  args: string[];
  input?: string;
  timeoutMs?: number;
  /** Added to the environment (which is otherwise knit's own, with LC_ALL=C). */
  env?: Record<string, string>;
}

/** A finished process; a non-zero exit code is a result, not an exception. */
export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
// dockerd and managed plugins often run with a PATH that lacks the sbin directories these tools live in.
const EXTRA_DIRS = ['/usr/sbin', '/sbin'];

const counts = new Map<Tool, number>();
const resolved = new Map<Tool, string>();

/** Processes started so far, per tool (for benchmarks and for tests of the one-process-per-batch rule). */
export function spawnCounts(): Record<Tool, number> {
  const all: Tool[] = ['ip', 'bridge', 'iptables-restore', 'ip6tables-restore', 'iptables-save', 'ip6tables-save', 'sysctl', 'conntrack', 'wg', 'wireguard-go'];
  return Object.fromEntries(all.map((t) => [t, counts.get(t) ?? 0])) as Record<Tool, number>;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function resolveTool(tool: Tool): string {
  const known = resolved.get(tool);
  if (known) return known;
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...EXTRA_DIRS];
  const path = dirs.map((d) => join(d, tool)).find(isExecutable);
  if (!path) throw new KnitError('internal', `cannot start ${tool}: it is not installed (looked in ${[...new Set(dirs)].join(', ')})`);
  resolved.set(tool, path);
  return path;
}

export async function run(cmd: Command): Promise<RunResult> {
  const path = resolveTool(cmd.tool);
  const timeout = cmd.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  counts.set(cmd.tool, (counts.get(cmd.tool) ?? 0) + 1);
  const started = performance.now();
  const r = await execa(path, cmd.args, {
    input: cmd.input ?? '',
    timeout,
    reject: false,
    // The kernel's words are parsed (e.g. "Cannot find device"): keep them untranslated.
    env: { ...cmd.env, LC_ALL: 'C' },
  });
  const durationMs = Math.round(performance.now() - started);
  if (r.timedOut) throw unavailable(`${cmd.tool} did not finish within ${timeout} ms and was stopped`);
  if (r.exitCode === undefined) {
    const why = r.signal ? `it was killed by ${r.signal}` : (r.shortMessage ?? r.code ?? 'unknown error');
    throw new KnitError('internal', `cannot run ${cmd.tool} (${path}): ${why}`, { cause: r.cause });
  }
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode, durationMs };
}

/** A tool left running to take commands on its stdin (a batch session); output arrives as it is written. */
export interface LongLived {
  write(text: string): void;
  /** No more input: the tool finishes what it read and exits. */
  end(): void;
  kill(): void;
  /** Settles once the process has exited and its output has all been delivered. */
  readonly exited: Promise<{ exitCode?: number; signal?: string }>;
}

/** Starts `tool` for a long conversation; it dies with its stdin, so a knit killed with -9 leaves none behind. */
export function startTool(cmd: { tool: Tool; args: string[]; onStdout: (text: string) => void; onStderr: (text: string) => void }): LongLived {
  const path = resolveTool(cmd.tool);
  counts.set(cmd.tool, (counts.get(cmd.tool) ?? 0) + 1);
  const p: ResultPromise<{ buffer: false; reject: false; env: Record<string, string> }> = execa(path, cmd.args, {
    buffer: false,
    reject: false,
    env: { LC_ALL: 'C' },
  });
  p.stdout.setEncoding('utf8').on('data', cmd.onStdout);
  p.stderr.setEncoding('utf8').on('data', cmd.onStderr);
  // A write to a tool that has just exited fails with EPIPE: the exit itself is what the caller hears of.
  p.stdin.on('error', () => undefined);
  // Neither the process nor its pipes keep knit (or a test) alive.
  p.unref();
  for (const stream of [p.stdin, p.stdout, p.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
  return {
    write: (text) => void p.stdin.write(text),
    end: () => void p.stdin.end(),
    kill: () => void p.kill('SIGKILL'),
    exited: p.then((r) => ({ exitCode: r.exitCode, signal: r.signal })),
  };
}
