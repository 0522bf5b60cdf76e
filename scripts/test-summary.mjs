// Prints one line "N passed, N failed" over the jest result files of one run (CI reads it), after a line per suite.
// The line never reads better than the run was: a suite that was meant to run and left no result file, or one that
// does not parse, or one older than the run (left from an earlier run), counts as a failure; so does a test file
// whose beforeAll/afterAll failed or that could not run, a file with no tests, and a run jest itself calls failed.
//
//   node scripts/test-summary.mjs DIR [--suites unit,kernel,e2e] [--since EPOCH_MS]
//
// --suites: the result files (DIR/<suite>.json) the run was meant to write; without it, every *.json in DIR.
// --since: when the run started; a result file written or started before it is stale. Exit status 1 on any failure.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function parseArgs(argv) {
  const [dir, ...rest] = argv;
  const opts = { dir, suites: undefined, since: undefined };
  for (let i = 0; i < rest.length; i += 2) {
    const [name, value] = [rest[i], rest[i + 1]];
    if (name === '--suites' && value) opts.suites = value.split(',').filter(Boolean);
    else if (name === '--since' && /^\d+$/.test(value ?? '')) opts.since = Number(value);
    else throw new Error(`unknown or incomplete argument ${JSON.stringify(name)} (usage: test-summary.mjs DIR [--suites a,b] [--since EPOCH_MS])`);
  }
  if (!dir) throw new Error('usage: test-summary.mjs DIR [--suites a,b] [--since EPOCH_MS]');
  return opts;
}

/** Failures jest reports beside the assertions: a file that failed with none of its tests failing failed outside them. */
function fileFailures(file) {
  const failedTests = (file.assertionResults ?? []).filter((a) => a.status === 'failed').length;
  const broken = file.status === 'failed' || Boolean(file.testExecError) || Boolean(file.failureMessage);
  if (broken && failedTests === 0) return [`${relative(process.cwd(), String(file.name))}: ${firstLine(file.message ?? file.failureMessage ?? file.testExecError?.message)}`];
  if ((file.assertionResults ?? []).length === 0) return [`${relative(process.cwd(), String(file.name))}: no tests ran`];
  return [];
}

const firstLine = (text) => String(text ?? 'failed outside its tests').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('●')) ?? 'failed outside its tests';

/** One result file: its counts, and the problems that count as failures on top of jest's failed tests. */
function judge(run) {
  const files = Array.isArray(run.testResults) ? run.testResults : [];
  const problems = files.flatMap(fileFailures);
  if (files.length === 0) problems.push('no test file ran');
  if (run.wasInterrupted) problems.push('the run was interrupted');
  let failed = (Number(run.numFailedTests) || 0) + problems.length;
  if (run.success !== true && failed === 0) {
    problems.push('jest did not report the run as a success');
    failed = 1;
  }
  return { passed: Number(run.numPassedTests) || 0, failed, problems };
}

/** File times come from the kernel's coarse clock, a few milliseconds behind Date.now(); a real run takes seconds. */
const CLOCK_SLACK_MS = 1_000;

function readSuite(dir, suite, since) {
  const path = join(dir, `${suite}.json`);
  if (!existsSync(path)) return { passed: 0, failed: 1, problems: ['no result file: the suite crashed or never ran'] };
  let run;
  try {
    run = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { passed: 0, failed: 1, problems: [`its result file does not parse (${err.message})`] };
  }
  if (typeof run !== 'object' || run === null) return { passed: 0, failed: 1, problems: ['its result file holds no jest results'] };
  const written = statSync(path).mtimeMs;
  if (since !== undefined && (written < since - CLOCK_SLACK_MS || !(Number(run.startTime) >= since - CLOCK_SLACK_MS))) {
    return { passed: 0, failed: 1, problems: [`stale: its result file is from an earlier run (${new Date(Math.min(written, Number(run.startTime) || written)).toISOString()})`] };
  }
  return judge(run);
}

function summarize({ dir, suites, since }) {
  const names = suites ?? (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort() : []);
  const lines = [];
  let passed = 0;
  let failed = 0;
  for (const suite of names) {
    const r = readSuite(dir, suite, since);
    passed += r.passed;
    failed += r.failed;
    lines.push(`${suite}: ${r.passed} passed, ${r.failed} failed`, ...r.problems.map((p) => `  ${p}`));
  }
  if (names.length === 0) {
    failed = 1;
    lines.push(`no result files in ${dir}: no suite ran`);
  }
  lines.push(`${passed} passed, ${failed} failed`);
  return { lines, passed, failed };
}

let summary;
try {
  summary = summarize(parseArgs(process.argv.slice(2)));
} catch (err) {
  summary = { lines: [`test-summary: ${err.message}`, '0 passed, 1 failed'], failed: 1 };
}
console.log(summary.lines.join('\n'));
process.exitCode = summary.failed ? 1 : 0;
