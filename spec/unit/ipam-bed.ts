// A real embedded (LMDB) store in a temp dir, IPAM instances on it as different hosts, and a store that lets a
// test interfere right before a chosen commit, so a compare-and-set loses a real race.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cidr } from '../../src/addr/cidr.js';
import { Ipam } from '../../src/ipam/service.js';
import type { PoolSpec } from '../../src/ipam/pools.js';
import type { Logger } from '../../src/log.js';
import { openLocalStore } from '../../src/store/local.js';
import { decode } from '../../src/store/records.js';
import type { Store, Write } from '../../src/store/types.js';

export interface LogLine {
  level: string;
  message: string;
  meta?: Record<string, unknown>;
}

export interface Bed {
  store: Store;
  close(): Promise<void>;
}

export async function openBed(): Promise<Bed> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-ipam-'));
  const store = await openLocalStore(dir);
  return {
    store,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A cluster store and any number of hosts' own stores, fresh for each test of the calling describe block (or
 * file): `cluster()` is the shared one, `local()` opens one more host store.
 */
export function clusterBeds(): { cluster: () => Store; local: () => Promise<Store> } {
  let cluster: Bed | undefined;
  const locals: Bed[] = [];
  beforeEach(async () => void (cluster = await openBed()));
  afterEach(async () => {
    await cluster?.close();
    for (const b of locals.splice(0)) await b.close();
  });
  return {
    cluster: () => cluster!.store,
    local: async () => {
      const b = await openBed();
      locals.push(b);
      return b.store;
    },
  };
}

/** A logger that keeps its lines, so a test can tell what a host said it did. */
export function recordingLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, meta?: Record<string, unknown>) => void lines.push({ level, message, meta });
  const log = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as Logger;
  return { log, lines };
}

export function ipamOn(store: Store, hostId: string, extra: { defaultPools?: PoolSpec[]; reserved?: Cidr[]; released?: string[]; local?: Store; hostAddresses?: () => ReadonlySet<string> } = {}) {
  const { log, lines } = recordingLog();
  const ipam = new Ipam({
    store,
    local: extra.local,
    hostAddresses: extra.hostAddresses,
    hostId,
    defaultPools: extra.defaultPools ?? [],
    reservedNetworks: async () => extra.reserved ?? [],
    log,
    onPoolReleased: (subnet) => extra.released?.push(subnet),
  });
  return { ipam, lines };
}

/** Counts the commits that write below `prefix` (the cluster store's cost of a call). */
export function counting(store: Store, prefix: string) {
  const counts = { commits: 0 };
  const wrapped = withCommit(store, (writes, checks) => {
    if (writes.some((w) => w.key.startsWith(prefix))) counts.commits++;
    return store.commit(writes, checks);
  });
  return { store: wrapped, counts };
}

/** `store` with its commit replaced; everything else goes to `store`. */
export function withCommit(store: Store, commit: Store['commit']): Store {
  return {
    kind: store.kind,
    watchRereadsPrefix: store.watchRereadsPrefix,
    get: (key) => store.get(key),
    list: (prefix) => store.list(prefix),
    watch: (prefix, onEvent, after, options) => store.watch(prefix, onEvent, after, options),
    grantLease: (ttl) => store.grantLease(ttl),
    close: () => store.close(),
    commit,
  };
}

/**
 * Wraps `store`: the first commit for which `when` holds first runs `interfere` (another host's call), then
 * goes to the store. `lost` counts commits whose guard failed: the test's proof that the race happened.
 */
export function interfering(store: Store, when: (writes: Write[]) => boolean, interfere: () => Promise<unknown>) {
  const counts = { fired: 0, lost: 0 };
  const wrapped = withCommit(store, async (writes, checks) => {
    if (counts.fired === 0 && when(writes)) {
      counts.fired++;
      await interfere();
    }
    const revision = await store.commit(writes, checks);
    if (revision === null) counts.lost++;
    return revision;
  });
  return { store: wrapped, counts };
}

/** Every record below `prefix`, decoded, by key. */
export async function records<T>(store: Store, prefix: string): Promise<Map<string, T>> {
  return new Map((await store.list(prefix)).map((e) => [e.key, decode<T>(e)]));
}

export const writesKey = (key: string) => (writes: Write[]) => writes.some((w) => w.key === key);
