// The etcd v3 backend: keys below a root prefix, one Txn per commit, mod_revision as every entry's revision.
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Etcd3, Range, type ICompare, type IKeyValue, type IOptions, type IRequestOp, type IResponseHeader } from 'etcd3';
import { badRequest, KnitError } from '../errors.js';
import { bounded, OP_TIMEOUT_MS, type Target } from './etcd-call.js';
import { EtcdLease } from './etcd-lease.js';
import { EtcdWatch, type Snapshot } from './etcd-watch.js';
import type { Check, Entry, Lease, Store, Watch, WatchEvent, Write } from './types.js';

export interface EtcdStoreOptions {
  /** host:port (or http[s]://host:port) of each member. */
  endpoints: string[];
  /** Where knit's keys live in etcd's keyspace (default /knit/); the Store API sees keys below it. */
  prefix?: string;
  /** PEM files: the CA that signed etcd's certificate (default: the system's), and a client certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
  /**
   * Given, an unreachable etcd at open is reported here and the store is returned anyway (its client keeps
   * trying): a daemon must start, and serve what needs no store, while the store is away.
   */
  onUnreachable?: (err: KnitError) => void;
}

// gRPC backs off up to 2 minutes between reconnects by default: far too long to notice etcd is back.
const GRPC_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1_000,
  // A watch or keepalive stream to a member that vanished without a reset would otherwise wait forever;
  // etcd refuses pings more often than every 5 s.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  // A list of a large prefix comes back as one message; gRPC's 4 MiB default would refuse it.
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

interface Backoff {
  readonly duration: number;
  next(): Backoff;
}
// The client's default watch backoff grows to 30 s; after an outage the watch should resume within seconds.
const watchBackoff = (ms: number): Backoff => ({ duration: ms, next: () => watchBackoff(Math.min(ms * 2, 2_000)) });

async function readPem(what: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw badRequest(`cannot read the etcd TLS ${what} ${path}: ${(err as Error).message}`);
  }
}

async function credentials(tls: NonNullable<EtcdStoreOptions['tls']>): Promise<IOptions['credentials']> {
  if (Boolean(tls.cert) !== Boolean(tls.key)) throw badRequest('an etcd client certificate needs both its cert and its key file');
  return {
    rootCertificate: tls.ca ? await readPem('CA', tls.ca) : Buffer.from(rootCertificates.join('\n')),
    certChain: tls.cert ? await readPem('certificate', tls.cert) : undefined,
    privateKey: tls.key ? await readPem('key', tls.key) : undefined,
  };
}

export async function openEtcdStore(opts: EtcdStoreOptions): Promise<Store> {
  if (opts.endpoints.length === 0) throw badRequest('the etcd store needs at least one endpoint');
  const prefix = opts.prefix ?? '/knit/';
  // One endpoint gets the whole budget (a busy etcd can be slow; trying again from zero gains nothing);
  // with more, a silent member leaves half of it for the client to fail over to another.
  const attemptMs = OP_TIMEOUT_MS / Math.min(opts.endpoints.length, 2);
  const client = new Etcd3({
    hosts: opts.endpoints,
    credentials: opts.tls && (await credentials(opts.tls)),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + attemptMs }),
    grpcOptions: GRPC_OPTIONS,
    faultHandling: { watchBackoff: watchBackoff(100) },
  });
  // A root without its trailing slash would also match its siblings ("/knit" and "/knit2").
  const store = new EtcdStore(client, prefix.endsWith('/') ? prefix : `${prefix}/`, { endpoints: opts.endpoints.join(',') });
  try {
    await store.probe();
  } catch (err) {
    if (opts.onUnreachable && err instanceof KnitError && err.kind === 'unavailable') {
      opts.onUnreachable(err);
      return store;
    }
    await store.close();
    throw err;
  }
  return store;
}

function guard(key: Buffer, expect: number): ICompare {
  // An absent key has version 0; a present one never has.
  return expect === 0
    ? { key, target: 'Version', result: 'Equal', version: 0 }
    : { key, target: 'Mod', result: 'Equal', mod_revision: expect };
}

class EtcdStore implements Store {
  readonly kind = 'etcd';
  readonly watchRereadsPrefix = false;
  /** The latest revision any answer carried: a watch "from now on" starts after it. */
  private seen = 0;
  private readonly watches = new Set<EtcdWatch>();
  private readonly leases = new Set<EtcdLease>();

  constructor(
    private readonly client: Etcd3,
    private readonly root: string,
    private readonly target: Target,
  ) {}

  async get(key: string): Promise<Entry | undefined> {
    const res = await this.call(`reading ${key}`, () => this.client.kv.range({ key: this.raw(key) }));
    return res.kvs.length > 0 ? this.entry(res.kvs[0]) : undefined;
  }

  async list(prefix: string): Promise<Entry[]> {
    return (await this.snapshot(prefix)).entries;
  }

  async commit(writes: Write[], checks: Check[] = []): Promise<number | null> {
    const compare = [
      ...writes.flatMap((w) => (w.expect === undefined ? [] : [guard(this.raw(w.key), w.expect)])),
      ...checks.map((c) => guard(this.raw(c.key), c.expect)),
    ];
    const success = writes.map(
      (w): IRequestOp =>
        w.value === null
          ? { request_delete_range: { key: this.raw(w.key) } }
          : { request_put: { key: this.raw(w.key), value: Buffer.from(w.value), lease: w.lease?.id } },
    );
    const keys = [...writes, ...checks].map((w) => w.key);
    const what = `committing ${keys[0] ?? 'nothing'}${keys.length > 1 ? ` and ${keys.length - 1} more` : ''}`;
    const res = await this.call(what, () => this.client.kv.txn({ compare, success }));
    return res.succeeded ? Number(res.header.revision) : null;
  }

  /**
   * Without `afterRevision`, "now" is the latest revision this store has read or written: a list
   * followed by a watch misses nothing in between, and neither does a commit made after watch() returns.
   */
  watch(prefix: string, onEvent: (event: WatchEvent) => void, afterRevision?: number): Watch {
    const snapshot = (p: string, revision?: number): Promise<Snapshot> => this.snapshot(p, revision);
    const watch = new EtcdWatch({ client: this.client, root: this.root, prefix, onEvent, snapshot }, afterRevision ?? this.seen);
    this.watches.add(watch);
    return {
      close: () => {
        this.watches.delete(watch);
        void watch.close();
      },
    };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    const lease = await EtcdLease.grant({
      client: this.client,
      target: this.target,
      ttlSeconds,
      onEnd: (ended) => this.leases.delete(ended),
    });
    this.leases.add(lease);
    return lease;
  }

  /** Stops watches and keepalives without revoking: leased keys stay until their TTL runs out. */
  async close(): Promise<void> {
    // Cancelled cleanly, a watch leaves the client no reconnect timer to hold the process open.
    await Promise.all([...this.watches].map((watch) => watch.close()));
    this.watches.clear();
    for (const lease of this.leases) lease.release();
    this.client.close();
  }

  /** One cheap read, so a wrong endpoint or a stopped etcd shows at start and not on the first request. */
  async probe(): Promise<void> {
    const range = Range.prefix(this.raw(''));
    await this.call('connecting', () => this.client.kv.range({ key: range.start, range_end: range.end, limit: 1, keys_only: true }));
  }

  private async snapshot(prefix: string, revision?: number): Promise<Snapshot> {
    const range = Range.prefix(this.raw(prefix));
    const what = `listing ${prefix || 'everything'}`;
    const res = await this.call(what, () => this.client.kv.range({ key: range.start, range_end: range.end, revision }));
    return { entries: res.kvs.map((kv) => this.entry(kv)), revision: Number(res.header.revision) };
  }

  private async call<T extends { header: IResponseHeader }>(what: string, fn: () => Promise<T>): Promise<T> {
    const res = await bounded(this.target, what, fn);
    this.seen = Math.max(this.seen, Number(res.header.revision));
    return res;
  }

  private raw(key: string): Buffer {
    return Buffer.from(this.root + key);
  }

  private entry(kv: IKeyValue): Entry {
    return { key: kv.key.toString().slice(this.root.length), value: kv.value.toString(), revision: Number(kv.mod_revision) };
  }
}
