// The IPAM handler: runs each call under the right lock and retries it when a compare-and-set lost.
import { describe, unavailable } from '../errors.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { type AddressRequest, releaseAddressOnce, requestAddressOnce } from './address-calls.js';
import { type IpamDeps, Ledger } from './ledger.js';
import { type PoolAnswer, type PoolRequest, releasePoolOnce, requestPoolOnce } from './pool-calls.js';
import { ensureOwnedOnce, holdsPool, ownAddresses, reclaimOnce, releaseOwnedOnce } from './reclaim.js';
import type { OwnAddress, PoolReads } from './block-own.js';

export type { PoolReads } from './block-own.js';

/** How many times one call re-reads and tries again after losing a compare-and-set. */
const CAS_ATTEMPTS = 50;
const IPAM = 'ipam';

export class Ipam {
  /**
   * Address calls run side by side (each claim is a compare-and-set in the store, and the cache hands
   * concurrent callers different addresses); pool changes and clean-ups run alone.
   */
  private readonly locks = new KeyedLock();
  private readonly exclusive = <T>(work: () => Promise<T>): Promise<T> => this.locks.run(IPAM, work);
  private readonly shared = <T>(work: () => Promise<T>): Promise<T> => this.locks.shared(IPAM, work);
  private readonly ledger: Ledger;

  constructor(deps: IpamDeps) {
    this.ledger = new Ledger(deps);
  }

  requestPool(req: PoolRequest): Promise<PoolAnswer> {
    return this.exclusive(() => this.retry(() => requestPoolOnce(this.ledger, req)));
  }

  async releasePool(id: string): Promise<void> {
    await this.exclusive(() => this.retry(() => releasePoolOnce(this.ledger, id)));
  }

  requestAddress(req: AddressRequest): Promise<string> {
    return this.shared(() => this.retry(() => requestAddressOnce(this.ledger, req)));
  }

  async releaseAddress(id: string, address: string): Promise<void> {
    await this.shared(() => this.retry(() => releaseAddressOnce(this.ledger, id, address)));
  }

  /** Every address record this host holds, for reconciliation with endpoints. */
  ownAddresses(): Promise<OwnAddress[]> {
    return ownAddresses(this.ledger);
  }

  /** Whether this host holds the pool of `subnet` (a network whose pool was released is gone). `reads`: one sweep's pool reads. */
  holdsPool(subnet: string, reads?: PoolReads): Promise<boolean> {
    return holdsPool(this.ledger, subnet, reads);
  }

  /**
   * Hosts holding pools whose liveness key is gone are quarantined (ipam/lost/<host>); after
   * `afterMs` their addresses and pool memberships are reclaimed. Returns the hosts reclaimed.
   */
  reclaimLost(a: { live: Set<string>; now: number; afterMs: number }): Promise<string[]> {
    return this.exclusive(async () => {
      const pass = { ...a, reclaimed: [] as string[] };
      try {
        await this.retry(() => reclaimOnce(this.ledger, pass));
      } catch (err) {
        // Hosts already reclaimed must still reach the caller (it forgets their overlay entries).
        if (!pass.reclaimed.length) throw err;
        this.ledger.deps.log.warn('reclaim stopped partway; the next sweep goes on', { reclaimed: pass.reclaimed, error: describe(err) });
      }
      if (pass.reclaimed.length) this.ledger.books.clear();
      return pass.reclaimed;
    });
  }

  /** Re-claims an address a local endpoint uses if its record is missing (a crash, a reclaim while away). */
  ensureOwned(subnet: string, ip: string, reads?: PoolReads): Promise<'ok' | 'restored' | 'taken'> {
    return this.exclusive(() => this.retry(() => ensureOwnedOnce(this.ledger, subnet, ip, reads)));
  }

  /** Deletes one of this host's address records found by ownAddresses (leak clean-up); false when none was left. */
  async releaseOwned(key: string): Promise<boolean> {
    return (await this.exclusive(() => this.retry(() => releaseOwnedOnce(this.ledger, key)))) === 'released';
  }

  /** Runs `attempt` until it does not lose a compare-and-set (it returns undefined then), forgetting the cache each time. */
  private async retry<T>(attempt: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const result = await attempt();
      if (result !== undefined) return result;
      this.ledger.books.clear();
    }
    throw unavailable('the IPAM store is too busy (compare-and-set kept failing); try again');
  }
}
