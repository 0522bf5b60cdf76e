// What the driver's parts share: its dependencies, its locks, and this host's network and endpoint records.
import { badRequest, describe, notFound } from '../../errors.js';
import { short } from '../../log.js';
import type { Op } from '../../datapath/ops.js';
import { decode, encode } from '../../store/records.js';
import { KeyedLock } from '../../util/keyed-lock.js';
import type { EndpointRecord, NetworkRecord, PortMapping } from '../records.js';
import { keys } from '../records.js';
import type { NetworkDeps, OverlayControl } from './deps.js';

/** Lock keys: every network (create, delete, segment reconcile), and all published ports. */
export const ALL = '*';
export const PORTS = 'ports';
/** How long a deleted endpoint's link removal waits before it starts (see DriverState.removeLater). */
const REMOVE_DELAY_MS = 50;

/** The flows to forget when mappings come or go (see Kernel.flushConntrack). */
export const flowsOf = (ports: PortMapping[]) => ports.map((p) => ({ proto: p.proto, port: p.hostPort, family: (p.hostIp.includes(':') ? 6 : 4) as 4 | 6 }));

export class DriverState {
  readonly locks = new KeyedLock();
  /** Link removals not waited for, per network, each with what starts it now (see `removeLater`). */
  private readonly removing = new Map<string, Map<() => void, Promise<void>>>();

  constructor(readonly deps: NetworkDeps) {}

  async network(id: string): Promise<NetworkRecord | undefined> {
    const e = await this.deps.store.get(keys.network(id));
    return e ? decode<NetworkRecord>(e) : undefined;
  }

  async networks(): Promise<NetworkRecord[]> {
    return (await this.deps.store.list(keys.networks)).map((e) => decode<NetworkRecord>(e));
  }

  async endpoints(networkId?: string): Promise<EndpointRecord[]> {
    const prefix = networkId ? keys.endpoints(networkId) : keys.allEndpoints;
    return (await this.deps.store.list(prefix)).map((e) => decode<EndpointRecord>(e));
  }

  async endpoint(networkId: string, id: string): Promise<EndpointRecord | undefined> {
    const e = await this.deps.store.get(keys.endpoint(networkId, id));
    return e ? decode<EndpointRecord>(e) : undefined;
  }

  async requireNetwork(id: string): Promise<NetworkRecord> {
    const net = await this.network(id);
    if (!net) throw notFound(`network ${short(id)} is not known to knit (was it created while knit used another state directory?)`);
    return net;
  }

  async requireEndpoint(networkId: string, id: string): Promise<EndpointRecord> {
    const ep = await this.endpoint(networkId, id);
    if (!ep) throw notFound(`endpoint ${short(id)} is not known to knit on network ${short(networkId)}`);
    return ep;
  }

  /** The overlay control plane for an overlay network, or a sentence saying why this knit has none. */
  overlayFor(net: NetworkRecord): OverlayControl {
    if (this.deps.overlay) return this.deps.overlay;
    throw badRequest(
      `network ${short(net.id)} is an overlay, and this knit was started without KNIT_ADVERTISE (this host's underlay address or interface); ` +
        'restart knit with KNIT_ADVERTISE set to use it',
    );
  }

  /**
   * Endpoint calls hold their network shared (it cannot be created or deleted meanwhile, but the endpoints of
   * a burst are made side by side) and their endpoint alone. Lock order: network, endpoint, ports.
   */
  onEndpoint<T>(networkId: string, endpointId: string, work: () => Promise<T>): Promise<T> {
    return this.locks.shared(networkId, () => this.locks.run(`ep/${networkId}/${endpointId}`, work));
  }

  async save(key: string, record: object): Promise<void> {
    await this.deps.store.commit([{ key, value: encode(record) }]);
  }

  async forget(key: string): Promise<void> {
    await this.deps.store.commit([{ key, value: null }]);
  }

  /** A step of an undo, or of a cleanup that must not stop the rest: its failure is logged. */
  async undo(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.deps.log.error('undo failed', { error: describe(err) });
    }
  }

  /**
   * Removes links in the background. The kernel takes 20-35 ms to unregister a veth or macvlan (it waits for
   * every CPU to stop using it), which dockerd would otherwise wait for on each container's removal; Docker's own
   * drivers do not wait either (the links go with the container's namespace). The removal starts a moment later,
   * once this call's reply and dockerd's next call (ReleaseAddress) are answered: starting a process blocks knit
   * for a few milliseconds. Whatever next makes links in the network, removes the network or compares links with
   * records starts the removals at once and waits for them (`settled`). A crash meanwhile leaves a link without a
   * record, which the next start removes; a failure is logged, and `knit doctor` removes what is left.
   */
  removeLater(networkId: string, ops: Op[]): void {
    const jobs = this.removing.get(networkId) ?? new Map<() => void, Promise<void>>();
    this.removing.set(networkId, jobs);
    let start: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (start = resolve));
    const timer = setTimeout(start, REMOVE_DELAY_MS);
    const job: Promise<void> = started
      .then(() => (clearTimeout(timer), this.deps.kernel.remove(ops)))
      .catch((err) => void this.deps.log.warn('could not remove a deleted endpoint\'s link; knit doctor or the next start removes it', { network: short(networkId), error: describe(err) }))
      .finally(() => {
        jobs.delete(start);
        if (!jobs.size && this.removing.get(networkId) === jobs) this.removing.delete(networkId);
      });
    jobs.set(start, job);
  }

  /** Resolves once the background removals of this network (of every network, without one) are done. */
  async settled(networkId?: string): Promise<void> {
    const sets = networkId === undefined ? [...this.removing.values()] : [this.removing.get(networkId)];
    const jobs = sets.flatMap((set) => [...(set ?? [])]);
    for (const [start] of jobs) start();
    await Promise.all(jobs.map(([, job]) => job));
  }
}
