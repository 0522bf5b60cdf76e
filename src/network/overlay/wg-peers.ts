// The other hosts' WireGuard records, made into the peers of this host's device: they come and go from the store
// like endpoint records (a lost host's goes with its lease). One queue; each run makes the device's peers exactly
// what the valid records ask for, so a hostile or stale record never disturbs the others.
import { describe } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Cidr } from '../../addr/cidr.js';
import type { Entry, Store, WatchEvent } from '../../store/types.js';
import type { WgPeerSpec, WgState } from '../../datapath/wireguard.js';
import type { HostRecords } from './watch.js';
import { desiredPeers, diffPeers, parseWgRecord, type PublishedWg, WG } from './wg-plan.js';

/** The device as the peers need it: read it, change it. */
export interface WgDevice {
  show(): Promise<WgState | undefined>;
  setPeers(peers: WgPeerSpec[]): Promise<void>;
}

export class WgPeers implements HostRecords {
  readonly prefix = WG.hosts;
  private readonly published = new Map<string, PublishedWg>();
  /** Tunnel address -> the host that claimed it (wireguard/addresses/). */
  private readonly claims = new Map<string, string>();
  private device?: { dev: WgDevice; ownKey: string };
  /** Set by the first listing: before it, the device keeps the peers it has (a restart must not drop its tunnels). */
  private synced = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: { cluster: Store; subnet: Cidr; log: Logger }) {}

  hostOf(key: string): string | undefined {
    const host = key.startsWith(WG.hosts) ? key.slice(WG.hosts.length) : '';
    return /^[0-9a-f]{1,64}$/.test(host) ? host : undefined;
  }

  /** The device is up (or its key changed): program it from now on. */
  attach(dev: WgDevice, ownKey: string): Promise<void> {
    this.device = { dev, ownKey };
    return this.program();
  }

  detach(): void {
    this.device = undefined;
  }

  async reset(entries: Entry[]): Promise<void> {
    this.published.clear();
    for (const e of entries) this.remember(e.key, e.value, e.revision);
    await this.loadClaims();
    this.synced = true;
    await this.program();
  }

  change(ev: WatchEvent): void {
    if (ev.type === 'put') this.remember(ev.key, ev.value, ev.revision);
    else this.published.delete(this.hostOf(ev.key) ?? '');
    void this.program();
  }

  /** Peers as the status shows them: host, endpoint, tunnel address. */
  hosts(): Array<{ host: string; endpoint: string; address: string }> {
    return [...this.published.values()].map((p) => ({ host: p.host, endpoint: p.record.endpoint, address: p.record.address }));
  }

  private remember(key: string, value: string, revision: number): void {
    const host = this.hostOf(key);
    if (!host) return;
    const record = parseWgRecord(value, this.deps.subnet);
    if (!record) {
      this.published.delete(host);
      this.deps.log.warn('WireGuard record ignored: malformed', { host: host.slice(0, 16) });
      return;
    }
    this.published.set(host, { host, record, revision });
  }

  private async loadClaims(): Promise<void> {
    this.claims.clear();
    for (const e of await this.deps.cluster.list(WG.addresses)) this.claims.set(e.key.slice(WG.addresses.length), e.value);
  }

  /** Serialised: the device's peers become what the records ask for. Claims not seen yet are read first. */
  program(): Promise<void> {
    this.queue = this.queue.then(async () => {
      const device = this.device;
      if (!device || !this.synced) return;
      try {
        for (const p of this.published.values()) {
          if (this.claims.get(p.record.address) !== p.host) {
            const claim = await this.deps.cluster.get(WG.address(p.record.address));
            if (claim) this.claims.set(p.record.address, claim.value);
          }
        }
        const state = await device.dev.show();
        if (!state) return;
        const changes = diffPeers(state.peers, desiredPeers({ published: [...this.published.values()], claims: this.claims, ownKey: device.ownKey }));
        if (!changes.length) return;
        await device.dev.setPeers(changes);
        this.deps.log.info('WireGuard peers programmed', { set: changes.filter((c) => !c.remove).length, removed: changes.filter((c) => c.remove).length });
      } catch (err) {
        this.deps.log.error('WireGuard peers failed', { error: describe(err) });
      }
    });
    return this.queue;
  }
}
