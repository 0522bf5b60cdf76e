// Serialises async work per key (one network at a time) without holding up other keys. A key can also be
// held shared: endpoints of one network are made side by side, while the network itself cannot change.
// Waiters are served in arrival order, so a steady stream of shared holders never starves an exclusive one.

interface Waiter {
  shared: boolean;
  grant: () => void;
}

interface Slot {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

export class KeyedLock {
  private readonly slots = new Map<string, Slot>();

  /** Runs `work` alone on `key`. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.hold(key, false, work);
  }

  /** Runs `work` beside other shared holders of `key`, never beside an exclusive one. */
  shared<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.hold(key, true, work);
  }

  private async hold<T>(key: string, shared: boolean, work: () => Promise<T>): Promise<T> {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = { readers: 0, writer: false, queue: [] }));
    const s = slot;
    await new Promise<void>((grant) => {
      s.queue.push({ shared, grant });
      this.dispatch(s);
    });
    try {
      return await work();
    } finally {
      if (shared) s.readers--;
      else s.writer = false;
      this.dispatch(s);
      if (!s.writer && s.readers === 0 && s.queue.length === 0) this.slots.delete(key);
    }
  }

  private dispatch(s: Slot): void {
    while (s.queue.length && !s.writer) {
      const next = s.queue[0];
      if (next.shared) {
        s.readers++;
      } else {
        if (s.readers > 0) return;
        s.writer = true;
      }
      s.queue.shift();
      next.grant();
    }
  }
}
