// IPAM never hands out an address a knit host holds: each host publishes its own, the others watch (real embedded store).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostAddresses } from '../../src/ipam/host-addresses.js';
import { Ipam } from '../../src/ipam/service.js';
import { createLogger } from '../../src/log.js';
import { openLocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/types.js';
import { until } from './contract.js';

const log = createLogger('error');
let dir: string;
let store: Store;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'knit-hostaddr-'));
  store = await openLocalStore(dir);
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** A knit host: its published addresses and its IPAM, over the shared store. */
function host(id: string, own: string[], shared = true) {
  const addrs = new HostAddresses({ store, hostId: id, own: async () => own, log, shared });
  const ipam = new Ipam({ store, hostId: id, defaultPools: [], reservedNetworks: async () => [], log, hostAddresses: () => addrs.all() });
  return { addrs, ipam };
}

test('no host\'s own address is handed out, dynamically or as --ip, and a host that publishes later is seen at once', async () => {
  const a = host('hosta', ['10.9.0.1', 'fe80::1', '192.0.2.7']);
  await a.addrs.refresh();
  const b = host('hostb', ['10.9.0.3']);
  expect([...a.addrs.all()].sort()).toEqual(['10.9.0.1', '192.0.2.7', 'fe80::1']);
  await b.addrs.refresh();
  await until('host A to see host B\'s address', () => a.addrs.all().has('10.9.0.3'));
  const { poolId } = await a.ipam.requestPool({ pool: '10.9.0.0/29', v6: false });
  await b.ipam.requestPool({ pool: '10.9.0.0/29', v6: false });
  // Usable: .1 to .6; .1 is host A's, .3 host B's. The gateway nobody chose is the lowest free one.
  expect(await a.ipam.requestAddress({ poolId, gateway: true })).toBe('10.9.0.2/29');
  const got = [];
  for (let i = 0; i < 3; i++) got.push(await (i % 2 ? b : a).ipam.requestAddress({ poolId, gateway: false }));
  expect(got.sort()).toEqual(['10.9.0.4/29', '10.9.0.5/29', '10.9.0.6/29']);
  await expect(a.ipam.requestAddress({ poolId, gateway: false })).rejects.toThrow(/no free address left in subnet 10.9.0.0\/29/);
  await expect(b.ipam.requestAddress({ poolId, address: '10.9.0.1', gateway: false })).rejects.toThrow(/10.9.0.1 is an address of a knit host/);
  a.addrs.stop();
  b.addrs.stop();
});

test('a host\'s addresses are republished when they change, and forgotten with the host', async () => {
  const own = ['10.9.0.1'];
  const a = host('hosta', own);
  const b = host('hostb', []);
  await a.addrs.refresh();
  await b.addrs.refresh();
  own.push('10.9.0.2');
  await a.addrs.refresh();
  await until('host B to see host A\'s new address', () => b.addrs.all().has('10.9.0.2'));
  await b.addrs.forget(['hosta']);
  await until('host A\'s addresses to go', () => b.addrs.all().size === 0);
  a.addrs.stop();
  b.addrs.stop();
});

test('after the first read the watch keeps the other hosts\' addresses: a refresh lists none again, a reload does', async () => {
  const lists: string[] = [];
  const counted: Store = { kind: store.kind, watchRereadsPrefix: store.watchRereadsPrefix, get: (k) => store.get(k), commit: (w, c) => store.commit(w, c), watch: (p, f, a, o) => store.watch(p, f, a, o), grantLease: (t) => store.grantLease(t), close: () => store.close(), list: (p) => (lists.push(p), store.list(p)) };
  const a = new HostAddresses({ store: counted, hostId: 'hosta', own: async () => ['10.9.0.1'], log, shared: true });
  const b = host('hostb', ['10.9.0.3']);
  await a.refresh();
  expect(lists).toHaveLength(1);
  await b.addrs.refresh();
  await until('host A to see host B\'s address', () => a.all().has('10.9.0.3'));
  await a.refresh();
  expect(lists).toHaveLength(1);
  // Positive control: the liveness check's reload reads them all.
  await a.reload();
  expect(lists).toHaveLength(2);
  a.stop();
  b.addrs.stop();
});

test('on the embedded store alone (one host) the addresses are kept in memory and nothing is written', async () => {
  const a = host('hosta', ['10.9.0.1'], false);
  await a.addrs.refresh();
  expect([...a.addrs.all()]).toEqual(['10.9.0.1']);
  expect(await store.list('ipam/')).toEqual([]);
  const { poolId } = await a.ipam.requestPool({ pool: '10.9.0.0/29', v6: false });
  expect(await a.ipam.requestAddress({ poolId, gateway: true })).toBe('10.9.0.2/29');
  // Control: shared, the same host publishes its record.
  const b = host('hostb', ['10.9.0.3']);
  await b.addrs.refresh();
  expect((await store.list('ipam/host-addrs/')).map((e) => e.key)).toEqual(['ipam/host-addrs/hostb']);
  b.addrs.stop();
});

test('an address every host has alike (the resolver\'s) is held locally but never published', async () => {
  const own = ['10.9.0.1'];
  const addrs = new HostAddresses({ store, hostId: 'hosta', own: async () => own, alike: ['169.254.53.53'], log, shared: true });
  await addrs.refresh();
  const first = await store.get('ipam/host-addrs/hosta');
  // The resolver's address comes up after the first publication, as at a knit's start: no new record for it.
  own.push('169.254.53.53');
  await addrs.refresh();
  const second = await store.get('ipam/host-addrs/hosta');
  expect(second?.revision).toBe(first?.revision);
  expect(JSON.parse(second!.value).addrs).toEqual(['10.9.0.1']);
  expect([...addrs.all()].sort()).toEqual(['10.9.0.1', '169.254.53.53']);
  // Control: a real change of the host's addresses is published.
  own.push('10.9.0.2');
  await addrs.refresh();
  expect(JSON.parse((await store.get('ipam/host-addrs/hosta'))!.value).addrs).toEqual(['10.9.0.1', '10.9.0.2']);
  addrs.stop();
});
