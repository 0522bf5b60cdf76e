// The fault suite's summary table: one row per suite, read from the JSON lines each suite appends.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COLUMNS = [
  ['suite', 'suite'],
  ['operations', 'operations'],
  ['failedOperations', 'ops refused/failed'],
  ['crashes', 'crashes injected'],
  ['checksPassed', 'checks passed'],
  ['checksFailed', 'checks failed'],
  ['seconds', 'seconds'],
];

/** A markdown table (it reads as plain text too) with a total row when there is more than one suite. */
export function formatTable(rows) {
  const all = rows.length > 1 ? [...rows, total(rows)] : rows;
  const cells = all.map((r) => COLUMNS.map(([key]) => String(r[key] ?? '')));
  const head = COLUMNS.map(([, title]) => title);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const notes = rows.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.suite}: ${n}`));
  return [line(head), rule, ...cells.map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

function total(rows) {
  const sum = (key) => rows.reduce((acc, r) => acc + (Number(r[key]) || 0), 0);
  return {
    suite: 'total',
    operations: sum('operations'),
    failedOperations: sum('failedOperations'),
    crashes: sum('crashes'),
    checksPassed: sum('checksPassed'),
    checksFailed: sum('checksFailed'),
    seconds: Math.round(sum('seconds')),
  };
}

export function readRows(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = readRows(process.argv[2] ?? '.testbed/results/faults-summary.jsonl');
  console.log(rows.length ? `\nknit fault suite\n\n${formatTable(rows)}\n` : 'knit fault suite: no suite reported a summary');
}
