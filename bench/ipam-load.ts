// Drives knit's IPAM over its socket as dockerd would: pools, address pairs, bounded load loops.
import { post } from '../spec/support/client.js';

const CALL_TIMEOUT_MS = 10_000;

async function call(socket: string, path: string, body: object): Promise<Record<string, unknown>> {
  const r = await post(socket, `/IpamDriver.${path}`, body, CALL_TIMEOUT_MS);
  if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${r.raw.slice(0, 300)}`);
  return r.body as Record<string, unknown>;
}

/** RequestPool for an explicit subnet; returns its PoolID. */
export async function openPool(socket: string, subnet: string): Promise<string> {
  const reply = await call(socket, 'RequestPool', { AddressSpace: 'knit-local', Pool: subnet, SubPool: '', Options: {}, V6: false });
  return String(reply.PoolID);
}

/** RequestAddress; the address without its prefix length, as ReleaseAddress takes it. */
export async function requestAddress(socket: string, poolId: string): Promise<string> {
  const reply = await call(socket, 'RequestAddress', { PoolID: poolId, Address: '', Options: {} });
  return String(reply.Address).split('/')[0];
}

export const releaseAddress = (socket: string, poolId: string, address: string) => call(socket, 'ReleaseAddress', { PoolID: poolId, Address: address });

export interface RateResult {
  pairs: number;
  errors: number;
  perSecond: number;
}

/** `clients` loops of Request+Release pairs until `seconds` pass or `maxPairs` are done in all. */
export async function pairRate(socket: string, poolId: string, opts: { clients: number; seconds: number; maxPairs: number }): Promise<RateResult> {
  let pairs = 0;
  let errors = 0;
  const started = performance.now();
  const end = Date.now() + opts.seconds * 1000;
  const loop = async () => {
    while (pairs + errors < opts.maxPairs && Date.now() < end && errors < 100) {
      try {
        await releaseAddress(socket, poolId, await requestAddress(socket, poolId));
        pairs++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all([...Array(opts.clients)].map(loop));
  return { pairs, errors, perSecond: pairs / ((performance.now() - started) / 1000) };
}

/** Requests addresses (kept) until `to` are held or the deadline passes; `from` is how many are held already. */
export async function fillTo(
  socket: string,
  poolId: string,
  opts: { from: number; to: number; clients: number; deadline: number },
): Promise<{ held: number; errors: number; perSecond: number }> {
  let held = opts.from;
  let issued = opts.from;
  let errors = 0;
  const started = performance.now();
  const loop = async () => {
    while (issued < opts.to && Date.now() < opts.deadline && errors < 20) {
      issued++;
      try {
        await requestAddress(socket, poolId);
        held++;
      } catch {
        errors++;
        issued--;
      }
    }
  };
  await Promise.all([...Array(opts.clients)].map(loop));
  return { held, errors, perSecond: (held - opts.from) / ((performance.now() - started) / 1000) };
}

/** `count` Request+Release pairs one at a time, each call timed (ms). */
export async function probePairs(socket: string, poolId: string, count: number): Promise<{ request: number[]; release: number[] }> {
  const request: number[] = [];
  const release: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const address = await requestAddress(socket, poolId);
    const t1 = performance.now();
    await releaseAddress(socket, poolId, address);
    request.push(t1 - t0);
    release.push(performance.now() - t1);
  }
  return { request, release };
}
