// Sends a seeded corpus of hostile DNS packets at the resolver from inside a client namespace, and after
// every `checkEvery` of them asks one good question from a knit container's address; prints one JSON line.
// Run as `ip netns exec NS node dns-hostile.mjs JSON`. Every wait is bounded.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const spec = JSON.parse(process.argv[2]);
let seed = spec.seed;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
const pick = (list) => list[rand(list.length)];

const query = (name, type = 'A', extra = {}) => dnsPacket.encode({ type: 'query', id: rand(0x10000), flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...extra });
const edns = (size, version = 0) => ({ additionals: [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: version, flags: 0, flag_do: false, options: [] }] });
const header = (flags, qd, an, ns, ar) => { const b = Buffer.alloc(12); b.writeUInt16BE(rand(0x10000), 0); b.writeUInt16BE(flags, 2); b.writeUInt16BE(qd, 4); b.writeUInt16BE(an, 6); b.writeUInt16BE(ns, 8); b.writeUInt16BE(ar, 10); return b; };
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => rand(256)));

/** A well-formed query whose name says who sent it, so the upstream's log shows whether it was forwarded. */
const tagged = (source, i) => query(`${spec.strangers.includes(source) ? 'stranger' : 'knit'}-${i}.ext.test`, pick(['A', 'AAAA', 'TXT', 'MX']));

const KINDS = {
  mutated: () => { const b = Buffer.from(pick([query('demo1'), query('web', 'AAAA', edns(1232)), query('2.0.53.10.in-addr.arpa', 'PTR')])); for (let m = rand(6) + 1; m > 0; m--) b[rand(b.length)] = rand(256); return b; },
  truncated: () => { const b = pick([query('demo1'), query('some.long.name.ext.test', 'AAAA', edns(4096))]); return b.subarray(0, rand(b.length)); },
  pointerLoop: () => Buffer.concat([header(0x0100, 1, 0, 0, 0), pick([Buffer.from([0xc0, 12]), Buffer.from([1, 0x61, 0xc0, 12]), Buffer.from([0xc0, 14, 0xc0, 12]), Buffer.from([0xc0, 0xff])]), Buffer.from([0, 1, 0, 1])]),
  random: () => bytes(rand(600)),
  response: () => { const b = Buffer.from(query('demo1')); b[2] |= 0x80; return b; },
  manyQuestions: () => Buffer.concat([header(0x0100, rand(2) ? 2 : 0xffff, 0, 0, 0), query('demo1').subarray(12), query('web').subarray(12)]),
  hugeCounts: () => Buffer.concat([header(0x0100, 1, 0xffff, 0xffff, 0xffff), query('demo1').subarray(12)]),
  opcode: () => { const b = Buffer.from(query('demo1')); b[2] = (b[2] & 0x87) | (pick([1, 2, 3, 4, 5, 15]) << 3); return b; },
  klass: () => { const b = Buffer.from(query('demo1')); b.writeUInt16BE(pick([0, 3, 4, 254, 255, 0x7fff, 0xffff]), b.length - 2); return b; },
  oversized: () => Buffer.concat([query('demo1'), bytes(rand(8000) + 600)]),
  badEdns: () => query('demo1', 'A', pick([edns(0), edns(65535), edns(512, 7), { additionals: [edns(1232).additionals[0], edns(1232).additionals[0]] }])),
  labelAbuse: () => Buffer.concat([header(0x0100, 1, 0, 0, 0), Buffer.from(Array.from({ length: 130 }, () => [63, ...bytes(63)]).flat().slice(0, 400)), Buffer.from([0, 0, 1, 0, 1])]),
  forwardable: null, // filled per source below: a well-formed external query
};
const names = Object.keys(KINDS);

async function socketFor(source) {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, source, r));
  s.on('message', () => undefined);
  s.on('error', () => undefined);
  return s;
}

/** One good question from the checker's address; its answer must be exact, within 2 s. */
async function check(socket) {
  const started = performance.now();
  const id = rand(0x10000);
  const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'demo1', type: 'A', class: 'IN' }] });
  return new Promise((resolve) => {
    const done = (ok, why) => { clearTimeout(timer); socket.off('message', on); resolve({ ok, why, ms: Math.round(performance.now() - started) }); };
    const on = (m) => { try { const p = dnsPacket.decode(m); if (p.id === id) done(p.answers?.[0]?.data === spec.expect, JSON.stringify(p.answers)); } catch { /* not ours */ } };
    const timer = setTimeout(() => done(false, 'timeout'), 2000);
    socket.on('message', on);
    socket.send(q, 53, spec.server);
  });
}

/** TCP abuse: lying length prefixes, half messages, garbage, and more connections than one source may hold. */
async function tcpAbuse(sources) {
  const sockets = [];
  for (let i = 0; i < spec.tcpConnections; i++) {
    const s = net.connect({ host: spec.server, port: 53, localAddress: pick(sources) });
    s.on('error', () => undefined);
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(pick([0, 1, 11, 300, 65535]));
      s.write(Buffer.concat([len, pick([bytes(rand(200)), KINDS.pointerLoop(), query('demo1').subarray(0, 5)])]));
    });
    sockets.push(s);
  }
  await new Promise((r) => setTimeout(r, 500));
  sockets.forEach((s) => s.destroy());
}

const sources = [...spec.knit, ...spec.strangers];
const sockets = new Map();
for (const s of [...sources, spec.checker]) sockets.set(s, await socketFor(s));
const counts = Object.fromEntries(names.map((n) => [n, 0]));
const checks = [];
let sent = 0;
for (let i = 0; i < spec.count; i++) {
  const source = pick(sources);
  const kind = pick(names);
  const packet = kind === 'forwardable' ? tagged(source, i) : KINDS[kind]();
  counts[kind]++;
  sockets.get(source).send(packet, 53, spec.server);
  sent++;
  if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  if ((i + 1) % spec.checkEvery === 0) checks.push(await check(sockets.get(spec.checker)));
}
// A flood from one stranger, then from every source at once: the rate limits, not the process, give way.
const flood = query('flood.ext.test');
for (let i = 0; i < spec.flood; i++) {
  sockets.get(spec.strangers[0]).send(flood, 53, spec.server);
  const from = pick(sources);
  sockets.get(from).send(tagged(from, spec.count + i), 53, spec.server);
  if (i % 100 === 99) await new Promise((r) => setImmediate(r));
}
sent += 2 * spec.flood;
checks.push(await check(sockets.get(spec.checker)));
await tcpAbuse(sources);
checks.push(await check(sockets.get(spec.checker)));
for (const s of sockets.values()) s.close();
process.stdout.write(`${JSON.stringify({ sent, counts, checks })}\n`);
process.exit(0);
