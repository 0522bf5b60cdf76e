// This host's WireGuard tunnel for encrypted overlays: up while the host has one, down with the last. It holds the
// key pair (wg-key.ts), a tunnel address claimed cluster-wide, the fail-closed rules (wg-firewall.ts), the device
// and this host's record under its lease; wg-peers.ts makes the other hosts' records into peers.
import { setTimeout as sleep } from 'node:timers/promises';
import { rename } from 'node:fs/promises';
import { badRequest, conflict, describe, unavailable } from '../../errors.js';
import type { Logger } from '../../log.js';
import { type Cidr, formatCidr } from '../../addr/cidr.js';
import { encode } from '../../store/records.js';
import type { Store } from '../../store/types.js';
import type { LinkOp, LinkState } from '../../datapath/ops.js';
import type { WgBackend, WireGuard } from '../../datapath/wireguard.js';
import type { Iptables } from '../firewall.js';
import type { HostLease } from './lease.js';
import { WgFirewall } from './wg-firewall.js';
import { generatePrivateKey, keyFiles, loadOrCreateKey, publicKeyOf, writeKey, type KeyFiles } from './wg-key.js';
import { WgPeers } from './wg-peers.js';
import { WG, WG_OVERHEAD, wgDeviceName, type WgRecord } from './wg-plan.js';
import { claimAddress, releaseAddresses } from './wg-address.js';
import type { HostRecordWatch } from './watch.js';

export interface TunnelKernel extends Iptables {
  apply(ops: LinkOp[]): Promise<void>;
  links(): Promise<LinkState[]>;
  readonly wireguard: Pick<WireGuard, 'create' | 'adopt' | 'remove' | 'set' | 'show' | 'chosen'>;
}

export interface TunnelDeps {
  cluster: Store;
  local: Store;
  hostId: string;
  kernel: TunnelKernel;
  log: Logger;
  lease: HostLease;
  watch: HostRecordWatch;
  underlay: { vtep: string; mtu: number };
  stateDir: string;
  port: number;
  subnet: Cidr;
}

/** Long enough for every peer to have added a rotating host's next key (a watch event and one `wg set`). */
const ROTATE_SETTLE_MS = 1_500;
const ADDRESS_KEY = 'meta/wg-address';

export interface TunnelStatus {
  backend?: WgBackend;
  device: string;
  address?: string;
  publicKey?: string;
  listenPort: number;
  up: boolean;
  peers: Array<{ host: string; endpoint: string; address: string; latestHandshake?: number; rx?: number; tx?: number }>;
}

export class Tunnel {
  readonly device: string;
  readonly peers: WgPeers;
  private readonly firewall: WgFirewall;
  private readonly files: KeyFiles;
  private publicKey?: string;
  private address?: string;
  private up = false;
  /** This host has encrypted overlays: the tunnel should be up (it may not be, if it could not come up at start). */
  private wanted = false;
  private rotating = false;
  private repairing?: Promise<boolean>;

  constructor(private readonly deps: TunnelDeps) {
    this.device = wgDeviceName(deps.hostId);
    this.files = keyFiles(deps.stateDir);
    this.firewall = new WgFirewall(deps.kernel);
    this.peers = new WgPeers({ cluster: deps.cluster, subnet: deps.subnet, log: deps.log });
    deps.watch.add(this.peers);
  }

  /** Whether the tunnel is up (this host has an encrypted overlay). */
  get active(): boolean {
    return this.up;
  }

  /** The MTU an encrypted overlay leaves its containers: the underlay's less VXLAN (50) and WireGuard (60/80). */
  get overlayMtu(): number {
    return this.deps.underlay.mtu - 50 - WG_OVERHEAD[this.deps.underlay.vtep.includes(':') ? 6 : 4];
  }

  /**
   * At start, before the kernel is reconciled (encrypted VXLAN devices must never exist without the rules): with
   * encrypted overlays in the records, the rules, the device and the record (kept for the lease) come back.
   */
  async boot(hasEncrypted: boolean): Promise<void> {
    if (!hasEncrypted) return;
    const address = (await this.deps.local.get(ADDRESS_KEY))?.value;
    if (!address) throw unavailable('encrypted overlays exist but this host\'s tunnel address is not in its records');
    this.address = address;
    this.wanted = true;
    // The rules or nothing: without them an encrypted VXLAN device could send in clear.
    await this.firewall.install(this.device, formatCidr(this.deps.subnet));
    try {
      await this.bringUp();
      this.deps.lease.keep(WG.host(this.deps.hostId), this.value());
    } catch (err) {
      // Closed, not open: encrypted overlays drop their traffic until `knit doctor` or a restart brings it up.
      this.deps.log.error('WireGuard tunnel could not come up; encrypted overlays drop their traffic until it does', { device: this.device, error: describe(err) });
    }
  }

  /** Up for an encrypted overlay (once); returns the tunnel address its VXLAN device binds to. */
  async ensure(): Promise<string> {
    if (this.up && this.address) return this.address;
    this.address = await claimAddress({ ...this.deps, key: ADDRESS_KEY });
    await this.firewall.install(this.device, formatCidr(this.deps.subnet));
    await this.bringUp();
    // Only now: a repair must not race the first bringUp.
    this.wanted = true;
    await this.publish(this.value());
    return this.address;
  }

  /** The host's last encrypted overlay is gone: record, device and rules go (the address stays claimed). */
  async stop(): Promise<void> {
    this.up = false;
    this.wanted = false;
    this.peers.detach();
    await this.deps.lease.drop(WG.host(this.deps.hostId)).catch((err) => this.deps.log.warn('could not remove this host\'s WireGuard record', { error: describe(err) }));
    await this.deps.kernel.wireguard.remove(this.device);
    await this.firewall.remove();
    this.deps.log.info('WireGuard tunnel removed: no encrypted overlay left on this host', { device: this.device });
  }

  /**
   * The rules and the device back if they went away (wireguard-go killed, link deleted, a start that failed):
   * from the periodic sweep and `knit doctor`. Returns whether anything had to be redone.
   */
  repair(): Promise<boolean> {
    // The sweep and `knit doctor` may ask at once: one repair at a time.
    this.repairing ??= this.repairNow().finally(() => (this.repairing = undefined));
    return this.repairing;
  }

  private async repairNow(): Promise<boolean> {
    if (!this.wanted) return false;
    const present = (await this.deps.kernel.links()).some((l) => l.name === this.device);
    if (present && this.up && (await this.firewall.installed())) return false;
    this.deps.log.warn('WireGuard tunnel or its rules were gone; putting them back', { device: this.device, devicePresent: present });
    await this.firewall.install(this.device, formatCidr(this.deps.subnet));
    await this.bringUp();
    if (!this.deps.lease.owns(WG.host(this.deps.hostId))) await this.publish(this.value());
    return true;
  }

  /** The device made (or found, after a restart: its tunnels kept) and set to this host's key, port and address. */
  private async bringUp(): Promise<void> {
    this.publicKey = await loadOrCreateKey(this.files);
    const wg = this.deps.kernel.wireguard;
    const found = (await this.deps.kernel.links()).find((l) => l.name === this.device);
    if (found) wg.adopt(found.kind);
    else {
      const backend = await wg.create(this.device);
      this.deps.log.info('WireGuard device created', { device: this.device, backend, why: backend === 'kernel' ? 'the kernel has WireGuard' : 'the kernel has no WireGuard: userspace wireguard-go' });
    }
    const state = await wg.show(this.device);
    const keyChanged = state?.publicKey !== this.publicKey;
    if (keyChanged || state?.listenPort !== this.deps.port) {
      await wg.set(this.device, { ...(keyChanged ? { privateKeyFile: this.files.current } : {}), listenPort: this.deps.port });
    }
    await this.configureLink();
    this.up = true;
    await this.attachPeers();
  }

  private attachPeers(): Promise<void> {
    const wg = this.deps.kernel.wireguard;
    return this.peers.attach({ show: () => wg.show(this.device), setPeers: (peers) => wg.set(this.device, { peers }) }, this.publicKey!);
  }

  /** Under the lease; if the store refuses it now, it is still written at the next reconnect. */
  private async publish(value: string): Promise<void> {
    const key = WG.host(this.deps.hostId);
    try {
      await this.deps.lease.put(key, value);
    } catch (err) {
      this.deps.lease.keep(key, value);
      throw err;
    }
  }

  private async configureLink(): Promise<void> {
    const link = (await this.deps.kernel.links()).find((l) => l.name === this.device);
    const cidr = `${this.address}/${this.deps.subnet.prefix}`;
    const mtu = this.deps.underlay.mtu - WG_OVERHEAD[this.deps.underlay.vtep.includes(':') ? 6 : 4];
    const ops: LinkOp[] = [];
    if (link?.mtu !== mtu) ops.push({ op: 'link-mtu', name: this.device, mtu });
    if (!link?.addrs.includes(cidr)) ops.push({ op: 'addr-add', dev: this.device, cidr });
    if (!link?.up) ops.push({ op: 'link-up', name: this.device });
    if (ops.length) await this.deps.kernel.apply(ops);
  }

  private value(record: Partial<WgRecord> = {}): string {
    const r: WgRecord = { publicKey: this.publicKey!, endpoint: `${this.deps.underlay.vtep}:${this.deps.port}`, address: this.address!, ...record };
    return encode(r);
  }

  /** Lost hosts (reclaimed) give their tunnel addresses back. */
  forgetHosts(hosts: string[]): Promise<void> {
    return releaseAddresses(this.deps.cluster, hosts);
  }

  /**
   * Make-before-break: the new public key is published as `next` (peers add it, with no addresses), then the device
   * switches to it and the record says so (peers move the address to it and drop the old key). A peer drops this
   * host's packets only between the switch and its watch event.
   */
  async rotate(): Promise<{ publicKey: string }> {
    if (!this.up) throw badRequest('this host has no encrypted overlay, so no WireGuard key is in use; there is nothing to rotate');
    if (this.rotating) throw conflict('a WireGuard key rotation is already running on this host; wait for it to finish');
    this.rotating = true;
    try {
      const next = generatePrivateKey();
      const nextPublic = publicKeyOf(next);
      await writeKey(this.files.next, next);
      await this.publish(this.value({ next: nextPublic }));
      await sleep(ROTATE_SETTLE_MS);
      await rename(this.files.next, this.files.current);
      await this.deps.kernel.wireguard.set(this.device, { privateKeyFile: this.files.current });
      this.publicKey = nextPublic;
      await this.publish(this.value());
      await this.attachPeers();
      this.deps.log.info('WireGuard key rotated', { device: this.device, publicKey: nextPublic });
      return { publicKey: nextPublic };
    } finally {
      this.rotating = false;
    }
  }

  async status(): Promise<TunnelStatus> {
    const base: TunnelStatus = { backend: this.deps.kernel.wireguard.chosen, device: this.device, address: this.address, publicKey: this.publicKey, listenPort: this.deps.port, up: this.up, peers: [] };
    if (!this.up) return base;
    const state = await this.deps.kernel.wireguard.show(this.device).catch(() => undefined);
    const byAddress = new Map(state?.peers.map((p) => [p.allowedIps[0]?.split('/')[0], p]) ?? []);
    base.peers = this.peers.hosts().map((h) => {
      const p = byAddress.get(h.address);
      return { ...h, ...(p ? { latestHandshake: p.latestHandshake, rx: p.rx, tx: p.tx } : {}) };
    });
    return base;
  }
}
