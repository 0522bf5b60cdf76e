// Drives knit's IPAM over its socket as dockerd would: pools, address pairs, bounded load loops.
import { LeanConnection } from './lean-client.js';

const CALL_TIMEOUT_MS = 10_000;

/** Where calls go: a socket path, or a connection a load loop keeps for itself. */
export type Target = string | LeanConnection;

async function call(target: Target, path: string, body: object): Promise<Record<string, unknown>> {
  const conn = typeof target === 'string' ? new LeanConnection(target, CALL_TIMEOUT_MS) : target;
  try {
    const r = await conn.call(`/IpamDriver.${path}`, body);
    if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body as Record<string, unknown>;
  } finally {
    if (conn !== target) conn.close();
  }
}

/** Runs `work` with a connection of its own, closed afterwards. */
async function withConnection<T>(socket: string, work: (c: LeanConnection) => Promise<T>): Promise<T> {
  const conn = new LeanConnection(socket, CALL_TIMEOUT_MS);
  try {
    return await work(conn);
  } finally {
    conn.close();
  }
}

/** RequestPool for an explicit subnet; returns its PoolID. */
export async function openPool(socket: string, subnet: string): Promise<string> {
  const reply = await call(socket, 'RequestPool', { AddressSpace: 'knit-local', Pool: subnet, SubPool: '', Options: {}, V6: false });
  return String(reply.PoolID);
}

/** RequestAddress; the address without its prefix length, as ReleaseAddress takes it. */
export async function requestAddress(socket: Target, poolId: string): Promise<string> {
  const reply = await call(socket, 'RequestAddress', { PoolID: poolId, Address: '', Options: {} });
  return String(reply.Address).split('/')[0];
}

export const releaseAddress = (socket: Target, poolId: string, address: string) => call(socket, 'ReleaseAddress', { PoolID: poolId, Address: address });

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
  const loop = () => withConnection(socket, async (conn) => {
    while (pairs + errors < opts.maxPairs && Date.now() < end && errors < 100) {
      try {
        await releaseAddress(conn, poolId, await requestAddress(conn, poolId));
        pairs++;
      } catch {
        errors++;
      }
    }
  });
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
  const loop = () => withConnection(socket, async (conn) => {
    while (issued < opts.to && Date.now() < opts.deadline && errors < 20) {
      issued++;
      try {
        await requestAddress(conn, poolId);
        held++;
      } catch {
        errors++;
        issued--;
      }
    }
  });
  await Promise.all([...Array(opts.clients)].map(loop));
  return { held, errors, perSecond: (held - opts.from) / ((performance.now() - started) / 1000) };
}

/** `count` Request+Release pairs one at a time, each call timed (ms). */
export async function probePairs(socket: string, poolId: string, count: number): Promise<{ request: number[]; release: number[] }> {
  const request: number[] = [];
  const release: number[] = [];
  await withConnection(socket, async (conn) => {
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const address = await requestAddress(conn, poolId);
      const t1 = performance.now();
      await releaseAddress(conn, poolId, address);
      request.push(t1 - t0);
      release.push(performance.now() - t1);
    }
  });
  return { request, release };
}
