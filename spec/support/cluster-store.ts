// The cluster store of a multi-host test: a real etcd on the underlay, or the Consul test server reached from it.
import { startConsulServer } from './consul-server.js';
import { startEtcd } from './etcd.js';
import { run } from './proc.js';

export const STORE_IP = '198.18.0.250';

/** The store under test, as the hosts see it, with the outage controls the tests need. */
export interface ClusterStore {
  url: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops it and removes what it added to the root namespace. */
  dispose(): Promise<void>;
}

/** The root namespace joins the underlay, so an in-process server here is reachable from every host. */
async function rootOnUnderlay(ip: string): Promise<void> {
  await run(['ip', 'link', 'add', 'knt-root', 'type', 'veth', 'peer', 'name', 'u-root', 'netns', 'knt-underlay']);
  await run(['ip', '-n', 'knt-underlay', 'link', 'set', 'u-root', 'master', 'knt-ul', 'up']);
  await run(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'knt-root']);
  await run(['ip', 'link', 'set', 'knt-root', 'up']);
}

/** After connectHosts (the underlay must exist). */
export async function startClusterStore(kind: 'etcd' | 'consul'): Promise<ClusterStore> {
  if (kind === 'etcd') {
    await run(['ip', '-n', 'knt-underlay', 'addr', 'add', `${STORE_IP}/24`, 'dev', 'knt-ul']);
    const etcd = await startEtcd({ netns: 'knt-underlay', host: STORE_IP });
    return { url: `etcd://${etcd.endpoint}`, stop: () => etcd.stop(), restart: () => etcd.restart(), dispose: () => etcd.dispose() };
  }
  await rootOnUnderlay(STORE_IP);
  const consul = await startConsulServer({ host: STORE_IP });
  return {
    url: `consul://${consul.address}`,
    stop: () => consul.stop(),
    restart: () => consul.start(),
    dispose: async () => {
      await consul.close();
      await run(['ip', 'link', 'del', 'knt-root'], { reject: false });
    },
  };
}
