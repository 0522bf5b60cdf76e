// Bounds every etcd operation in time and turns client errors into KnitErrors classed by what the caller should do.
import { ClientClosedError, EtcdLeaseInvalidError, isRecoverableError } from 'etcd3';
import { KnitError, unavailable } from '../errors.js';

/** A whole operation, retries included: a request from dockerd must fail in seconds, not hang. */
export const OP_TIMEOUT_MS = 4_500;

class OperationTimeout extends Error {
  constructor() {
    super(`no answer within ${OP_TIMEOUT_MS} ms`);
  }
}

/** Where the store is, for messages: "etcd store at 10.0.0.1:2379,10.0.0.2:2379". */
export interface Target {
  readonly endpoints: string;
}

// cockatiel (the client's fault-handling library) marks its open-circuit error with this flag.
const isBrokenCircuit = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && (err as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true;

function translate(target: Target, what: string, err: unknown): KnitError {
  if (err instanceof KnitError) return err;
  // gRPC appends an empty "Resolution note:" to connection errors.
  const detail = isBrokenCircuit(err)
    ? 'the last attempts failed; the client tries again within 5 s'
    : (err instanceof Error ? err.message : String(err)).replace(/[\s.]*Resolution note:\s*$/, '');
  if (err instanceof OperationTimeout || isBrokenCircuit(err) || (err instanceof Error && isRecoverableError(err))) {
    const hint = 'check that etcd runs and KNIT_STORE names it';
    return unavailable(`the etcd store at ${target.endpoints} is unreachable (${what}: ${detail}); ${hint}`, err);
  }
  if (err instanceof EtcdLeaseInvalidError) {
    // The session is gone until the lease is granted again: a retry after that can succeed.
    return unavailable(`${what} in the etcd store at ${target.endpoints} failed: its lease expired or was revoked`, err);
  }
  if (err instanceof ClientClosedError) {
    return new KnitError('internal', `${what}: the etcd store at ${target.endpoints} is already closed`, { cause: err });
  }
  return new KnitError('internal', `the etcd store at ${target.endpoints} refused ${what}: ${detail}`, { cause: err });
}

/** Runs `call` with the operation deadline; the late call is abandoned (its own gRPC deadline ends it). */
export async function bounded<T>(target: Target, what: string, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OperationTimeout()), OP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([call(), late]);
  } catch (err) {
    throw translate(target, what, err);
  } finally {
    clearTimeout(timer);
  }
}
