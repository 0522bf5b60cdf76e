// The closing lines CI reads, from crafted jest result files: scripts/test-summary.mjs ("N passed, N failed") and the
// fault suite's table (spec/faults/summary.mjs). Neither may ever read better than the run was.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/layout.js';

interface FileResult {
  name: string;
  status: 'passed' | 'failed';
  message: string;
  assertionResults: { title: string; status: 'passed' | 'failed' }[];
}

/** A test file's result as jest --json writes it; `outside` is a beforeAll/afterAll failure (status failed, message set). */
function file(name: string, tests: Record<string, boolean>, outside = ''): FileResult {
  const assertionResults = Object.entries(tests).map(([title, ok]) => ({ title, status: ok ? ('passed' as const) : ('failed' as const) }));
  const failed = outside !== '' || assertionResults.some((a) => a.status === 'failed');
  const message = outside ? `  ● Test suite failed to run\n\n    ${outside}\n` : '';
  return { name: join(repoRoot, name), status: failed ? 'failed' : 'passed', message, assertionResults };
}

function run(files: FileResult[], startTime = Date.now()): Record<string, unknown> {
  const tests = files.flatMap((f) => f.assertionResults);
  const numFailedTests = tests.filter((t) => t.status === 'failed').length;
  const success = files.every((f) => f.status === 'passed');
  return { numPassedTests: tests.length - numFailedTests, numFailedTests, numTotalTests: tests.length, startTime, success, wasInterrupted: false, testResults: files };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'knit-summary-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, content: unknown): void => writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));

/** Runs a script from the repository root; its stdout lines and exit status. */
function node(script: string, args: string[]): { lines: string[]; status: number } {
  try {
    return { lines: execFileSync('node', [script, ...args], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n'), status: 0 };
  } catch (err) {
    const e = err as { stdout: string; status: number };
    return { lines: e.stdout.trim().split('\n'), status: e.status };
  }
}

const summary = (...args: string[]) => node('scripts/test-summary.mjs', [dir, ...args]);
const last = (r: { lines: string[] }): string => r.lines[r.lines.length - 1];
const passing = () => run([file('spec/unit/a.test.ts', { one: true, two: true })]);

describe('scripts/test-summary.mjs', () => {
  test('all passing: the counts, and exit status 0', () => {
    write('unit.json', passing());
    write('e2e.json', run([file('spec/e2e/b.test.ts', { three: true })]));
    const r = summary('--suites', 'unit,e2e', '--since', String(Date.now() - 60_000));
    expect(r.lines).toEqual(['unit: 2 passed, 0 failed', 'e2e: 1 passed, 0 failed', '3 passed, 0 failed']);
    expect(r.status).toBe(0);
  });

  test('failed tests are counted', () => {
    write('unit.json', run([file('spec/unit/a.test.ts', { one: true, two: false })]));
    expect(last(summary())).toBe('1 passed, 1 failed');
  });

  test('a suite that was meant to run and left no result file (it crashed) is a failure', () => {
    write('unit.json', passing());
    const r = summary('--suites', 'unit,kernel');
    expect(r.lines).toContain('kernel: 0 passed, 1 failed');
    expect(r.lines).toContain('  no result file: the suite crashed or never ran');
    expect(last(r)).toBe('2 passed, 1 failed');
    expect(r.status).toBe(1);
  });

  test('a result file cut short (jest killed while writing) is a failure', () => {
    write('unit.json', JSON.stringify(passing()).slice(0, 40));
    const r = summary('--suites', 'unit');
    expect(r.lines[1]).toMatch(/^ {2}its result file does not parse/);
    expect(last(r)).toBe('0 passed, 1 failed');
  });

  test('a file whose afterAll failed counts as failed although all its tests passed', () => {
    write('unit.json', run([file('spec/unit/a.test.ts', { one: true }, 'teardown broke'), file('spec/unit/b.test.ts', { two: true })]));
    const r = summary('--suites', 'unit');
    expect(r.lines).toContain('  spec/unit/a.test.ts: teardown broke');
    expect(last(r)).toBe('2 passed, 1 failed');
    expect(r.status).toBe(1);
  });

  test('a file that could not run at all (no tests, status failed) is a failure', () => {
    write('unit.json', run([file('spec/unit/a.test.ts', {}, 'Cannot find module')]));
    expect(last(summary())).toBe('0 passed, 1 failed');
  });

  test('a run jest calls failed with nothing else to show for it is a failure', () => {
    write('unit.json', { ...passing(), success: false });
    expect(last(summary())).toBe('2 passed, 1 failed');
  });

  test('a result file from an earlier run is stale: its passes are not counted and it is a failure', () => {
    const since = Date.now();
    write('unit.json', passing());
    write('kernel.json', run([file('spec/kernel/k.test.ts', { old: true })], since - 3_600_000));
    const old = new Date(since - 3_600_000);
    utimesSync(join(dir, 'kernel.json'), old, old);
    const r = summary('--suites', 'unit,kernel', '--since', String(since));
    expect(r.lines).toContain('kernel: 0 passed, 1 failed');
    expect(r.lines.some((l) => l.startsWith('  stale: its result file is from an earlier run'))).toBe(true);
    expect(last(r)).toBe('2 passed, 1 failed');
  });

  test('an empty results folder prints a failing line', () => {
    const r = summary();
    expect(last(r)).toBe('0 passed, 1 failed');
    expect(r.status).toBe(1);
  });

  test('a bad argument prints a failing line', () => {
    expect(last(summary('--sinse', '5'))).toBe('0 passed, 1 failed');
  });
});

describe('spec/faults/summary.mjs', () => {
  const row = (suite: string, f: string, checksFailed = 0) =>
    JSON.stringify({ suite, file: f, operations: 10, failedOperations: 1, crashes: 2, checksPassed: 3, checksFailed, seconds: 5, notes: [] });
  const table = () => node('spec/faults/summary.mjs', [join(dir, 'rows.jsonl'), join(dir, 'faults.json')]);
  /** The cell of `column` in the row of `suite`. */
  const cell = (lines: string[], suite: string, column: string): string => {
    const split = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
    const head = split(lines.find((l) => l.includes('| suite'))!);
    return split(lines.find((l) => l.startsWith(`| ${suite} `))!)[head.indexOf(column)];
  };

  test("the tests failed column is jest's verdict, afterAll failures and files without a row included", () => {
    write('rows.jsonl', [row('churn', 'spec/faults/churn.test.ts'), row('access', 'spec/faults/access.test.ts')].join('\n'));
    write('faults.json', run([
      file('spec/faults/churn.test.ts', { pings: true, 'no leaks': false }),
      file('spec/faults/access.test.ts', { socket: true }, 'teardown broke'),
      file('spec/faults/store.test.ts', { cut: false }),
    ]));
    const r = table();
    expect(cell(r.lines, 'churn', 'checks failed')).toBe('0');
    expect(cell(r.lines, 'churn', 'tests failed')).toBe('1');
    expect(cell(r.lines, 'access', 'tests passed')).toBe('1');
    expect(cell(r.lines, 'access', 'tests failed')).toBe('1');
    expect(cell(r.lines, 'store', 'tests failed')).toBe('1');
    expect(cell(r.lines, 'total', 'tests failed')).toBe('3');
    expect(r.lines).toContain('- churn: failed: no leaks');
    expect(r.lines).toContain('- store: wrote no summary row');
    expect(r.status).toBe(1);
  });

  test('without jest results every row is failed; all passing exits 0', () => {
    write('rows.jsonl', row('churn', 'spec/faults/churn.test.ts'));
    expect(cell(table().lines, 'churn', 'tests failed')).toBe('1');
    write('faults.json', run([file('spec/faults/churn.test.ts', { pings: true })]));
    const r = table();
    expect(cell(r.lines, 'churn', 'tests failed')).toBe('0');
    expect(r.status).toBe(0);
  });
});
