// A DNS client run inside a test namespace (`ip netns exec NS node dns-client.mjs JSON`); prints one JSON line.
// Modes: "udp" asks each query in turn on one connected socket (so ICMP errors show as ECONNREFUSED);
// "tcp" sends every query on one connection at once and reads the replies; "load" keeps `clients` sockets
// (each from its own source address when `sources` is given) asking `name` for `seconds` and reports rates;
// "hold" opens idle TCP connections and reports how many the server kept and when it closed them.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const spec = JSON.parse(process.argv[2]);
const port = spec.port ?? 53;
const timeoutMs = spec.timeoutMs ?? 6000;

function encode(q, id) {
  const additionals = q.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: q.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: q.name, type: q.type ?? 'A', class: 'IN' }], additionals });
}

function summary(buf, started) {
  const p = dnsPacket.decode(buf);
  return { id: p.id, rcode: p.rcode, aa: p.flag_aa, tc: p.flag_tc, answers: (p.answers ?? []).map((a) => ({ type: a.type, ttl: a.ttl, data: a.data })), ms: Math.round(performance.now() - started) };
}

async function udp() {
  const socket = dgram.createSocket('udp4');
  if (spec.source) await new Promise((r) => socket.bind(0, spec.source, r));
  await new Promise((r) => socket.connect(port, spec.server, r));
  const out = [];
  for (const [i, q] of spec.queries.entries()) {
    const started = performance.now();
    out.push(await new Promise((resolve) => {
      const done = (v) => { clearTimeout(timer); socket.off('message', onMessage); socket.off('error', onError); resolve(v); };
      const onMessage = (m) => done(summary(m, started));
      const onError = (e) => done({ error: e.code ?? e.message, ms: Math.round(performance.now() - started) });
      const timer = setTimeout(() => done({ error: 'timeout', ms: Math.round(performance.now() - started) }), timeoutMs);
      socket.on('message', onMessage);
      socket.on('error', onError);
      socket.send(encode(q, 1000 + i));
    }));
  }
  socket.close();
  return out;
}

async function tcp() {
  const started = performance.now();
  const socket = net.connect({ host: spec.server, port, localAddress: spec.source });
  const replies = [];
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const done = (extra) => { clearTimeout(timer); socket.destroy(); resolve(extra ? [...replies, extra] : replies); };
    const timer = setTimeout(() => done({ error: 'timeout' }), timeoutMs);
    socket.on('error', (e) => done({ error: e.code ?? e.message }));
    socket.on('connect', () => socket.write(Buffer.concat(spec.queries.map((q, i) => dnsPacket.streamEncode(dnsPacket.decode(encode(q, 2000 + i)))))));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      while (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) {
        replies.push(summary(data.subarray(2, 2 + data.readUInt16BE(0)), started));
        data = data.subarray(2 + data.readUInt16BE(0));
      }
      if (replies.length === spec.queries.length) done();
    });
  });
}

/** Each client keeps one query outstanding (a new one as soon as its answer comes), like a busy application. */
async function load() {
  const stopAt = performance.now() + spec.seconds * 1000;
  const times = [];
  let lost = 0;
  let wrong = 0;
  const sources = spec.sources ?? [undefined];
  const clients = await Promise.all(Array.from({ length: spec.clients }, async (_, c) => {
    const socket = dgram.createSocket('udp4');
    await new Promise((r) => socket.bind(0, sources[c % sources.length], r));
    await new Promise((r) => socket.connect(port, spec.server, r));
    return socket;
  }));
  await Promise.all(clients.map((socket, c) => new Promise((resolve) => {
    let id = c * 4096;
    let sent = 0;
    let timer;
    const ask = () => {
      if (performance.now() >= stopAt) return resolve();
      id = (id + 1) & 0xffff;
      sent = performance.now();
      socket.send(encode({ name: spec.name, type: 'A' }, id));
      clearTimeout(timer);
      timer = setTimeout(() => { lost++; ask(); }, 1000);
    };
    // An answer counts when it is one: NOERROR with at least one record (anything else is counted as wrong).
    socket.on('message', (m) => {
      if (m.length < 12 || m.readUInt16BE(0) !== id) return;
      if ((m[3] & 0xf) !== 0 || m.readUInt16BE(6) === 0) wrong++;
      else times.push(performance.now() - sent);
      ask();
    });
    socket.on('error', () => undefined);
    ask();
  })));
  clients.forEach((s) => s.close());
  times.sort((a, b) => a - b);
  const at = (q) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))] * 1000) / 1000;
  return { answers: times.length, lost, wrong, perSecond: Math.round(times.length / spec.seconds), p50ms: at(0.5), p99ms: at(0.99) };
}

/** Opens `connections` TCP connections and sends nothing: how many are still open after 500 ms, and when the last one closed. */
async function hold() {
  const started = performance.now();
  const closedAt = [];
  const sockets = Array.from({ length: spec.connections }, () => {
    const s = net.connect({ host: spec.server, port, localAddress: spec.source });
    s.on('error', () => undefined);
    s.on('close', () => closedAt.push(performance.now() - started));
    return s;
  });
  await new Promise((r) => setTimeout(r, 500));
  const openAfter500ms = spec.connections - closedAt.length;
  const deadline = performance.now() + timeoutMs;
  while (closedAt.length < spec.connections && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  sockets.forEach((s) => s.destroy());
  return { openAfter500ms, allClosed: closedAt.length === spec.connections, lastClosedMs: Math.round(Math.max(...closedAt)) };
}

const modes = { udp, tcp, load, hold };
process.stdout.write(`${JSON.stringify(await modes[spec.mode ?? 'udp']())}\n`);
process.exit(0);
