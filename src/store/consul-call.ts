// Bounds every Consul request in time, retries what Consul surely did not apply, and turns client errors into
// KnitErrors classed by what the caller should do.
import { setTimeout as sleep } from 'node:timers/promises';
import { KnitError, unavailable } from '../errors.js';

/** A whole operation, retries included: a request from dockerd must fail in seconds, not hang. */
export const OP_TIMEOUT_MS = 4_000;

/** Where the store is, for messages: "the consul store at 10.0.0.1:8500". */
export interface Target {
  readonly address: string;
}

/** What the consul client (and node:http beneath it) throws. */
interface ClientError extends Error {
  code?: string;
  isTimeout?: boolean;
  response?: { statusCode?: number; body?: unknown };
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

const statusOf = (err: ClientError): number | undefined => err.response?.statusCode;

/**
 * The system error code. The client re-wraps an error from another realm (node:net's, seen from jest's VM) in a new
 * Error that keeps only the message, so the code is looked for there too.
 */
function codeOf(err: ClientError): string | undefined {
  if (err.code !== undefined) return err.code;
  const named = /\b(E[A-Z]+)\b/.exec(err.message ?? '')?.[1];
  return named !== undefined && NETWORK_CODES.has(named) ? named : undefined;
}

/** Consul cannot have applied these: nothing was sent, or it refused before Raft (overload, no leader). */
function notApplied(err: ClientError): boolean {
  const status = statusOf(err);
  if (codeOf(err) === 'ECONNREFUSED' || status === 429 || status === 503) return true;
  return status === 500 && /no cluster leader/i.test(err.message);
}

/** Consul did not answer at all, or answered that it cannot serve now. */
function unreachable(err: ClientError): boolean {
  if (notApplied(err) || err.isTimeout) return true;
  const code = codeOf(err);
  return (code !== undefined && NETWORK_CODES.has(code)) || /socket hang up/i.test(err.message ?? '');
}

/**
 * Worth another try within the budget for an idempotent call (docs/store.md). Consul answers every
 * untyped error with a 500, an invalid TTL as much as an election, so only the election's own texts are retried.
 */
const isTransient = (err: unknown): boolean => {
  const e = err as ClientError;
  return unreachable(e) || (statusOf(e) === 500 && /cluster leader|not ready to serve/i.test(e.message ?? ''));
};

function translate(target: Target, what: string, err: unknown): KnitError {
  if (err instanceof KnitError) return err;
  const e = err as ClientError;
  const status = statusOf(e);
  const detail = codeOf(e) ?? e.message ?? String(err);
  if (unreachable(e)) {
    return unavailable(`the consul store at ${target.address} is unreachable (${what}: ${detail}); check that Consul runs and KNIT_STORE names it`, err);
  }
  if (status === 403) {
    return new KnitError('internal', `the consul store at ${target.address} refused ${what}: permission denied; check KNIT_CONSUL_TOKEN`, { cause: err });
  }
  const body = typeof e.response?.body === 'string' ? `: ${e.response.body}` : '';
  return new KnitError('internal', `the consul store at ${target.address} refused ${what} (${status ? `HTTP ${status}` : detail}${body})`, { cause: err });
}

/**
 * Runs `attempt` (given the time it may take) until it succeeds or the operation's budget is spent. Idempotent calls
 * are retried after any transient failure; writes only when Consul cannot have applied them, since a lost answer to
 * a compare-and-set that did land must not turn into a second, failing one.
 */
export async function bounded<T>(
  call: { target: Target; what: string; mode: 'idempotent' | 'write' },
  attempt: (timeoutMs: number) => Promise<T>,
): Promise<T> {
  const { target, what, mode } = call;
  const deadline = Date.now() + OP_TIMEOUT_MS;
  for (let n = 0; ; n++) {
    try {
      return await attempt(Math.max(deadline - Date.now(), 1));
    } catch (err) {
      const pause = Math.min(100 * 2 ** n, 1_000);
      const again = mode === 'idempotent' ? isTransient(err) : notApplied(err as ClientError);
      if (!again || Date.now() + pause >= deadline) throw translate(target, what, err);
      await sleep(pause);
    }
  }
}
