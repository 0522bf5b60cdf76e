// The pure half of the long-lived batch sessions: a failure's line counted from the batch, and the result the
// appliers parse.
import { asRunResult, batchFailure } from '../../src/datapath/batch-session.js';
import { parseBatchErrors } from '../../src/datapath/parse.js';

describe('batchFailure', () => {
  test('the marker counts every line the process read; the failure counts from the batch', () => {
    // 7 lines before this batch (earlier batches and their sentinels); its third line failed.
    const r = batchFailure('RTNETLINK answers: File exists\nCommand failed -:10\n', 7, 4, 1, true);
    expect(r).toEqual({ ok: false, line: 3, words: 'RTNETLINK answers: File exists', exitCode: 1, reused: true });
  });

  test('no marker (ip neigh exits at once), or one outside the batch: the line is unknown', () => {
    expect(batchFailure('RTNETLINK answers: No such device\n', 0, 2, 2, false)).toMatchObject({ line: undefined, words: 'RTNETLINK answers: No such device', exitCode: 2 });
    expect(batchFailure('Command failed -:3\n', 3, 2, 1, false)).toMatchObject({ line: undefined });
  });

  test('a process that ended saying nothing still fails, with its exit code', () => {
    expect(batchFailure('', 0, 1, 137, false)).toMatchObject({ ok: false, words: 'exited with code 137 before finishing', exitCode: 137 });
  });
});

describe('asRunResult', () => {
  test('no failure reads as a clean exit', () => {
    expect(asRunResult([], 3)).toEqual({ stdout: '', stderr: '', exitCode: 0, durationMs: 3 });
  });

  test('failures read back through the batch parser with their lines and words', () => {
    const r = asRunResult([{ line: 2, words: 'Error: Cannot find device "x"', exitCode: 1 }, { words: 'RTNETLINK answers: Invalid argument', exitCode: 2 }], 1);
    expect(r.exitCode).toBe(2);
    expect(parseBatchErrors(r.stderr, r.exitCode)).toEqual([{ line: 2, words: 'Cannot find device "x"' }, { words: 'Invalid argument' }]);
  });
});
