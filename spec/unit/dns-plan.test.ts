// The resolver's planner: every kind of answer, what is forwarded, refused or dropped, and hostile packets.
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import type { NameSource } from '../../src/dns/names.js';
import { type Decision, plan, type PlanInput } from '../../src/dns/plan.js';
import { ptrAddress } from '../../src/dns/reverse.js';

// Two networks: red holds demo1 and web (twice), blue holds demo3. 10.1.0.2 is on red, 10.2.0.2 on blue.
const records: Record<string, Record<string, { v4: string[]; v6: string[] }>> = {
  red: {
    demo1: { v4: ['10.1.0.2'], v6: [] },
    web: { v4: ['10.1.0.5', '10.1.0.6'], v6: ['fd00:1::5'] },
    many: { v4: Array.from({ length: 40 }, (_, i) => `10.1.1.${i + 1}`), v6: [] },
  },
  blue: { demo3: { v4: ['10.2.0.3'], v6: ['fd00:2::3'] } },
};
const queriers: Record<string, string[]> = { '10.1.0.2': ['red'], '10.2.0.2': ['blue'] };
const networkNames: Record<string, string> = { 'my.red': 'red', blue: 'blue' };
const names: NameSource = {
  networksOf: (ip) => queriers[ip],
  lookup: (name, nets) => {
    const hits = nets.map((n) => records[n]?.[name]).filter((r) => r !== undefined);
    return hits.length ? { v4: hits.flatMap((h) => h.v4), v6: hits.flatMap((h) => h.v6) } : undefined;
  },
  reverse: (ip, nets) => nets.flatMap((n) => Object.entries(records[n] ?? {})).find(([, r]) => r.v4.includes(ip) || r.v6.includes(ip))?.[0],
  networkNamed: (name, nets) => (nets.includes(networkNames[name]) ? networkNames[name] : undefined),
};
const HOST = '192.0.2.1';
const base = { names, trusted: (ip: string) => ip === HOST, transport: 'udp' as const, ttl: 5 };

const query = (q: { name: string; type?: string; klass?: string; additionals?: Packet['additionals'] }): Buffer =>
  dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: q.name, type: (q.type ?? 'A') as 'A', class: (q.klass ?? 'IN') as 'IN' }], additionals: q.additionals });
const edns = (size: number, version = 0): Packet['additionals'] => [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: version, flags: 0, flag_do: false, options: [] }];

const run = (packet: Buffer, over: Partial<PlanInput> = {}): Decision => plan({ ...base, packet, querier: '10.1.0.2', ...over });
function reply(d: Decision): DecodedPacket & { rcode?: string } {
  if (d.kind !== 'reply') throw new Error(`expected a reply, got ${JSON.stringify(d)}`);
  return dnsPacket.decode(d.reply) as DecodedPacket & { rcode?: string };
}
const data = (p: DecodedPacket): unknown[] => (p.answers ?? []).map((a) => ('data' in a ? a.data : undefined));

describe('answers for knit names', () => {
  test('A: every address of the name, the question as asked (case kept), ID echoed, short TTL, authoritative', () => {
    const p = reply(run(query({ name: 'WeB' })));
    expect(p.id).toBe(4242);
    expect(p.rcode).toBe('NOERROR');
    expect(p.flag_aa && p.flag_qr && p.flag_rd && p.flag_ra).toBe(true);
    expect(p.questions).toEqual([{ name: 'WeB', type: 'A', class: 'IN' }]);
    expect(data(p)).toEqual(['10.1.0.5', '10.1.0.6']);
    expect(p.answers?.map((a) => ('ttl' in a ? a.ttl : 0))).toEqual([5, 5]);
  });
  test('AAAA answers the IPv6 addresses; a name with none is NOERROR with no records (NODATA), not forwarded', () => {
    expect(data(reply(run(query({ name: 'web', type: 'AAAA' }))))).toEqual(['fd00:1::5']);
    const nodata = reply(run(query({ name: 'demo1', type: 'AAAA' })));
    expect(nodata.rcode).toBe('NOERROR');
    expect(nodata.answers).toEqual([]);
    expect(reply(run(query({ name: 'demo1', type: 'MX' }))).answers).toEqual([]);
  });
  test('a name of a network the asker is not on is not answered: it is forwarded (isolation)', () => {
    expect(run(query({ name: 'demo3' })).kind).toBe('forward');
    expect(data(reply(run(query({ name: 'demo3' }), { querier: '10.2.0.2' })))).toEqual(['10.2.0.3']);
  });
  test('name.<network name>, network names with dots included; another network\'s name is forwarded', () => {
    expect(data(reply(run(query({ name: 'demo1.my.red' }))))).toEqual(['10.1.0.2']);
    expect(run(query({ name: 'demo1.blue' })).kind).toBe('forward');
    const withoutNetworkNames = { ...names, networkNamed: undefined };
    expect(run(query({ name: 'demo1.my.red' }), { names: withoutNetworkNames }).kind).toBe('forward');
  });
  test('PTR for knit addresses (IPv4 and IPv6) in the asker\'s networks; others are forwarded', () => {
    expect(data(reply(run(query({ name: '2.0.1.10.in-addr.arpa', type: 'PTR' }))))).toEqual(['demo1']);
    const v6 = '5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa';
    expect(data(reply(run(query({ name: v6, type: 'PTR' }))))).toEqual(['web']);
    expect(run(query({ name: '3.0.2.10.in-addr.arpa', type: 'PTR' })).kind).toBe('forward');
    expect(run(query({ name: '1.0.168.192.in-addr.arpa', type: 'PTR' })).kind).toBe('forward');
  });
  test('ptrAddress reads exactly one address per name', () => {
    expect(ptrAddress('4.3.2.1.in-addr.arpa')).toBe('1.2.3.4');
    expect(ptrAddress('3.2.1.in-addr.arpa')).toBeUndefined();
    expect(ptrAddress('256.3.2.1.in-addr.arpa')).toBeUndefined();
    expect(ptrAddress('01.3.2.1.in-addr.arpa')).toBeUndefined();
    expect(ptrAddress('1.ip6.arpa')).toBeUndefined();
  });
});

describe('forwarding', () => {
  test('unknown names are forwarded (NXDOMAIN is the upstream\'s to say), with the parsed query', () => {
    const d = run(query({ name: 'ext.test' }));
    expect(d).toMatchObject({ kind: 'forward', query: { id: 4242, question: { name: 'ext.test', type: 'A' } } });
  });
  test('the host and trusted sources get forwarding only, even for knit names', () => {
    expect(run(query({ name: 'demo1' }), { querier: HOST }).kind).toBe('forward');
  });
  test('a container only on internal networks gets knit names and REFUSED for the rest (nothing external)', () => {
    const internal = { ...names, external: (ip: string) => ip !== '10.1.0.2' };
    expect(data(reply(run(query({ name: 'demo1' }), { names: internal })))).toEqual(['10.1.0.2']);
    expect(reply(run(query({ name: 'ext.test' }), { names: internal })).rcode).toBe('REFUSED');
    expect(run(query({ name: 'ext.test' }), { names: internal, querier: '10.2.0.2' }).kind).toBe('forward');
    expect(run(query({ name: 'ext.test' }), { names: internal, querier: HOST }).kind).toBe('forward');
  });
  test('a name whose label holds a dot is not taken for a knit name', () => {
    const packet = Buffer.from(query({ name: 'demo1xmy' }));
    packet[12 + 1 + 5] = '.'.charCodeAt(0); // the label "demo1xmy" now reads "demo1.my"
    expect(run(packet).kind).toBe('forward');
  });
});

describe('sizes: TC and EDNS', () => {
  test('over 512 bytes without EDNS: no records and TC, so the client asks over TCP', () => {
    const p = reply(run(query({ name: 'many' })));
    expect(p.flag_tc).toBe(true);
    expect(p.answers).toEqual([]);
  });
  test('with EDNS the client\'s size counts (capped at 1232), and over TCP there is room for everything', () => {
    const big = run(query({ name: 'many', additionals: edns(4096) }));
    expect(reply(big).flag_tc).toBe(false);
    expect(reply(big).answers).toHaveLength(40);
    expect(reply(big).additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232 });
    expect(reply(run(query({ name: 'many', additionals: edns(600) }))).flag_tc).toBe(true);
    expect(reply(run(query({ name: 'many' }), { transport: 'tcp' })).answers).toHaveLength(40);
  });
  test('an EDNS version above 0 gets BADVERS', () => {
    const p = reply(run(query({ name: 'demo1', additionals: edns(1232, 1) })));
    expect(p.additionals?.[0]).toMatchObject({ type: 'OPT', extendedRcode: 1 });
    expect(p.answers).toEqual([]);
  });
});

describe('refused sources', () => {
  test('a source that is neither a knit container nor trusted gets REFUSED: header and its question, never more bytes than it sent', () => {
    const packet = query({ name: 'demo1', additionals: edns(4096) });
    const d = run(packet, { querier: '203.0.113.9' });
    const p = reply(d);
    expect(p.rcode).toBe('REFUSED');
    expect(p.answers).toEqual([]);
    expect(p.questions).toEqual([{ name: 'demo1', type: 'A', class: 'IN' }]);
    expect(d.kind === 'reply' && d.reply.length).toBeLessThan(packet.length);
  });
  test('malformed packets from such a source are dropped, not answered', () => {
    expect(run(Buffer.alloc(20), { querier: '203.0.113.9' }).kind).toBe('drop');
  });
});

describe('malformed and unusual packets', () => {
  const good = query({ name: 'demo1' });
  const patched = (at: number, bytes: number[], from = good): Buffer => {
    const b = Buffer.from(from);
    bytes.forEach((v, i) => (b[at + i] = v));
    return b;
  };
  test('shorter than a header, or a response (QR=1): dropped', () => {
    expect(run(good.subarray(0, 11)).kind).toBe('drop');
    expect(run(patched(2, [0x81, 0x00])).kind).toBe('drop');
  });
  test('opcode other than QUERY: NOTIMP; not one question: FORMERR; class other than IN: NOTIMP', () => {
    expect(reply(run(patched(2, [0x10, 0x00]))).rcode).toBe('NOTIMP');
    expect(reply(run(patched(4, [0, 2])))).toMatchObject({ rcode: 'FORMERR', questions: [] });
    expect(reply(run(patched(4, [0, 0]))).rcode).toBe('FORMERR');
    expect(reply(run(query({ name: 'demo1', klass: 'CH' }))).rcode).toBe('NOTIMP');
  });
  test('truncated anywhere: FORMERR or drop, never an answer', () => {
    for (let len = 0; len < good.length; len++) expect(['drop', 'reply']).toContain(run(good.subarray(0, len)).kind);
    for (let len = 12; len < good.length; len++) expect(reply(run(good.subarray(0, len))).rcode).toBe('FORMERR');
  });
  test('a compression pointer loop, a forward pointer and a pointer to itself: FORMERR', () => {
    const loop = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    const forward = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 1, 0x61, 0, 0, 1, 0, 1]);
    const mutual = Buffer.from([0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1, 0xc0, 21, 0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    for (const p of [loop, forward, mutual]) expect(reply(run(p)).rcode).toBe('FORMERR');
  });
  test('record counts the bytes cannot hold: FORMERR without decoding', () => {
    expect(reply(run(patched(6, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).rcode).toBe('FORMERR');
  });
  test('a random corpus never throws, never answers a response, and error replies are never longer than the query', () => {
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const samples = [good, query({ name: 'web', type: 'AAAA', additionals: edns(1232) }), query({ name: '2.0.1.10.in-addr.arpa', type: 'PTR' })];
    let replies = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(samples[i % samples.length]);
      for (let m = rand(4) + 1; m > 0; m--) b[rand(b.length)] = rand(256);
      const packet = i % 5 === 0 ? b.subarray(0, rand(b.length + 1)) : i % 7 === 0 ? Buffer.from(Array.from({ length: rand(300) }, () => rand(256))) : b;
      const d = run(packet);
      if (d.kind !== 'reply') continue;
      replies++;
      expect(packet.readUInt16BE(2) & 0x8000).toBe(0);
      if (d.outcome !== 'answered') expect(d.reply.length).toBeLessThanOrEqual(packet.length);
    }
    expect(replies).toBeGreaterThan(1000);
  });
});
