// Serialises async work per key (one network at a time) without holding up other keys. A key can also be
// held shared: endpoints of one network are made side by side, while the network itself cannot change.
// Each key is a weighted semaphore: a shared holder takes one unit, an exclusive one all of them. Waiters are
// served in arrival order, so a steady stream of shared holders never starves an exclusive one.
import { Semaphore } from 'async-mutex';

/**
 * How many shared holders a key admits at once; more wait their turn. Kept small on purpose: async-mutex
 * walks every unit on each release, so a huge figure (a million) made each lock call cost milliseconds.
 */
export const SHARED_LIMIT = 256;

export class KeyedLock {
  private readonly slots = new Map<string, { semaphore: Semaphore; users: number }>();

  /** Runs `work` alone on `key`. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.hold(key, SHARED_LIMIT, work);
  }

  /** Runs `work` beside other shared holders of `key`, never beside an exclusive one. */
  shared<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.hold(key, 1, work);
  }

  private async hold<T>(key: string, units: number, work: () => Promise<T>): Promise<T> {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = { semaphore: new Semaphore(SHARED_LIMIT), users: 0 }));
    slot.users++;
    try {
      return await slot.semaphore.runExclusive(work, units);
    } finally {
      if (--slot.users === 0) this.slots.delete(key);
    }
  }
}
