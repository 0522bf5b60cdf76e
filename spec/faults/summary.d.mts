// Types of summary.mjs, for the TypeScript suites that print their own row.
export interface SummaryRow {
  suite: string;
  operations: number;
  failedOperations: number;
  crashes: number;
  checksPassed: number;
  checksFailed: number;
  seconds: number;
  notes?: string[];
}
export function formatTable(rows: SummaryRow[]): string;
export function readRows(file: string): SummaryRow[];
