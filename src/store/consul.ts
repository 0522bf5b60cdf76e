// The Consul backend: KV reads, one /v1/txn per commit, blocking-query watches, and sessions as leases.
import { badRequest, KnitError, unavailable } from '../errors.js';
import { bounded, type Target } from './consul-call.js';
import { connect, type ConsulApi, type KvRead, type TxnKv, type TxnResponse } from './consul-client.js';
import { ConsulLease } from './consul-lease.js';
import { Journal } from './consul-journal.js';
import { planCommit, rejected, resultIndex } from './consul-txn.js';
import { ConsulWatch } from './consul-watch.js';
import type { Check, Entry, Lease, Store, Watch, WatchEvent, WatchOptions, Write } from './types.js';

export interface ConsulStoreOptions {
  host: string;
  port: number;
  /** Sent as X-Consul-Token (KNIT_CONSUL_TOKEN). */
  token?: string;
  /** The root every key lives under; default "knit/". */
  prefix?: string;
  /** Given, an unreachable Consul at open is reported here and the store is returned anyway (see the etcd store). */
  onUnreachable?: (err: KnitError) => void;
}

/** Connects and checks that Consul answers and has a leader, so a wrong KNIT_STORE fails at start, clearly. */
export async function openConsulStore(opts: ConsulStoreOptions): Promise<Store> {
  const root = opts.prefix ?? 'knit/';
  // Consul keys never start with "/" (newer servers refuse them), and a root keeps knit apart from other KV users.
  if (root === '' || root.startsWith('/')) throw badRequest(`the consul key prefix "${root}" must be a non-empty path without a leading "/", like "knit/"`);
  const target = { address: `${opts.host}:${opts.port}` };
  const client = connect(opts);
  try {
    const leader = await bounded({ target, what: 'asking for the cluster leader', mode: 'idempotent' }, (timeout) => client.leader(timeout));
    if (!leader) throw unavailable(`the consul store at ${target.address} has no cluster leader; wait for the election to end or check the Consul servers`);
  } catch (err) {
    if (opts.onUnreachable && err instanceof KnitError && err.kind === 'unavailable') {
      opts.onUnreachable(err);
      return new ConsulStore(client, target, root);
    }
    client.destroy();
    throw err;
  }
  return new ConsulStore(client, target, root);
}

type TxnAnswer = { ok: TxnResponse } | { conflict: TxnResponse };

class ConsulStore implements Store {
  readonly kind = 'consul';
  /** A blocking query answers with the whole prefix (docs/store.md). */
  readonly watchRereadsPrefix = true;
  private closed = false;
  private readonly journal = new Journal();
  private readonly watches = new Set<ConsulWatch>();
  private readonly leases = new Set<ConsulLease>();
  private readonly where: string;

  constructor(
    private readonly client: ConsulApi,
    private readonly target: Target,
    private readonly root: string,
  ) {
    this.where = `the consul store at ${target.address}`;
  }

  async get(key: string): Promise<Entry | undefined> {
    const read = await this.read(`reading ${JSON.stringify(key)}`, key, false);
    const item = read.items[0];
    if (!item) return undefined;
    const entry = { key, value: item.Value ?? '', revision: item.ModifyIndex };
    this.journal.record(key, entry.revision, entry.value);
    return entry;
  }

  /** Consul returns a prefix's entries sorted by key bytes, which is the order the interface asks for. */
  async list(prefix: string): Promise<Entry[]> {
    const read = await this.read(`listing ${JSON.stringify(prefix)}`, prefix, true);
    const entries = read.items.map((i) => ({ key: i.Key.slice(this.root.length), value: i.Value ?? '', revision: i.ModifyIndex }));
    for (const e of entries) this.journal.record(e.key, e.revision, e.value);
    return entries;
  }

  async commit(writes: Write[], checks: Check[] = []): Promise<number | null> {
    this.assertOpen();
    const plan = planCommit({ root: this.root, writes, checks });
    if (!plan.ops.length) return (await this.read('reading the current revision', '', false)).index;
    const what = `committing ${writes.length} write${writes.length === 1 ? '' : 's'}`;
    const answer = await bounded({ target: this.target, what, mode: 'write' }, (timeout) => this.send(plan.ops, timeout));
    if ('conflict' in answer) return rejected({ plan, response: answer.conflict, where: this.where });
    // Delete verbs report no index: reading a deleted key back gives the KV index, at or after the delete.
    const firstKey = writes[0]?.key ?? checks[0].key;
    if (!plan.writesValue) return (await this.read(`reading back ${JSON.stringify(firstKey)}`, firstKey, false)).index;
    // Only here is the revision exact for every write: a read-back index may be later than the delete, and a fact
    // dated too late could be reported after a put that in truth followed it.
    const revision = resultIndex(answer.ok);
    for (const w of writes) this.journal.record(w.key, revision, w.value);
    return revision;
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void, afterRevision?: number, options: WatchOptions = {}): Watch {
    this.assertOpen();
    const watch = new ConsulWatch({ client: this.client, root: this.root, journal: this.journal }, { prefix, onEvent, afterRevision, settleMs: options.settleMs });
    this.watches.add(watch);
    return {
      close: () => {
        this.watches.delete(watch);
        watch.close();
      },
    };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.assertOpen();
    const lease = await ConsulLease.grant({ client: this.client, target: this.target }, ttlSeconds);
    this.leases.add(lease);
    return lease;
  }

  /** Stops watches and renewals; sessions are left to expire, so a restarting host keeps its keys for a while. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.watches) watch.close();
    for (const lease of this.leases) lease.release();
    this.client.destroy();
  }

  /** A 409 is an answer (guards failed), not a failure to retry. */
  private async send(ops: { KV: TxnKv }[], timeout: number): Promise<TxnAnswer> {
    try {
      return { ok: await this.client.txn(ops, timeout) };
    } catch (err) {
      const res = (err as { response?: { statusCode?: number; body?: unknown } }).response;
      if (res?.statusCode === 409 && typeof res.body === 'object' && res.body !== null) return { conflict: res.body as TxnResponse };
      throw err;
    }
  }

  private read(what: string, key: string, recurse: boolean): Promise<KvRead> {
    this.assertOpen();
    return bounded({ target: this.target, what, mode: 'idempotent' }, (timeout) => this.client.kvRead({ key: this.root + key, recurse, timeout }));
  }

  private assertOpen(): void {
    if (this.closed) throw new KnitError('internal', `${this.where} is already closed`);
  }
}
