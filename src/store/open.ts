// Opens the store named by KNIT_STORE: the embedded one, or a cluster store shared by every host.
import type { KnitError } from '../errors.js';
import type { Store } from './types.js';

/** Which store to open, as KNIT_STORE names it (config.ts parses the text into this). */
export type StoreUrl =
  | { kind: 'local' }
  | { kind: 'consul'; host: string; port: number }
  | { kind: 'etcd'; endpoints: string[] };

export interface ClusterStoreOptions {
  url: StoreUrl;
  local: Store;
  consulToken?: string;
  etcdTls?: { ca?: string; cert?: string; key?: string };
  /** Given, a store unreachable at open is reported here instead of failing the open. */
  onUnreachable?: (err: KnitError) => void;
}

/** Each backend's client is loaded only when it is used (the etcd client alone is about 25 MiB of memory). */
export async function openClusterStore(a: ClusterStoreOptions): Promise<Store> {
  switch (a.url.kind) {
    case 'local':
      return a.local;
    case 'etcd': {
      const { openEtcdStore } = await import('./etcd.js');
      return openEtcdStore({ endpoints: a.url.endpoints, tls: a.etcdTls, onUnreachable: a.onUnreachable });
    }
    case 'consul': {
      const { openConsulStore } = await import('./consul.js');
      return openConsulStore({ host: a.url.host, port: a.url.port, token: a.consulToken, onUnreachable: a.onUnreachable });
    }
  }
}
