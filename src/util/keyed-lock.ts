// Serialises async work per key (one network at a time) without holding up other keys.
import { Mutex } from 'async-mutex';

export class KeyedLock {
  private readonly locks = new Map<string, { mutex: Mutex; users: number }>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    let slot = this.locks.get(key);
    if (!slot) this.locks.set(key, (slot = { mutex: new Mutex(), users: 0 }));
    slot.users++;
    try {
      return await slot.mutex.runExclusive(work);
    } finally {
      if (--slot.users === 0) this.locks.delete(key);
    }
  }
}
