// The fault suite's summary table: one row per test file, from the JSON lines each suite appends (what it did) and
// jest's results (whether its tests passed). The "tests failed" column is jest's verdict, so a test that failed
// outside the invariant checks, or a file that died before writing its row, still shows as failed.
import { existsSync, readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const COLUMNS = [
  ['suite', 'suite'],
  ['operations', 'operations'],
  ['failedOperations', 'ops refused/failed'],
  ['crashes', 'crashes injected'],
  ['checksPassed', 'checks passed'],
  ['checksFailed', 'checks failed'],
  ['testsPassed', 'tests passed'],
  ['testsFailed', 'tests failed'],
  ['seconds', 'seconds'],
];
const SUMMED = COLUMNS.slice(1).map(([key]) => key);

/** A markdown table (it reads as plain text too) with a total row when there is more than one suite. */
export function formatTable(rows) {
  // Jest's columns only once its results are joined in (a suite printing its own row has none yet).
  const columns = COLUMNS.filter(([key]) => !key.startsWith('tests') || rows.some((r) => r[key] !== undefined));
  const all = rows.length > 1 ? [...rows, total(rows)] : rows;
  const cells = all.map((r) => columns.map(([key]) => String(r[key] ?? '')));
  const head = columns.map(([, title]) => title);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const notes = rows.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.suite}: ${n}`));
  return [line(head), rule, ...cells.map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

function total(rows) {
  const sums = Object.fromEntries(SUMMED.map((key) => [key, rows.reduce((acc, r) => acc + (Number(r[key]) || 0), 0)]));
  return { suite: 'total', ...sums };
}

export function readRows(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Jest's verdict per test file: failed tests, plus one for a file that failed outside its tests (beforeAll, afterAll). */
function verdicts(jestFile, root) {
  const run = JSON.parse(readFileSync(jestFile, 'utf8'));
  return (run.testResults ?? []).map((f) => {
    const passed = f.assertionResults.filter((a) => a.status === 'passed').length;
    const failedTests = f.assertionResults.filter((a) => a.status === 'failed');
    const outside = f.status === 'failed' && failedTests.length === 0 ? 1 : 0;
    const titles = failedTests.map((a) => `failed: ${a.title}`);
    if (outside) titles.push(`failed outside its tests: ${String(f.message ?? '').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('●')) ?? ''}`);
    return { file: relative(root, f.name), passed, failed: failedTests.length + outside, titles };
  });
}

/**
 * The rows with jest's results joined by test file. A file with no row (it died before its afterAll) gets one; a row
 * whose file has no jest result (jest crashed, or no results file) is marked failed, since nothing says it passed.
 */
export function joinResults(rows, jestFile, root = process.cwd()) {
  let results;
  try {
    results = verdicts(jestFile, root);
  } catch (err) {
    return rows.map((r) => ({ ...r, testsPassed: 0, testsFailed: 1, notes: [...(r.notes ?? []), `no jest result (${err.message.split('\n')[0]})`] }));
  }
  const joined = rows.map((r) => {
    const v = results.find((x) => x.file === r.file);
    if (!v) return { ...r, testsPassed: 0, testsFailed: 1, notes: [...(r.notes ?? []), 'jest has no result for this file'] };
    return { ...r, testsPassed: v.passed, testsFailed: v.failed, notes: [...(r.notes ?? []), ...v.titles] };
  });
  for (const v of results.filter((x) => !rows.some((r) => r.file === x.file))) {
    joined.push({ suite: basename(v.file, '.test.ts'), file: v.file, testsPassed: v.passed, testsFailed: v.failed, notes: ['wrote no summary row', ...v.titles] });
  }
  return joined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = joinResults(readRows(process.argv[2] ?? '.testbed/results/faults-summary.jsonl'), process.argv[3] ?? '.testbed/results/faults.json');
  console.log(rows.length ? `\nknit fault suite\n\n${formatTable(rows)}\n` : 'knit fault suite: no suite reported a summary and jest reported no test file');
  const failed = rows.length === 0 || rows.some((r) => r.testsFailed > 0);
  process.exitCode = failed ? 1 : 0;
}
