// Every knit host's own interface addresses, published in the store, so that IPAM never hands one out
// (on a macvlan network the containers share the LAN with the hosts). IPAM never sees a network's driver
// options, so the rule holds for every knit pool.
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { formatIp, parseIp } from './cidr.js';

export const HOST_ADDRS = 'ipam/host-addrs/';

/** Canonical text of an address, or undefined for anything that is not one (a record another host wrote). */
function canonical(text: unknown): string | undefined {
  try {
    const { family, value } = parseIp(String(text));
    return formatIp(family, value);
  } catch {
    return undefined;
  }
}

/**
 * A durable record per host, not one under its lease: a host whose knit is down still holds its addresses.
 * Records of hosts reclaimed as lost go with them (forget).
 */
export class HostAddresses {
  private held: ReadonlySet<string> = new Set();
  /** This host's addresses as last published. */
  private mine: string[] = [];

  constructor(private readonly deps: { store: Store; hostId: string; own: () => Promise<string[]>; log: Logger }) {}

  /** Every address any knit host holds, as last read. */
  all(): ReadonlySet<string> {
    return this.held;
  }

  /** Publishes this host's addresses if they changed, then reads every host's. */
  async refresh(): Promise<void> {
    const own = [...new Set((await this.deps.own()).flatMap((a) => canonical(a) ?? []))].sort();
    if (own.join() !== this.mine.join()) {
      await this.deps.store.commit([{ key: HOST_ADDRS + this.deps.hostId, value: JSON.stringify({ addrs: own, at: new Date().toISOString() }) }]);
      this.mine = own;
      this.deps.log.info('host addresses published', { addresses: own });
    }
    await this.reload();
  }

  /** Reads every host's published addresses. */
  async reload(): Promise<void> {
    const all = new Set(this.mine);
    for (const e of await this.deps.store.list(HOST_ADDRS)) {
      try {
        for (const a of (JSON.parse(e.value) as { addrs?: unknown[] }).addrs ?? []) {
          const c = canonical(a);
          if (c) all.add(c);
        }
      } catch (err) {
        this.deps.log.warn('unreadable host address record skipped', { key: e.key, error: describe(err) });
      }
    }
    this.held = all;
  }

  /** Hosts reclaimed as lost: their addresses are free again. */
  async forget(hosts: string[]): Promise<void> {
    if (hosts.length) await this.deps.store.commit(hosts.map((h) => ({ key: HOST_ADDRS + h, value: null })));
  }
}
