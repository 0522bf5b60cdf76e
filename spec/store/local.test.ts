// The embedded LMDB store: the shared contract, plus what only a local store promises.
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLocalStore } from '../../src/store/local.js';
import { put, type Store, type WatchEvent } from '../../src/store/types.js';
import { storeContract, until } from './contract.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-store-'));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

let contractDir = '';
storeContract(
  'local',
  async () => openLocalStore((contractDir = await tempDir())),
  async () => rm(contractDir, { recursive: true, force: true }),
);

describe('local store', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = join(await tempDir(), 'state', 'store');
    store = await openLocalStore(dir);
  });
  afterEach(async () => store.close());
  const reopen = async (opts?: { sync?: boolean }): Promise<Store> => {
    await store.close();
    return (store = await openLocalStore(dir, opts));
  };

  test('creates its directory private to root', () => {
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  test('keeps data and the revision counter across close and reopen, in either sync mode', async () => {
    const r1 = (await store.commit([{ key: 'a', value: '1' }, { key: 'b', value: '2' }]))!;
    await reopen({ sync: true });
    expect(await store.list('')).toEqual([
      { key: 'a', value: '1', revision: r1 },
      { key: 'b', value: '2', revision: r1 },
    ]);
    expect(await put(store, 'c', '3')).toBe(r1 + 1);
    await reopen({ sync: false });
    expect(await put(store, 'd', '4')).toBe(r1 + 2);
  });

  test('accepts keys up to 1,000 UTF-8 bytes and rejects longer or malformed ones, writing nothing', async () => {
    const longest = 'é'.repeat(500);
    expect(await put(store, longest, 'v')).not.toBeNull();
    expect((await store.get(longest))?.value).toBe('v');
    const rejected = [`${longest}x`, '', 'bad\ud800'];
    for (const key of rejected) {
      await expect(store.commit([{ key: 'ok', value: 'v' }, { key, value: 'v' }])).rejects.toThrow(/key/);
    }
    await expect(store.get(`${longest}x`)).rejects.toThrow(/1001 bytes long; keys are limited to 1000/);
    await expect(store.commit([{ key: 'k', value: '1' }, { key: 'k', value: '2' }])).rejects.toThrow(/twice/);
    expect(await store.get('ok')).toBeUndefined();
    expect(await put(store, 'after', 'still works')).not.toBeNull();
  });

  test('lists 30,000 keys under a prefix quickly, and a small prefix without scanning its neighbours', async () => {
    for (const prefix of ['big/', 'big0/']) {
      for (let chunk = 0; chunk < 30_000; chunk += 5_000) {
        const writes = Array.from({ length: 5_000 }, (_, i) => ({ key: `${prefix}${String(chunk + i).padStart(6, '0')}`, value: 'x' }));
        await store.commit(writes);
      }
    }
    await put(store, 'big/~last', 'y');
    let started = performance.now();
    const entries = await store.list('big/');
    expect(entries).toHaveLength(30_001);
    expect(entries[0].key).toBe('big/000000');
    expect(entries[30_000].key).toBe('big/~last');
    expect(performance.now() - started).toBeLessThan(2_000);
    started = performance.now();
    for (let i = 0; i < 200; i++) expect(await store.list('big/~')).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(1_000);
  }, 60_000);

  test('delivers watch events asynchronously, never inside watch() or commit()', async () => {
    const start = (await put(store, 'w/a', '1'))!;
    const events: WatchEvent[] = [];
    let inCommit = false;
    let calledInCommit = false;
    store.watch('w/', (e) => {
      calledInCommit ||= inCommit;
      events.push(e);
    }, start - 1);
    expect(events).toEqual([]);
    inCommit = true;
    const committing = put(store, 'w/b', '2');
    inCommit = false;
    await committing;
    await until('both events', () => events.length === 2);
    expect(events.map((e) => e.key)).toEqual(['w/a', 'w/b']);
    expect(calledInCommit).toBe(false);
  });

  test('refuses to replay from before its event history, so callers list again', async () => {
    const first = (await put(store, 'h/first', 'x'))!;
    await reopen();
    expect(() => store.watch('h/', () => undefined, first - 1)).toThrow(/list again/);
    expect(() => store.watch('h/', () => undefined, first)).not.toThrow();
    // The log keeps at least its last 10,000 events and trims in slices of 1,000: 11,050 in one commit overflow it.
    const big = (await store.commit(Array.from({ length: 11_050 }, (_, i) => ({ key: `h/${i}`, value: 'v' }))))!;
    expect(() => store.watch('h/', () => undefined, big - 1)).toThrow(/keeps only changes after revision/);
    store.watch('h/', () => undefined, big).close();
  });

  test('leases never report loss, refuse use after revoke, and do not outlive the process', async () => {
    const lease = await store.grantLease(5);
    let lost = false;
    lease.onLost(() => (lost = true));
    await store.commit([{ key: 'l/revoked', value: 'v', lease }]);
    await lease.revoke();
    await lease.revoke();
    expect(lost).toBe(false);
    await expect(store.commit([{ key: 'l/x', value: 'v', lease }])).rejects.toThrow(/revoked/);
    const held = await store.grantLease(5);
    await store.commit([{ key: 'l/held', value: 'v', lease: held }, { key: 'l/plain', value: 'p' }]);
    await store.commit([{ key: 'l/detached', value: 'v', lease: held }]);
    await put(store, 'l/detached', 'rewritten without the lease');
    await reopen();
    expect((await store.list('l/')).map((e) => e.key)).toEqual(['l/detached', 'l/plain']);
  });
});

describe('local store after SIGKILL', () => {
  const modulePath = join(repo, 'dist/store/local.js');

  /** Runs the crash writer until it has reported `atLeast` commits, kills it, returns the last one. */
  function writeThenKill(dir: string, sync: boolean, atLeast: number): Promise<number> {
    const child = spawn(process.execPath, [join(repo, 'spec/store/fixtures/crash-writer.mjs'), modulePath, dir, sync ? 'sync' : 'nosync']);
    let out = '';
    let err = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').length > atLeast) setTimeout(() => child.kill('SIGKILL'), Math.random() * 30);
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    return new Promise((resolve, reject) => {
      child.on('close', (code, signal) => {
        clearTimeout(killer);
        if (signal !== 'SIGKILL') return reject(new Error(`crash writer exited with ${code} before it was killed: ${err}`));
        const lines = out.split('\n').filter((line) => line !== '');
        resolve(Number(lines.at(-1) ?? 0));
      });
    });
  }

  test('loses no reported commit and leaves no commit half applied', async () => {
    if (!existsSync(modulePath)) throw new Error(`${modulePath} is missing: run \`npm run build\` before the store tests`);
    if (statSync(modulePath).mtimeMs < statSync(join(repo, 'src/store/local.ts')).mtimeMs) {
      throw new Error(`${modulePath} is older than src/store/local.ts: run \`npm run build\` again`);
    }
    const dir = await tempDir();
    for (const [round, sync] of [false, false, true, false].entries()) {
      const reported = await writeThenKill(dir, sync, 50 + round * 100);
      const store = await openLocalStore(dir);
      const entries = await store.list('crash/');
      const revision = entries[0].revision;
      expect([reported, reported + 1]).toContain(revision);
      expect(entries.map((e) => e.key)).toEqual(['crash/a', 'crash/b', 'crash/c']);
      expect(new Set(entries.map((e) => `${e.value}@${e.revision}`)).size).toBe(1);
      expect(await put(store, `after/${round}`, 'x')).toBe(revision + 1);
      await store.close();
    }
  }, 120_000);
});
