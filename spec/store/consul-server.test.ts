// The Consul test server checked with raw HTTP against Consul's documented behaviour (docs/store.md), which is
// what makes it a fair stand-in for Consul when the backend is tested against it.
import { request, type IncomingHttpHeaders } from 'node:http';
import { startConsulServer, type ConsulTestServer } from '../support/consul-server.js';

interface Answer {
  status: number;
  index: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: <T = unknown>() => T;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Raw HTTP on a fresh connection per request, so a server stop never leaves a pooled socket behind. */
function client(srv: () => ConsulTestServer, token?: string) {
  return (method: string, path: string, body?: unknown): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const headers = token ? { 'X-Consul-Token': token } : {};
      const req = request({ host: srv().host, port: srv().port, method, path, headers, agent: false, timeout: 15_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const index = Number(res.headers['x-consul-index']);
          resolve({ status: res.statusCode ?? 0, index, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path}`)));
      req.on('error', reject);
      req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
    });
}

interface DirEntry {
  Key: string;
  Value: string | null;
  Flags: number;
  LockIndex: number;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
}
interface TxnReply {
  Results: { KV: DirEntry }[] | null;
  Errors: { OpIndex: number; What: string }[] | null;
}

describe('Consul test server', () => {
  let srv: ConsulTestServer;
  const api = client(() => srv);
  const entry = async (key: string): Promise<DirEntry> => (await api('GET', `/v1/kv/${key}`)).json<DirEntry[]>()[0];
  beforeAll(async () => {
    srv = await startConsulServer({ sessionTtlMinSeconds: 1 });
  });
  afterAll(async () => srv.close());

  test('a fresh server reports index 1 and a 404 with the index headers for a missing key', async () => {
    const r = await api('GET', '/v1/kv/nothing');
    expect(r).toMatchObject({ status: 404, index: 1, text: '' });
    expect(r.headers['x-consul-knownleader']).toBe('true');
    expect(r.headers['x-consul-lastcontact']).toBe('0');
  });

  test('PUT takes raw bytes; GET returns an array with base64 Value and the index fields', async () => {
    expect((await api('PUT', '/v1/kv/kv/a?flags=42', 'hello')).text).toBe('true');
    const r = await api('GET', '/v1/kv/kv%2Fa');
    const [e] = r.json<DirEntry[]>();
    expect(e).toEqual({ LockIndex: 0, Key: 'kv/a', Flags: 42, Value: b64('hello'), CreateIndex: e.ModifyIndex, ModifyIndex: e.ModifyIndex });
    expect(r.index).toBe(e.ModifyIndex);
    await api('PUT', '/v1/kv/kv/a', 'again');
    expect(await entry('kv/a')).toMatchObject({ Flags: 0, CreateIndex: e.CreateIndex, ModifyIndex: expect.any(Number) });
    await api('PUT', '/v1/kv/kv/empty', '');
    expect((await entry('kv/empty')).Value).toBeNull();
    const raw = await api('GET', '/v1/kv/kv/a?raw');
    expect(raw.text).toBe('again');
    expect(raw.headers['content-type']).toBe('text/plain');
  });

  test('its request counters (for the cluster benchmark) move by exactly the requests sent, by kind, with the bytes', async () => {
    const before = await srv.counters();
    const moved = async () => {
      const now = await srv.counters();
      return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
    };
    await api('PUT', '/v1/kv/count/a', 'abc');
    await api('GET', '/v1/kv/count/a');
    const { index } = await api('GET', '/v1/kv/count/?recurse');
    await api('GET', `/v1/kv/count/?recurse&index=${index}&wait=50ms`);
    await api('PUT', '/v1/txn', [{ KV: { Verb: 'get', Key: 'count/a' } }]);
    const { ID } = (await api('PUT', '/v1/session/create', { TTL: '10s' })).json<{ ID: string }>();
    await api('PUT', `/v1/session/renew/${ID}`);
    await api('PUT', `/v1/session/destroy/${ID}`);
    const m = await moved();
    expect(m).toMatchObject({ kvWrite: 1, kvGet: 2, kvBlocking: 1, txn: 1, sessionCreate: 1, sessionRenew: 1, sessionDestroy: 1 });
    // The PUT's 3 bytes, the txn's and the session's JSON bodies in; something out.
    expect(m.bytesIn).toBeGreaterThan(3);
    expect(m.bytesOut).toBeGreaterThan(0);
    expect(await srv.kvReads()).toBe((before.kvGet ?? 0) + (before.kvBlocking ?? 0) + 3);
  });

  test('an identical write changes nothing, not even ModifyIndex', async () => {
    await api('PUT', '/v1/kv/same', 'v');
    const before = (await entry('same')).ModifyIndex;
    expect((await api('PUT', '/v1/kv/same', 'v')).text).toBe('true');
    expect((await entry('same')).ModifyIndex).toBe(before);
  });

  test('cas=0 creates only; cas=N needs the exact ModifyIndex; a miss is 200 false', async () => {
    expect((await api('PUT', '/v1/kv/cas/k?cas=0', '1')).text).toBe('true');
    expect(await api('PUT', '/v1/kv/cas/k?cas=0', '2')).toMatchObject({ status: 200, text: 'false' });
    const m = (await entry('cas/k')).ModifyIndex;
    expect((await api('PUT', `/v1/kv/cas/k?cas=${m + 1}`, '3')).text).toBe('false');
    expect((await api('PUT', `/v1/kv/cas/k?cas=${m}`, '3')).text).toBe('true');
    const m2 = (await entry('cas/k')).ModifyIndex;
    expect((await api('DELETE', `/v1/kv/cas/k?cas=${m}`)).text).toBe('false');
    expect((await api('DELETE', `/v1/kv/cas/k?cas=${m2}`)).text).toBe('true');
    expect((await api('DELETE', '/v1/kv/cas/k?cas=7')).text).toBe('true');
    expect((await api('PUT', '/v1/kv/cas/k?cas=0&acquire=x', '')).status).toBe(400);
  });

  test('recurse and keys match a raw string prefix in byte order; nothing under it is a 404 with the index', async () => {
    for (const k of ['p/foo', 'p/foo/x', 'p/foobar', 'p/fo', 'p/foo/y/z']) await api('PUT', `/v1/kv/${k}`, k);
    const keys = (await api('GET', '/v1/kv/p/foo?recurse')).json<DirEntry[]>().map((e) => e.Key);
    expect(keys).toEqual(['p/foo', 'p/foo/x', 'p/foo/y/z', 'p/foobar']);
    expect((await api('GET', '/v1/kv/p/foo/?keys&separator=/')).json()).toEqual(['p/foo/x', 'p/foo/y/']);
    const none = await api('GET', '/v1/kv/p/zzz?recurse');
    expect(none.status).toBe(404);
    expect(none.index).toBeGreaterThan(1);
  });

  test('one index for every write; a delete under a prefix moves that prefix index forward', async () => {
    await api('PUT', '/v1/kv/ix/a', '1');
    const a = await api('GET', '/v1/kv/ix/?recurse');
    await api('PUT', '/v1/kv/elsewhere', '1');
    await api('PUT', '/v1/kv/ix/b', '1');
    await api('DELETE', '/v1/kv/ix/b');
    const after = await api('GET', '/v1/kv/ix/?recurse');
    expect(after.json<DirEntry[]>().map((e) => e.Key)).toEqual(['ix/a']);
    expect(after.index).toBeGreaterThan(a.index + 2);
    const missing = await api('GET', '/v1/kv/ix/b');
    expect(missing.index).toBe(after.index);
  });

  test('a blocking query on a prefix holding keys returns when its prefix changes, not for changes elsewhere', async () => {
    await api('PUT', '/v1/kv/bq/a', 'v');
    const { index } = await api('GET', '/v1/kv/bq/?recurse');
    const started = Date.now();
    let answered = 0;
    const waiting = api('GET', `/v1/kv/bq/?recurse&index=${index}&wait=5s`).then((r) => ((answered = Date.now()), r));
    await sleep(200);
    await api('PUT', '/v1/kv/not-bq', 'x');
    await sleep(300);
    // Still blocked after the write elsewhere: answered only after the write under the prefix below.
    const putAt = Date.now();
    await api('PUT', '/v1/kv/bq/k', 'v');
    const r = await waiting;
    expect(answered).toBeGreaterThanOrEqual(putAt);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r.index).toBeGreaterThan(index);
    expect(r.json<DirEntry[]>().map((e) => e.Key)).toEqual(['bq/a', 'bq/k']);
  });

  test('a blocking query on an empty prefix returns early on a write anywhere: 404, empty body, a higher index', async () => {
    const { status, index } = await api('GET', '/v1/kv/bqe/?recurse');
    expect(status).toBe(404);
    const started = Date.now();
    const waiting = api('GET', `/v1/kv/bqe/?recurse&index=${index}&wait=5s`);
    const keysWaiting = api('GET', `/v1/kv/bqe/?keys&index=${index}&wait=5s`);
    await sleep(200);
    await api('PUT', '/v1/kv/not-bqe', 'x');
    const [r, keys] = await Promise.all([waiting, keysWaiting]);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r).toMatchObject({ status: 404, text: '' });
    expect(r.index).toBeGreaterThan(index);
    expect(keys).toMatchObject({ status: 404, text: '', index: r.index });
  });

  test('a prefix emptied by a delete reports its tombstone index and keeps blocking through writes elsewhere', async () => {
    await api('PUT', '/v1/kv/bqt/k', 'v');
    await api('DELETE', '/v1/kv/bqt/k');
    const { status, index } = await api('GET', '/v1/kv/bqt/?recurse');
    expect(status).toBe(404);
    const started = Date.now();
    const waiting = api('GET', `/v1/kv/bqt/?recurse&index=${index}&wait=1s`);
    await sleep(200);
    await api('PUT', '/v1/kv/not-bqt', 'x');
    const r = await waiting;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(r).toMatchObject({ status: 404, index });
  });

  test('a blocking query times out after wait (plus at most wait/16) with the same index', async () => {
    await api('PUT', '/v1/kv/bt/k', 'v');
    const { index } = await api('GET', '/v1/kv/bt/k');
    const started = Date.now();
    const r = await api('GET', `/v1/kv/bt/k?index=${index}&wait=1s`);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1_000);
    expect(took).toBeLessThan(1_000 * (17 / 16) + 500);
    expect(r).toMatchObject({ status: 200, index });
  });

  test('an index below the current one answers at once; one above it waits out the wait and comes back lower', async () => {
    await api('PUT', '/v1/kv/bl/k', 'v');
    const { index } = await api('GET', '/v1/kv/bl/k');
    let started = Date.now();
    expect((await api('GET', `/v1/kv/bl/k?index=${index - 1}&wait=5s`)).index).toBe(index);
    expect(Date.now() - started).toBeLessThan(1_000);
    started = Date.now();
    const ahead = await api('GET', `/v1/kv/bl/k?index=${index + 1000}&wait=500ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(ahead.index).toBe(index);
    expect((await api('GET', '/v1/kv/bl/k?index=x')).status).toBe(400);
    expect((await api('GET', '/v1/kv/bl/k?index=1&wait=5')).text).toBe('Invalid wait time');
  });

  test('txn: results carry the new ModifyIndex; a failure is a 409 listing every failed op, and nothing is applied', async () => {
    const ok = await api('PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 't/a', Value: b64('1') } },
      { KV: { Verb: 'cas', Key: 't/b', Value: b64('2'), Index: 0 } },
    ]);
    const reply = ok.json<TxnReply>();
    expect(ok.status).toBe(200);
    expect(reply.Errors).toBeNull();
    const idx = reply.Results![0].KV.ModifyIndex;
    expect(reply.Results!.map((r) => [r.KV.Key, r.KV.ModifyIndex, r.KV.Value])).toEqual([['t/a', idx, null], ['t/b', idx, null]]);
    const bad = await api('PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 't/c', Value: b64('3') } },
      { KV: { Verb: 'check-not-exists', Key: 't/a' } },
      { KV: { Verb: 'check-index', Key: 't/b', Index: idx + 1 } },
      { KV: { Verb: 'delete-cas', Key: 't/missing', Index: 5 } },
    ]);
    expect(bad.status).toBe(409);
    expect(bad.json()).toEqual({
      Results: null,
      Errors: [
        { OpIndex: 1, What: 'key "t/a" exists' },
        { OpIndex: 2, What: `failed index check for key "t/b", current modify index ${idx} != ${idx + 1}` },
      ],
    });
    expect((await api('GET', '/v1/kv/t/c')).status).toBe(404);
    const read = await api('PUT', '/v1/txn', [{ KV: { Verb: 'get', Key: 't/a' } }]);
    expect(read.json<TxnReply>().Results![0].KV.Value).toBe(b64('1'));
  });

  test('txn: more than 64 operations is a 413; a body that does not parse is a 400', async () => {
    const ops = Array.from({ length: 65 }, (_, i) => ({ KV: { Verb: 'set', Key: `big/${i}`, Value: b64('x') } }));
    expect(await api('PUT', '/v1/txn', ops)).toMatchObject({ status: 413, text: 'Transaction contains too many operations (65 > 64)' });
    expect((await api('PUT', '/v1/txn', ops.slice(0, 64))).status).toBe(200);
    expect((await api('PUT', '/v1/txn', '{nope')).status).toBe(400);
  });

  test('sessions: create, info (LockDelay in ns), renew, destroy (idempotent); unknown renew is a 404', async () => {
    const { ID } = (await api('PUT', '/v1/session/create', { TTL: '30s', Behavior: 'delete', LockDelay: '2s', Checks: [] })).json<{ ID: string }>();
    expect(ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const info = await api('GET', `/v1/session/info/${ID}`);
    expect(info.json()).toEqual([expect.objectContaining({ ID, TTL: '30s', Behavior: 'delete', LockDelay: 2e9, NodeChecks: null })]);
    expect(info.index).toBeGreaterThan(1);
    expect((await api('PUT', `/v1/session/renew/${ID}`)).json()).toEqual([expect.objectContaining({ ID })]);
    expect((await api('PUT', `/v1/session/destroy/${ID}`)).text).toBe('true');
    expect((await api('PUT', `/v1/session/destroy/${ID}`)).text).toBe('true');
    expect((await api('GET', `/v1/session/info/${ID}`)).json()).toEqual([]);
    expect(await api('PUT', `/v1/session/renew/${ID}`)).toMatchObject({ status: 404, text: `Session id '${ID}' not found` });
    expect((await api('PUT', '/v1/session/create', { TTL: '0.5s' })).status).toBe(500);
    expect((await api('PUT', '/v1/session/create', { Behavior: 'drop' })).status).toBe(500);
  });

  test('acquire and release: LockIndex, holders, an invalid session, and plain writes that ignore locks', async () => {
    const session = async (): Promise<string> => (await api('PUT', '/v1/session/create', { LockDelay: '0s' })).json<{ ID: string }>().ID;
    const [s1, s2] = [await session(), await session()];
    expect((await api('PUT', `/v1/kv/lk?acquire=${s1}`, 'a')).text).toBe('true');
    expect(await entry('lk')).toMatchObject({ LockIndex: 1, Session: s1 });
    expect((await api('PUT', `/v1/kv/lk?acquire=${s2}`, 'b')).text).toBe('false');
    expect(await api('PUT', '/v1/kv/lk?acquire=00000000-0000-0000-0000-000000000000', 'c')).toMatchObject({ status: 500, text: 'invalid session "00000000-0000-0000-0000-000000000000"' });
    await api('PUT', '/v1/kv/lk', 'plain');
    expect(await entry('lk')).toMatchObject({ Session: s1, LockIndex: 0 });
    expect((await api('PUT', `/v1/kv/lk?release=${s1}`, 'r')).text).toBe('true');
    expect((await entry('lk')).Session).toBeUndefined();
    expect((await api('PUT', `/v1/kv/lk?acquire=${s2}`, 'b')).text).toBe('true');
  });

  test('an expired TTL session (at 2 x TTL) deletes the keys it held; a renewed one lives on', async () => {
    const create = async (): Promise<string> =>
      (await api('PUT', '/v1/session/create', { TTL: '1s', Behavior: 'delete', LockDelay: '0s', Checks: [] })).json<{ ID: string }>().ID;
    const [dying, renewed] = [await create(), await create()];
    await api('PUT', `/v1/kv/ttl/dying?acquire=${dying}`, 'x');
    await api('PUT', `/v1/kv/ttl/renewed?acquire=${renewed}`, 'y');
    const { index } = await api('GET', '/v1/kv/ttl/?recurse');
    const started = Date.now();
    const renewing = setInterval(() => void api('PUT', `/v1/session/renew/${renewed}`), 300);
    const woke = await api('GET', `/v1/kv/ttl/?recurse&index=${index}&wait=10s`).finally(() => clearInterval(renewing));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(woke.json<DirEntry[]>().map((e) => e.Key)).toEqual(['ttl/renewed']);
    expect((await api('PUT', `/v1/session/renew/${dying}`)).status).toBe(404);
  });

  test('invalidating a release session frees its keys and starts lock-delay; an explicit release does not', async () => {
    const { ID: s1 } = (await api('PUT', '/v1/session/create', { LockDelay: '1s' })).json<{ ID: string }>();
    const { ID: s2 } = (await api('PUT', '/v1/session/create', { LockDelay: '0s' })).json<{ ID: string }>();
    await api('PUT', `/v1/kv/ld?acquire=${s1}`, 'v');
    const held = await entry('ld');
    await api('PUT', `/v1/session/destroy/${s1}`);
    const freed = await entry('ld');
    expect(freed).toMatchObject({ Value: b64('v'), LockIndex: held.LockIndex });
    expect(freed.Session).toBeUndefined();
    expect(freed.ModifyIndex).toBeGreaterThan(held.ModifyIndex);
    expect((await api('PUT', `/v1/kv/ld?acquire=${s2}`, 'w')).text).toBe('false');
    await sleep(1_100);
    expect((await api('PUT', `/v1/kv/ld?acquire=${s2}`, 'w')).text).toBe('true');
    expect((await api('PUT', `/v1/kv/ld?release=${s2}`, 'w')).text).toBe('true');
    expect((await api('PUT', `/v1/kv/ld?acquire=${s2}`, 'w')).text).toBe('true');
  });

  test('stop refuses connections; start keeps the data and the index moves on; start with wipe begins again at 1', async () => {
    await api('PUT', '/v1/kv/keep', 'me');
    const { index } = await api('GET', '/v1/kv/keep');
    await srv.stop();
    await expect(api('GET', '/v1/kv/keep')).rejects.toThrow(/ECONNREFUSED/);
    await srv.start();
    expect((await entry('keep')).Value).toBe(b64('me'));
    await api('PUT', '/v1/kv/keep', 'more');
    expect((await entry('keep')).ModifyIndex).toBeGreaterThan(index);
    await srv.stop();
    await srv.start({ wipe: true });
    expect(await api('GET', '/v1/kv/keep')).toMatchObject({ status: 404, index: 1 });
  });

  test('pause holds requests without closing the port; resume answers them', async () => {
    await srv.pause();
    let answered = false;
    const held = api('GET', '/v1/status/leader').then((r) => {
      answered = true;
      return r;
    });
    await sleep(300);
    expect(answered).toBe(false);
    await srv.resume();
    expect((await held).json()).toBe('127.0.0.1:8300');
  });
});

describe('Consul test server with a short max_query_time', () => {
  let srv: ConsulTestServer;
  beforeAll(async () => {
    srv = await startConsulServer({ maxQueryTimeMs: 300 });
  });
  afterAll(async () => srv.close());

  test('a longer wait is cut down to max_query_time', async () => {
    const api = client(() => srv);
    const { index } = await api('GET', '/v1/kv/k');
    const started = Date.now();
    expect((await api('GET', `/v1/kv/k?index=${index}&wait=10m`)).status).toBe(404);
    expect(Date.now() - started).toBeLessThan(300 * (17 / 16) + 500);
  });
});

describe('Consul test server with an ACL token', () => {
  let srv: ConsulTestServer;
  beforeAll(async () => {
    srv = await startConsulServer({ token: 'secret' });
  });
  afterAll(async () => srv.close());

  test('the configured token is accepted; none or a wrong one is a 403; status needs none', async () => {
    expect((await client(() => srv, 'secret')('PUT', '/v1/kv/k', 'v')).text).toBe('true');
    expect(await client(() => srv)('GET', '/v1/kv/k')).toMatchObject({ status: 403, text: 'Permission denied' });
    expect(await client(() => srv, 'wrong')('GET', '/v1/kv/k')).toMatchObject({ status: 403, text: 'ACL not found' });
    expect((await client(() => srv)('GET', '/v1/kv/k?token=secret')).status).toBe(200);
    expect((await client(() => srv)('GET', '/v1/status/leader')).status).toBe(200);
  });
});
