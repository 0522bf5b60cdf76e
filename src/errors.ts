// Errors classed by what the caller should do; the protocol layer turns them into wire replies.

export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

export class KnitError extends Error {
  constructor(readonly kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KnitError';
  }
}

export const badRequest = (message: string): KnitError => new KnitError('bad-request', message);
export const notFound = (message: string): KnitError => new KnitError('not-found', message);
export const conflict = (message: string): KnitError => new KnitError('conflict', message);
export const unavailable = (message: string, cause?: unknown): KnitError =>
  new KnitError('unavailable', message, { cause });

/** The message a user sees for any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
