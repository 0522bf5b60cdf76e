// knit's names (issue 13): this host's containers' names published from the engine's events, every host's
// names kept in memory from a watch, and the resolver answered from that memory (NameSource).
import { setTimeout as sleep } from 'node:timers/promises';
import type { NameSource } from '../dns/names.js';
import { EngineWatcher } from '../engine/watcher.js';
import { describe } from '../errors.js';
import { short, type Logger } from '../log.js';
import { keys, type EndpointRecord, type NetworkRecord } from '../network/records.js';
import { decode } from '../store/records.js';
import type { Store } from '../store/types.js';
import { Mirror } from './mirror.js';
import { desiredRecords, querierIndex, resolverMisses, type Querier } from './plan.js';
import { Publisher, type RecordSink } from './publisher.js';
import { NAMES } from './records.js';
import { NameTable } from './table.js';

export interface NamesDeps {
  /** The host's own records (networks, endpoints), as the driver keeps them. */
  local: Store;
  /** Where every host's name records are (the embedded store on one host). */
  cluster: Store;
  hostId: string;
  sink: RecordSink;
  dockerSocket: string;
  /** knit's resolver address: endpoints whose DNS servers lack it are reported. */
  resolver: string;
  /** The endpoint name dockerd 29+ sent with an address's RequestAddress (engine hints), if any. */
  endpointName?: (ip: string) => string | undefined;
  log: Logger;
}

const CACHE_RETRY_MAX_MS = 10_000;

export class Names implements NameSource {
  private readonly table = new NameTable();
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly eps = new Map<string, EndpointRecord>();
  private queriers = new Map<string, Querier>();
  /** Endpoints the engine reported since their Join (dropped with the endpoint): no name hint for them again. */
  private readonly reported = new Set<string>();
  private readonly localMirrors: Mirror[];
  private readonly cache: Mirror;
  private readonly engine: EngineWatcher;
  private readonly publisher: Publisher;
  private warned = false;
  private stopped = false;

  constructor(private readonly deps: NamesDeps) {
    this.localMirrors = [
      new Mirror(deps.local, keys.networks, (k, v) => this.onNetwork(k, v)),
      new Mirror(deps.local, keys.allEndpoints, (k, v) => this.onEndpoint(k, v)),
    ];
    this.cache = new Mirror(deps.cluster, NAMES, (k, v) => this.table.set(k, v));
    this.engine = new EngineWatcher({ socketPath: deps.dockerSocket, log: deps.log, onChange: () => this.publisher.kick() });
    this.publisher = new Publisher(deps.sink, () => this.desired(), deps.log);
  }

  /** The host's own records are read at once; the engine and the cluster's names follow in the background. */
  async start(): Promise<void> {
    for (const m of this.localMirrors) await m.start();
    this.engine.start();
    void this.startCache();
  }

  stop(): void {
    this.stopped = true;
    this.engine.stop();
    this.publisher.stop();
    this.cache.close();
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
      published: this.publisher.size,
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

  private desired(): Map<string, string> {
    const containers = this.engine.containers();
    for (const c of containers) for (const e of c.endpoints) if (this.eps.get(e.endpointId)?.sandboxKey) this.reported.add(e.endpointId);
    const input = { hostId: this.deps.hostId, containers, endpoints: this.eps, networks: this.nets, reported: this.reported };
    return desiredRecords({ ...input, endpointName: this.deps.endpointName });
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
    this.publisher.kick();
  }

  private async startCache(): Promise<void> {
    for (let delay = 1_000, failures = 0; !this.stopped; delay = Math.min(delay * 2, CACHE_RETRY_MAX_MS), failures++) {
      try {
        await this.cache.start();
        return;
      } catch (err) {
        if (failures === 0) this.deps.log.warn('names of other hosts not readable yet; retrying', { store: this.deps.cluster.kind, error: describe(err) });
        this.cache.close();
        await sleep(delay, undefined, { ref: false });
      }
    }
  }
}
