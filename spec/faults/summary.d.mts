// Types of summary.mjs, for the TypeScript suites that print their own row.
export interface SummaryRow {
  suite: string;
  /** The test file, relative to the repository, to join jest's results with. */
  file?: string;
  operations: number;
  failedOperations: number;
  crashes: number;
  checksPassed: number;
  checksFailed: number;
  /** From jest's results, joined by file when the table is printed. */
  testsPassed?: number;
  testsFailed?: number;
  seconds: number;
  notes?: string[];
}
export function formatTable(rows: SummaryRow[]): string;
export function readRows(file: string): SummaryRow[];
export function joinResults(rows: SummaryRow[], jestFile: string, root?: string): SummaryRow[];
