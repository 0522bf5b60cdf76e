// knit's names (issue 13): this host's containers' names from the engine's events, kept in memory and, for overlay
// networks, published beside their endpoint records; the other hosts' overlay names kept in memory from the watch
// on those records (RemoteNames); the resolver answered from that memory (NameSource).
import type { NameSource } from '../dns/names.js';
import { EngineWatcher } from '../engine/watcher.js';
import { short, type Logger } from '../log.js';
import { keys, type EndpointRecord, type NetworkRecord } from '../network/records.js';
import { decode } from '../store/records.js';
import type { Store } from '../store/types.js';
import { Mirror } from './mirror.js';
import { desiredRecords, querierIndex, resolverMisses, type DesiredName, type Querier } from './plan.js';
import { Publisher, type RecordSink } from './publisher.js';
import { RemoteNames } from './remote.js';
import { NameTable } from './table.js';

export interface NamesDeps {
  /** The host's own records (networks, endpoints), as the driver keeps them. */
  local: Store;
  hostId: string;
  /** Where overlay endpoints' name records go (this host's lease); without one (no overlay) nothing is published. */
  sink?: RecordSink;
  dockerSocket: string;
  /** knit's resolver address: endpoints whose DNS servers lack it are reported. */
  resolver: string;
  /** The endpoint name dockerd 29+ sent with an address's RequestAddress (engine hints), if any. */
  endpointName?: (ip: string) => string | undefined;
  log: Logger;
}

export class Names implements NameSource {
  private readonly table = new NameTable();
  /** The other hosts' names: add it to the HostRecordWatch that follows their overlay endpoints. */
  readonly remote = new RemoteNames(this.table);
  /** This host's own records in the table, as last made. */
  private own = new Map<string, DesiredName>();
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly eps = new Map<string, EndpointRecord>();
  private queriers = new Map<string, Querier>();
  /** Endpoints the engine reported since their Join (dropped with the endpoint): no name hint for them again. */
  private readonly reported = new Set<string>();
  private readonly localMirrors: Mirror[];
  private readonly engine: EngineWatcher;
  private readonly publisher?: Publisher;
  private warned = false;

  constructor(private readonly deps: NamesDeps) {
    this.localMirrors = [
      new Mirror(deps.local, keys.networks, (k, v) => this.onNetwork(k, v)),
      new Mirror(deps.local, keys.allEndpoints, (k, v) => this.onEndpoint(k, v)),
    ];
    this.engine = new EngineWatcher({ socketPath: deps.dockerSocket, log: deps.log, onChange: () => this.refresh() });
    this.publisher = deps.sink && new Publisher(deps.sink, () => this.shared(), deps.log);
  }

  /** The host's own records are read at once; the engine's names follow in the background. */
  async start(): Promise<void> {
    for (const m of this.localMirrors) await m.start();
    this.engine.start();
  }

  stop(): void {
    this.engine.stop();
    this.publisher?.stop();
    for (const m of this.localMirrors) m.close();
  }

  networksOf(querier: string): string[] | undefined {
    return this.queriers.get(querier)?.networks;
  }

  external(querier: string): boolean {
    return this.queriers.get(querier)?.external ?? true;
  }

  lookup(name: string, networks: string[]): { v4: string[]; v6: string[] } | undefined {
    return this.table.lookup(name, networks);
  }

  reverse(ip: string, networks: string[]): string | undefined {
    return this.table.reverse(ip, networks);
  }

  /** For `knit status`. */
  status(): object {
    return {
      resolver: this.deps.resolver,
      engine: { socket: this.deps.dockerSocket, connected: this.engine.connected, containers: this.engine.containers().length },
      published: this.publisher?.size ?? 0,
      records: this.table.size,
      withoutResolver: this.misses().map((e) => short(e.id)),
    };
  }

  /** For `knit doctor`: what the user has to change for names to work. */
  findings(): string[] {
    const out: string[] = [];
    const misses = this.misses();
    if (misses.length) {
      out.push(`${misses.length} endpoint(s) (${misses.map((e) => short(e.id)).join(', ')}) were given DNS servers without knit's resolver ${this.deps.resolver}: ` +
        `set "dns": ["${this.deps.resolver}"] in /etc/docker/daemon.json and restart dockerd (or run containers with --dns ${this.deps.resolver})`);
    }
    if (!this.engine.connected) out.push(`the Docker engine at ${this.deps.dockerSocket} does not answer: names of this host's containers are not published (KNIT_DOCKER_HOST)`);
    return out;
  }

  private misses(): EndpointRecord[] {
    return resolverMisses(this.eps.values(), this.deps.resolver);
  }

  /** This host's records made anew: the table answers from them at once; the overlay ones are published. */
  private refresh(): void {
    const containers = this.engine.containers();
    for (const c of containers) for (const e of c.endpoints) if (this.eps.get(e.endpointId)?.sandboxKey) this.reported.add(e.endpointId);
    const input = { hostId: this.deps.hostId, containers, endpoints: this.eps, networks: this.nets, reported: this.reported };
    const own = desiredRecords({ ...input, endpointName: this.deps.endpointName });
    for (const key of this.own.keys()) if (!own.has(key)) this.table.set(key, undefined);
    for (const [key, r] of own) if (this.own.get(key)?.value !== r.value) this.table.set(key, r.value);
    this.own = own;
    this.publisher?.kick();
  }

  private shared(): Map<string, string> {
    return new Map([...this.own].filter(([, r]) => r.shared).map(([key, r]) => [key, r.value]));
  }

  private onNetwork(key: string, value: string | undefined): void {
    const id = key.slice(keys.networks.length);
    if (value === undefined) this.nets.delete(id);
    else this.nets.set(id, decode<NetworkRecord>({ key, value, revision: 0 }));
    this.changed();
  }

  private onEndpoint(key: string, value: string | undefined): void {
    const id = key.split('/').pop()!;
    if (value === undefined) {
      this.eps.delete(id);
      this.reported.delete(id);
    } else {
      const ep = decode<EndpointRecord>({ key, value, revision: 0 });
      this.eps.set(id, ep);
      if (!this.warned && resolverMisses([ep], this.deps.resolver).length) {
        this.warned = true;
        this.deps.log.warn(`dockerd does not give containers knit's resolver: names on other hosts will not resolve; set "dns": ["${this.deps.resolver}"] in daemon.json (knit doctor lists the endpoints)`, { endpoint: short(ep.id), dnsServers: ep.dnsServers });
      }
    }
    this.changed();
  }

  private changed(): void {
    this.queriers = querierIndex(this.eps.values(), this.nets);
    this.refresh();
  }
}
