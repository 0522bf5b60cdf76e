// Keeps the names of the engine's running containers, from its event stream plus a full resync at every
// (re)connection and periodically. Runs on its own: never inside a plugin call, because dockerd waits for its
// plugins at boot and a plugin that waited for dockerd would deadlock it.
import { setTimeout as sleep } from 'node:timers/promises';
import { Semaphore } from 'async-mutex';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { EngineClient, type EngineEvent } from './client.js';
import { isDockerId, namesFromInspect, type ContainerNames, type InspectReply } from './containers.js';

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5_000;
const RESYNC_MS = 60_000;
/** Inspections in flight at once during a resync, so a host with thousands of containers does not flood dockerd. */
const INSPECT_CONCURRENCY = 8;

export interface EngineWatcherDeps {
  socketPath: string;
  log: Logger;
  /** Called after the known names of a container changed (undefined: it is gone or stopped). */
  onChange: (id: string, names: ContainerNames | undefined) => void;
  resyncMs?: number;
}

export class EngineWatcher {
  private readonly client: EngineClient;
  private readonly known = new Map<string, ContainerNames>();
  /** Per container, its work in arrival order: an inspection that started before a `die` cannot land after it. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly inspections = new Semaphore(INSPECT_CONCURRENCY);
  private stream?: { close(): void };
  private since?: string;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  connected = false;
  /** Completed resyncs, for status. */
  resyncs = 0;

  constructor(private readonly deps: EngineWatcherDeps) {
    this.client = new EngineClient(deps.socketPath);
  }

  containers(): ContainerNames[] {
    return [...this.known.values()];
  }

  start(): void {
    void this.run();
    this.timer = setInterval(() => {
      if (this.connected) this.resync().catch((err) => this.deps.log.warn('Docker engine resync failed', { error: describe(err) }));
    }, this.deps.resyncMs ?? RESYNC_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.stream?.close();
  }

  private async run(): Promise<void> {
    let delay = BACKOFF_MIN_MS;
    let failures = 0;
    while (!this.stopped) {
      try {
        const api = await this.client.connect();
        const stream = this.client.events({ since: this.since }, (ev) => this.onEvent(ev));
        this.stream = stream;
        // Awaited below; a failure while the resync runs must not surface as an unhandled rejection.
        void stream.done.catch(() => undefined);
        // After the stream is open: a change between the listing and the stream cannot be missed.
        await Promise.race([this.resync(), stream.done]);
        this.connected = true;
        this.deps.log.info('Docker engine connected: names follow its events', { api, socket: this.deps.socketPath, containers: this.known.size });
        delay = BACKOFF_MIN_MS;
        failures = 0;
        await stream.done;
        if (!this.stopped) this.deps.log.warn('Docker engine event stream ended (dockerd restarting?); reconnecting');
      } catch (err) {
        // Said once, not every few seconds while dockerd is away.
        if (failures++ === 0) this.deps.log.warn('Docker engine unreachable; names of this host wait for it', { socket: this.deps.socketPath, error: describe(err) });
      }
      this.connected = false;
      this.stream?.close();
      if (!this.stopped) await sleep(delay, undefined, { ref: false });
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    }
  }

  private onEvent(ev: EngineEvent): void {
    if (typeof ev.time === 'number') this.since = String(ev.time);
    const id = ev.Type === 'network' ? ev.Actor?.Attributes?.container : ev.Actor?.ID;
    if (!isDockerId(id)) return;
    if (ev.Type === 'container' && (ev.Action === 'die' || ev.Action === 'destroy')) void this.enqueue(id, async () => this.set(id, undefined));
    else void this.refresh(id);
  }

  /** Every running container inspected again; the ones it no longer lists are checked and dropped. */
  async resync(): Promise<void> {
    const listed = (await this.client.get<Array<{ Id?: string }>>('/containers/json')) ?? [];
    const ids = new Set([...listed.map((c) => c.Id).filter(isDockerId), ...this.known.keys()]);
    await Promise.all([...ids].map((id) => this.refresh(id)));
    this.resyncs++;
  }

  private refresh(id: string): Promise<void> {
    return this.enqueue(id, () =>
      this.inspections.runExclusive(async () => {
        const c = await this.client.get<InspectReply>(`/containers/${id}/json`);
        this.set(id, c ? namesFromInspect(c) : undefined);
      }),
    );
  }

  private enqueue(id: string, work: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(id) ?? Promise.resolve()).then(work).catch((err) => {
      this.deps.log.debug('Docker engine inspection failed; the next resync retries', { container: id.slice(0, 12), error: describe(err) });
    });
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
    return next;
  }

  private set(id: string, names: ContainerNames | undefined): void {
    const before = this.known.get(id);
    if (names) this.known.set(id, names);
    else this.known.delete(id);
    if (JSON.stringify(before) !== JSON.stringify(names)) this.deps.onChange(id, names);
  }
}
