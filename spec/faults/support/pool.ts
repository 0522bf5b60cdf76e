// Runs async work over a list with a fixed number in flight, stopping at a deadline.
export async function inParallel<T>(items: readonly T[], width: number, deadline: number, work: (item: T, index: number) => Promise<void>): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && Date.now() < deadline) {
      const at = next++;
      await work(items[at], at);
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return done;
}

/** Samples `probe` every `everyMs` until stopped; keeps the largest value seen. */
export function sampleMax(probe: () => Promise<number>, everyMs: number): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      max = Math.max(max, await probe());
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return max;
    },
  };
}
