// The forwarder on loopback: IDs mapped back, replies accepted only from where the query went and for its
// question, a bounded number of forwards at once, and SERVFAIL when the time is up.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { Forwarder } from '../../src/dns/forward.js';
import { parseQuery, type Query } from '../../src/dns/wire.js';

const UPSTREAM = '127.0.0.1';
let upstream: dgram.Socket;
let spoofer: dgram.Socket;
let port = 0;
/** What the upstream does with each query it receives. */
let behave: (msg: Buffer, from: dgram.RemoteInfo) => void = () => undefined;

beforeAll(async () => {
  upstream = dgram.createSocket('udp4');
  spoofer = dgram.createSocket('udp4');
  upstream.on('message', (m, r) => behave(m, r));
  await new Promise<void>((r) => upstream.bind(0, UPSTREAM, () => r()));
  await new Promise<void>((r) => spoofer.bind(0, UPSTREAM, () => r()));
  port = upstream.address().port;
});

afterAll(() => {
  upstream.close();
  spoofer.close();
});

const forwarder = (maxInflight = 8) => new Forwarder({ upstreams: () => [UPSTREAM], port, timeoutMs: 400, retryMs: 150, maxInflight });
function query(name: string, id = 4242): { packet: Buffer; query: Query } {
  const packet = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });
  const parsed = parseQuery(packet);
  if (!parsed.ok) throw new Error(parsed.why);
  return { packet, query: parsed.query };
}
const answer = (m: Buffer, name = dnsPacket.decode(m).questions?.[0].name ?? '') =>
  dnsPacket.encode({ type: 'response', id: m.readUInt16BE(0), flags: 0x8180, questions: [{ name, type: 'A', class: 'IN' }], answers: [{ type: 'A', name, ttl: 60, data: '192.0.2.7' }] });

test('the upstream\'s answer comes back with the client\'s ID', async () => {
  const seen: number[] = [];
  behave = (m, r) => {
    seen.push(m.readUInt16BE(0));
    upstream.send(answer(m), r.port, r.address);
  };
  const f = forwarder();
  const q = query('ext.test', 7);
  const reply = dnsPacket.decode((await f.forward(q.packet, q.query, 'udp')) as Buffer);
  expect(reply).toMatchObject({ id: 7, rcode: 'NOERROR', answers: [{ data: '192.0.2.7' }] });
  expect(seen).toHaveLength(1);
  f.close();
});

test('a reply from another port, or for another question, is ignored: SERVFAIL when the time is up', async () => {
  behave = (m, r) => {
    spoofer.send(answer(m), r.port, r.address); // right ID and question, wrong source
    upstream.send(answer(m, 'evil.test'), r.port, r.address); // right source and ID, another question
  };
  const f = forwarder();
  const q = query('ext.test');
  const started = Date.now();
  const reply = dnsPacket.decode((await f.forward(q.packet, q.query, 'udp')) as Buffer);
  expect(reply).toMatchObject({ id: 4242, rcode: 'SERVFAIL', answers: [] });
  expect(Date.now() - started).toBeGreaterThanOrEqual(350);
  expect(f.inflight).toBe(0);
  f.close();
});

test('a silent upstream is asked three times (0, 150, 300 ms here), then SERVFAIL at 400 ms', async () => {
  const at: number[] = [];
  const started = Date.now();
  behave = () => at.push(Date.now() - started);
  const f = forwarder();
  const q = query('ext.test');
  expect(dnsPacket.decode((await f.forward(q.packet, q.query, 'udp')) as Buffer)).toMatchObject({ rcode: 'SERVFAIL' });
  expect(at).toHaveLength(3);
  expect(at[2]).toBeGreaterThanOrEqual(250);
  f.close();
});

test('forwards beyond the bound are dropped at once; the bound frees up when they settle', async () => {
  behave = () => undefined;
  const f = forwarder(2);
  const q = query('ext.test');
  const first = f.forward(q.packet, q.query, 'udp');
  const second = f.forward(q.packet, q.query, 'udp');
  expect(f.inflight).toBe(2);
  expect(f.forward(q.packet, q.query, 'udp')).toBeUndefined();
  await Promise.all([first, second]);
  expect(f.inflight).toBe(0);
  expect(f.forward(q.packet, q.query, 'udp')).toBeInstanceOf(Promise);
  f.close();
});

test('no upstream at all: SERVFAIL at once', async () => {
  const f = new Forwarder({ upstreams: () => [], port, timeoutMs: 400, retryMs: 150, maxInflight: 8 });
  const q = query('ext.test');
  expect(dnsPacket.decode((await f.forward(q.packet, q.query, 'udp')) as Buffer)).toMatchObject({ rcode: 'SERVFAIL' });
  f.close();
});
