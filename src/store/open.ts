// Opens the store named by KNIT_STORE: the embedded one, or a cluster store shared by every host.
import type { StoreUrl } from '../config.js';
import { openConsulStore } from './consul.js';
import { openEtcdStore } from './etcd.js';
import type { Store } from './types.js';

export async function openClusterStore(a: { url: StoreUrl; local: Store; consulToken?: string; etcdTls?: { ca?: string; cert?: string; key?: string } }): Promise<Store> {
  switch (a.url.kind) {
    case 'local':
      return a.local;
    case 'etcd':
      return openEtcdStore({ endpoints: a.url.endpoints, tls: a.etcdTls });
    case 'consul':
      return openConsulStore({ host: a.url.host, port: a.url.port, token: a.consulToken });
  }
}
