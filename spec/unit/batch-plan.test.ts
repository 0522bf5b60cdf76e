// Which call of a shared `ip -batch` a failing line belongs to, and which ops of a lone batch to undo.
import { attribute, locate } from '../../src/datapath/batch-plan.js';
import type { Op } from '../../src/datapath/ops.js';
import { renderBatches } from '../../src/datapath/render.js';

describe('attribute (group commit)', () => {
  test.each([
    // sizes of the calls' line runs, failing 1-based line, culprit call, lines of it that ran
    [[2, 3, 1], 1, 0, 0],
    [[2, 3, 1], 2, 0, 1],
    [[2, 3, 1], 3, 1, 0],
    [[2, 3, 1], 5, 1, 2],
    [[2, 3, 1], 6, 2, 0],
    [[1], 1, 0, 0],
  ])('calls of %j, line %i fails: call %i is to blame after %i of its lines', (sizes, line, culprit, within) => {
    expect(attribute(sizes, line)).toEqual({ culprit, within });
  });

  test.each([undefined, 0, 7, -1])('no usable line (%p) blames no call', (line) => {
    expect(attribute([2, 3, 1], line)).toEqual({ within: 0 });
  });
});

describe('locate (lone batch)', () => {
  const ops: Op[] = [
    { op: 'link-up', name: 'kn-a' },
    { op: 'link-up', name: 'kn-b' },
  ];

  test('a failing line undoes the ops before it and names its op', () => {
    const { ip } = renderBatches(ops);
    expect(locate({ ops, lines: ip, failure: { line: 2, words: 'x' } })).toEqual({ done: [0], failed: 1 });
    expect(locate({ ops, lines: ip, failure: { line: 1, words: 'x' } })).toEqual({ done: [], failed: 0 });
  });

  test('no line number and no neighbour op: nothing is undone and no op is named', () => {
    const { ip } = renderBatches(ops);
    expect(locate({ ops, lines: ip, failure: { words: 'x' } })).toEqual({ done: [] });
  });

  test('no line number with one neighbour op: the ops before it ran, and it is the one that failed', () => {
    const withNeigh: Op[] = [...ops, { op: 'neigh-add', dev: 'kn-a', ip: '10.0.0.2', mac: '02:00:00:00:00:02' }];
    const { ip } = renderBatches(withNeigh);
    expect(locate({ ops: withNeigh, lines: ip, failure: { words: 'x' } })).toEqual({ done: [0, 1, 2], failed: 2 });
  });
});
