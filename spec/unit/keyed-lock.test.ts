// The per-key lock: shared holders overlap, an exclusive one runs alone, and arrival order is kept.
import { KeyedLock, SHARED_LIMIT } from '../../src/util/keyed-lock.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('KeyedLock', () => {
  test('shared holders of a key run side by side; an exclusive holder runs alone', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = lock.shared('n', async () => { log.push('a+'); await gate; log.push('a-'); });
    const b = lock.shared('n', async () => { log.push('b+'); await gate; log.push('b-'); });
    const w = lock.run('n', async () => { log.push('w'); });
    await tick();
    expect(log).toEqual(['a+', 'b+']);
    release();
    await Promise.all([a, b, w]);
    expect(log).toEqual(['a+', 'b+', 'a-', 'b-', 'w']);
  });

  test('a waiting exclusive holder is not overtaken by shared ones that come after it', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = lock.shared('n', async () => { await gate; log.push('first'); });
    const writer = lock.run('n', async () => { log.push('writer'); });
    const late = lock.shared('n', async () => { log.push('late'); });
    await tick();
    expect(log).toEqual([]);
    release();
    await Promise.all([first, writer, late]);
    expect(log).toEqual(['first', 'writer', 'late']);
  });

  test('other keys are not held up, and a failing holder frees the key', async () => {
    const lock = new KeyedLock();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = lock.run('a', () => gate);
    await expect(lock.run('b', async () => 'b')).resolves.toBe('b');
    release();
    await slow;
    await expect(lock.run('a', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(lock.run('a', async () => 'again')).resolves.toBe('again');
  });

  test('past SHARED_LIMIT shared holders, the next one waits for a holder to finish, then runs', async () => {
    const lock = new KeyedLock();
    let running = 0;
    let peak = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const holders = [...Array(SHARED_LIMIT + 5)].map(() => lock.shared('n', async () => {
      peak = Math.max(peak, ++running);
      await gate;
      running--;
    }));
    await tick();
    expect(running).toBe(SHARED_LIMIT);
    release();
    await Promise.all(holders);
    expect(peak).toBe(SHARED_LIMIT);
    expect(running).toBe(0);
  });
});
