// Counts what one fault suite did (operations, crashes injected, invariant checks) and reports its summary row.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { repoRoot } from '../../support/layout.js';
import { formatTable, type SummaryRow } from '../summary.mjs';

/** How many failures of one check are copied into the summary's notes. */
const SHOWN_FAILURES = 5;

export const SUMMARY_FILE = join(repoRoot, '.testbed/results/faults-summary.jsonl');

export class Tally {
  private readonly started = Date.now();
  private readonly row: SummaryRow;

  constructor(suite: string) {
    this.row = { suite, operations: 0, failedOperations: 0, crashes: 0, checksPassed: 0, checksFailed: 0, seconds: 0, notes: [] };
  }

  /** One operation (a request, a docker command); `ok` false when it was refused or failed, as faults make them. */
  op(ok = true, count = 1): void {
    this.row.operations += count;
    if (!ok) this.row.failedOperations += count;
  }

  crash(): void {
    this.row.crashes++;
  }

  get crashes(): number {
    return this.row.crashes;
  }

  note(text: string): void {
    this.row.notes?.push(text);
  }

  /**
   * Records one invariant check by its failures (none: passed) and hands them back for expect(). The first few
   * failures go into the notes too: the summary printed at the end of a run is often all a CI log keeps.
   */
  check(failures: string[]): string[] {
    if (failures.length === 0) this.row.checksPassed++;
    else this.row.checksFailed++;
    for (const f of failures.slice(0, SHOWN_FAILURES)) this.note(`check failed: ${f.slice(0, 300)}`);
    if (failures.length > SHOWN_FAILURES) this.note(`check failed: ... and ${failures.length - SHOWN_FAILURES} more`);
    return failures;
  }

  /**
   * Prints the row as a table and appends it to the run's summary file; make test-faults prints them all, joined by
   * test file with jest's results.
   */
  finish(): void {
    const testPath = expect.getState().testPath;
    if (testPath) this.row.file = relative(repoRoot, testPath);
    this.row.seconds = Math.round((Date.now() - this.started) / 1000);
    console.log(`\n${formatTable([this.row])}\n`);
    mkdirSync(dirname(SUMMARY_FILE), { recursive: true });
    appendFileSync(SUMMARY_FILE, `${JSON.stringify(this.row)}\n`);
  }
}
