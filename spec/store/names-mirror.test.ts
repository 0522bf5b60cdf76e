// The names module's mirror on the embedded store (of this host's network and endpoint records): a reopened store replays only its changes since it opened, so
// the mirror must start from a listing there (knit crashed at start when it asked for older changes).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mirror } from '../../src/names/mirror.js';
import { openLocalStore } from '../../src/store/local.js';
import { put, remove } from '../../src/store/types.js';
import { until } from './contract.js';

let dir = '';
beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'knit-mirror-'))));
afterAll(async () => rm(dir, { recursive: true, force: true }));

test('after a restart the mirror lists what is there, then follows puts and deletes', async () => {
  const first = await openLocalStore(dir);
  for (let i = 0; i < 5; i++) await put(first, `names/n/h/e${i}`, `v${i}`);
  // Later changes elsewhere: the names' newest revision is older than anything the reopened store can replay.
  for (let i = 0; i < 5; i++) await put(first, 'net/x', `v${i}`);
  await first.close();
  const store = await openLocalStore(dir);
  const seen: Array<[string, string | undefined]> = [];
  const m = new Mirror(store, 'names/', (k, v) => seen.push([k, v]));
  await m.start();
  expect([...m.entries.keys()]).toEqual(['names/n/h/e0', 'names/n/h/e1', 'names/n/h/e2', 'names/n/h/e3', 'names/n/h/e4']);
  await put(store, 'names/n/h/e5', 'v5');
  await remove(store, 'names/n/h/e0');
  await put(store, 'other/x', 'not mine');
  await until('the put and the delete in the mirror', () => m.entries.has('names/n/h/e5') && !m.entries.has('names/n/h/e0'));
  expect(m.entries.get('names/n/h/e5')?.value).toBe('v5');
  expect(m.entries.has('other/x')).toBe(false);
  expect(seen.slice(-2)).toEqual([['names/n/h/e5', 'v5'], ['names/n/h/e0', undefined]]);
  m.close();
  await store.close();
});
