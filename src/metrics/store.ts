// The one place store calls are counted: a Store that times each call of the Store it wraps and tells the
// metrics, then returns what the wrapped store returned (or throws what it threw), unchanged.
import type { Check, Lease, Store, Watch, WatchEvent, WatchOptions, Write } from '../store/types.js';
import type { KnitMetrics, StoreOp, StoreOutcome } from './registry.js';

export function observedStore(inner: Store, metrics: KnitMetrics): Store {
  const store = inner.kind;
  async function timed<T>(op: StoreOp, call: () => Promise<T>, outcome: (result: T) => StoreOutcome = () => 'ok'): Promise<T> {
    const started = performance.now();
    try {
      const result = await call();
      metrics.storeCall(store, op, (performance.now() - started) / 1000, outcome(result));
      return result;
    } catch (err) {
      metrics.storeCall(store, op, (performance.now() - started) / 1000, 'error');
      throw err;
    }
  }
  return {
    kind: inner.kind,
    watchRereadsPrefix: inner.watchRereadsPrefix,
    get: (key: string) => timed('get', () => inner.get(key)),
    list: (prefix: string) => timed('list', () => inner.list(prefix)),
    commit: (writes: Write[], checks?: Check[]) => timed('commit', () => inner.commit(writes, checks), (r) => (r === null ? 'conflict' : 'ok')),
    grantLease: (ttlSeconds: number): Promise<Lease> => timed('grantLease', () => inner.grantLease(ttlSeconds)),
    watch(prefix: string, onEvent: (event: WatchEvent) => void, afterRevision?: number, options?: WatchOptions): Watch {
      return inner.watch(prefix, (event) => {
        metrics.storeEvent(store);
        onEvent(event);
      }, afterRevision, options);
    },
    close: () => inner.close(),
  };
}
