// The driver unit tests' bed: the real driver on a real local store in a temporary directory, with a kernel stub
// whose apply and remove the test chooses, a firewall that does nothing and no port ever bound.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import type { Datapath } from '../../src/network/datapath.js';
import { NetworkDriver } from '../../src/network/service.js';
import { openLocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/types.js';

export function stubKernel(calls: Pick<Datapath, 'apply' | 'remove'>): Datapath {
  return {
    ...calls,
    links: async () => [],
    vxlanEntries: async () => ({ fdb: new Set(), neigh: new Map() }),
    flushConntrack: async () => undefined,
    setSysctl: async () => undefined,
  };
}

export interface DriverBed {
  driver: NetworkDriver;
  store: Store;
  /** Another driver on the same store, with another kernel. */
  withKernel(kernel: Datapath): NetworkDriver;
  close(): Promise<void>;
}

export async function driverBed(kernel: Datapath): Promise<DriverBed> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-driver-'));
  const store = await openLocalStore(join(dir, 'db'));
  const withKernel = (k: Datapath) => new NetworkDriver({
    store, kernel: k, firewall: { syncNetwork: async () => undefined, removeNetwork: async () => undefined }, log: createLogger('error'),
    boundPorts: async () => ({ tcp: new Set(), udp: new Set(), sctp: new Set() }),
  });
  return {
    driver: withKernel(kernel),
    store,
    withKernel,
    async close() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
