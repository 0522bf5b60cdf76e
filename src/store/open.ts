// Opens the store named by KNIT_STORE: the embedded one, or a cluster store shared by every host.
import type { KnitError } from '../errors.js';
import { openConsulStore } from './consul.js';
import { openEtcdStore } from './etcd.js';
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

export async function openClusterStore(a: ClusterStoreOptions): Promise<Store> {
  switch (a.url.kind) {
    case 'local':
      return a.local;
    case 'etcd':
      return openEtcdStore({ endpoints: a.url.endpoints, tls: a.etcdTls, onUnreachable: a.onUnreachable });
    case 'consul':
      return openConsulStore({ host: a.url.host, port: a.url.port, token: a.consulToken, onUnreachable: a.onUnreachable });
  }
}
