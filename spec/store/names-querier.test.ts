// Who asks the resolver is known from knit's own endpoint records, as soon as Join wrote the sandbox: a new
// container's first query must not wait for the Docker engine's events about it (there is no engine here at all).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { Names } from '../../src/names/service.js';
import { nameKey } from '../../src/names/records.js';
import { keys } from '../../src/network/records.js';
import { encode } from '../../src/store/records.js';
import { openLocalStore } from '../../src/store/local.js';
import { put, type Store } from '../../src/store/types.js';

const NET = 'a'.repeat(64);
const INTERNAL = 'b'.repeat(64);
const log = createLogger('error');
let dir = '';
let store: Store;
let names: Names;
/** What the names publish (the lease in knit): overlay endpoints' records only. */
const published = new Map<string, string>();
const sink = {
  put: async (key: string, value: string) => void published.set(key, value),
  drop: async (key: string) => void published.delete(key),
};

const network = (id: string, internal: boolean, mode = 'bridge', subnet = '10.9.0.0/24') =>
  encode({ id, mode, internal, ipv4: [{ subnet, gateway: subnet.replace('0/24', '1') }], ipv6: [], createdAt: 't' });
const endpoint = (id: string, networkId: string, address: string, sandboxKey?: string) =>
  encode({ id, networkId, hostIf: 'knh1', peerIf: 'knc1', mac: '02:00:00:00:00:01', address, ...(sandboxKey ? { sandboxKey } : {}), ports: [], createdAt: 't' });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'knit-querier-'));
  store = await openLocalStore(join(dir, 'db'));
  // A Docker socket nobody serves: every name of a querier below comes from the endpoint records alone.
  names = new Names({
    local: store, hostId: 'h1', sink, dockerSocket: join(dir, 'no-docker.sock'), resolver: '169.254.53.53', log,
    endpointName: (ip) => ({ '10.9.0.7': 'Web29', '10.8.0.7': 'Over29' } as Record<string, string>)[ip],
  });
  await names.start();
  await put(store, keys.network(NET), network(NET, false));
  await put(store, keys.network(INTERNAL), network(INTERNAL, true));
});

afterAll(async () => {
  names.stop();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('an endpoint is a querier from the moment its Join is recorded, with no engine event', async () => {
  const ep = 'c'.repeat(64);
  // Control: created but not joined (no sandbox yet) is not a container that can ask.
  await put(store, keys.endpoint(NET, ep), endpoint(ep, NET, '10.9.0.2/24'));
  await Promise.resolve();
  expect(names.networksOf('10.9.0.2')).toBeUndefined();
  await put(store, keys.endpoint(NET, ep), endpoint(ep, NET, '10.9.0.2/24', '/var/run/docker/netns/s1'));
  // Known by the time the write that Join awaits has returned: before dockerd starts the container's process.
  expect(names.networksOf('10.9.0.2')).toEqual([NET]);
  expect(names.external('10.9.0.2')).toBe(true);
  expect((names.status() as { engine: { connected: boolean } }).engine.connected).toBe(false);
});

test('a second endpoint in the same sandbox adds its network to the first one\'s address at once; Leave removes it', async () => {
  const ep = 'd'.repeat(64);
  await put(store, keys.endpoint(INTERNAL, ep), endpoint(ep, INTERNAL, '10.9.1.2/24', '/var/run/docker/netns/s1'));
  expect(names.networksOf('10.9.0.2')).toEqual([NET, INTERNAL].sort());
  expect(names.networksOf('10.9.1.2')).toEqual([NET, INTERNAL].sort());
  await put(store, keys.endpoint(INTERNAL, ep), endpoint(ep, INTERNAL, '10.9.1.2/24'));
  expect(names.networksOf('10.9.1.2')).toBeUndefined();
  expect(names.networksOf('10.9.0.2')).toEqual([NET]);
});

test('a joined endpoint whose RequestAddress carried a name (dockerd 29+) is published under it and answered, until it leaves', async () => {
  const ep = 'e'.repeat(64);
  await put(store, keys.endpoint(NET, ep), endpoint(ep, NET, '10.9.0.7/24', '/var/run/docker/netns/s7'));
  let found: { v4: string[] } | undefined;
  for (let i = 0; i < 100 && !found; i++) {
    await new Promise((r) => setTimeout(r, 20));
    found = names.lookup('web29', [NET]);
  }
  expect(found).toEqual({ v4: ['10.9.0.7'], v6: [] });
  // Control: the endpoint without a name is not published.
  expect(names.lookup('10.9.0.2', [NET])).toBeUndefined();
  await put(store, keys.endpoint(NET, ep), endpoint(ep, NET, '10.9.0.7/24'));
  for (let i = 0; i < 100 && found; i++) {
    await new Promise((r) => setTimeout(r, 20));
    found = names.lookup('web29', [NET]);
  }
  expect(found).toBeUndefined();
});

test('a bridge network\'s names are answered from memory and never published; an overlay\'s are published beside its endpoint record', async () => {
  const over = 'f'.repeat(64);
  await put(store, keys.network(over), network(over, false, 'overlay', '10.8.0.0/24'));
  const ep = '7'.repeat(64);
  const bridgeEp = '8'.repeat(64);
  await put(store, keys.endpoint(over, ep), endpoint(ep, over, '10.8.0.7/24', '/var/run/docker/netns/s8'));
  await put(store, keys.endpoint(NET, bridgeEp), endpoint(bridgeEp, NET, '10.9.0.7/24', '/var/run/docker/netns/s9'));
  // Both answered at once, from this host's own records.
  expect(names.lookup('over29', ['10.8.0.0_24'])).toEqual({ v4: ['10.8.0.7'], v6: [] });
  expect(names.lookup('web29', [NET])).toEqual({ v4: ['10.9.0.7'], v6: [] });
  const key = nameKey('10.8.0.0_24', 'h1', ep);
  expect(key).toBe(`overlay/endpoints/10.8.0.0_24/h1/${ep}/name`);
  for (let i = 0; i < 100 && !published.has(key); i++) await new Promise((r) => setTimeout(r, 20));
  // The overlay's record is published (positive control); the bridge network's is not, whatever the wait.
  expect(JSON.parse(published.get(key)!)).toMatchObject({ names: ['over29'], v4: ['10.8.0.7'] });
  expect([...published.keys()]).toEqual([key]);
  // Leave: unpublished and no longer answered.
  await put(store, keys.endpoint(over, ep), endpoint(ep, over, '10.8.0.7/24'));
  expect(names.lookup('over29', ['10.8.0.0_24'])).toBeUndefined();
  for (let i = 0; i < 100 && published.has(key); i++) await new Promise((r) => setTimeout(r, 20));
  expect(published.size).toBe(0);
});
