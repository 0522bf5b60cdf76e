// A bound on how long an answer may take: status and metrics must answer even when the cluster store does not.

/** `p`, or a rejection saying `what` did not answer within `ms`; leaves no timer behind either way. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
