// Prints one line "N passed, N failed" over every jest result file in a folder (CI reads it).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let missing = 0;
for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
  try {
    const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    // A suite that failed to run at all counts as a failure too.
    failed += r.testResults.filter((t) => t.status === 'failed' && t.assertionResults.length === 0).length;
    console.log(`${f.replace('.json', '')}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  } catch {
    missing++;
  }
}
if (missing) failed += missing;
console.log(`${passed} passed, ${failed} failed`);
