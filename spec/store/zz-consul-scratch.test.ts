import { openConsulStore } from '../../src/store/consul.js';
import { startConsulServer } from '../../spec/support/consul-server.js';
import { put } from '../../src/store/types.js';
test('inc', async () => {
  const srv = await startConsulServer();
  const store = await openConsulStore({ host: srv.host, port: srv.port });
  let maxGet = 0, maxCommit = 0, n = 0;
  const t0 = Date.now();
  let inflight = 0, done = 0;
  const http = await import('node:http');
  const orig = http.ClientRequest.prototype.end;
  const iv = setInterval(() => { const s = (srv as any).server; s.getConnections((e: any, c: number) => console.log(Date.now() - t0, 'index', srv.state.index, 'conns', c, 'n', n)); }, 500);
  async function increment(key: string) {
    for (;;) {
      let t = Date.now();
      const entry = await store.get(key);
      if (Date.now() - t > 1000) console.log('slow get', Date.now() - t, 'at', t - t0, 'n', n);
      maxGet = Math.max(maxGet, Date.now() - t);
      const next = String(Number(entry?.value ?? '0') + 1);
      t = Date.now();
      const r = await put(store, key, next, entry?.revision ?? 0);
      maxCommit = Math.max(maxCommit, Date.now() - t); n++;
      if (r !== null) return;
    }
  }
  await Promise.all(Array.from({ length: 200 }, () => increment('c'))).finally(() => clearInterval(iv));
  console.log({ total: Date.now() - t0, maxGet, maxCommit, n });
  clearInterval(iv); await store.close(); await srv.close();
}, 120000);
