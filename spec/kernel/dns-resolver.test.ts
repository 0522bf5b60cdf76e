// knit's resolver against the real kernel: its address on lo (put there by knit's datapath code), "containers"
// in namespaces on a bridge (one with a default route, one with only a /32 route to the resolver, one that is
// no knit container), and real upstream servers (dnsmasq) in a namespace behind the host.
import { Kernel } from '../../src/datapath/kernel.js';
import { ensureDnsAddress, KNIT_LABEL } from '../../src/datapath/dns-address.js';
import { DNS_ADDRESS, DnsBed, GATEWAY } from '../support/dns-bed.js';
import { run } from '../support/proc.js';
import { assertThrowawayNetns } from './guard.js';

assertThrowawayNetns();

interface Reply { id?: number; rcode?: string; aa?: boolean; tc?: boolean; answers?: Array<{ type: string; ttl: number; data: unknown }>; ms: number; error?: string }

const kernel = new Kernel();
const UP = '10.54.0.2';
const REFUSING_UP = '10.54.0.3';
const many = Array.from({ length: 40 }, (_, i) => `10.53.1.${i + 1}`);
let bed: DnsBed;
let c1: string; // on network red, default route
let c2: string; // on red too, internal: only a /32 route to the resolver
let c3: string; // on network blue
let stranger: string; // on the bridge, but no knit container

const ask = (ns: string, queries: object[], extra: object = {}): Promise<Reply[]> => bed.ask<Reply[]>(ns, { mode: 'udp', queries, ...extra });
const one = async (ns: string, query: object, extra: object = {}): Promise<Reply> => (await ask(ns, [query], extra))[0];
const data = (r: Reply): unknown[] => (r.answers ?? []).map((a) => a.data);
const loAddrs = async () => (JSON.parse((await run(['ip', '-j', 'addr', 'show', 'dev', 'lo'])).stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number; label?: string }> }>)[0].addr_info;

beforeAll(async () => {
  // The kernel project shares one namespace: a daemon test's knit put its resolver address on lo and left it there
  // (on purpose, see docs/dns.md), so start from a lo without it.
  await run(['ip', 'addr', 'del', `${DNS_ADDRESS}/32`, 'dev', 'lo'], { reject: false });
  bed = await DnsBed.create({ prefix: 'kntd', ownHost: false, address: false });
  c1 = await bed.container({ ips: ['10.53.0.2'], route: 'default' });
  c2 = await bed.container({ ips: ['10.53.0.3'], route: 'resolver' });
  c3 = await bed.container({ ips: ['10.53.0.4'], route: 'default' });
  stranger = await bed.container({ ips: ['10.53.0.9'], route: 'default' });
  await bed.upstreams([{ ip: UP, addresses: ['/ext.test/192.0.2.7', '/nx.test/'] }, { ip: REFUSING_UP, addresses: [] }]);
  await bed.setUpstreams([UP]);
});

afterAll(async () => {
  await bed?.dispose();
  await run(['ip', 'addr', 'del', '169.254.99.99/32', 'dev', 'lo'], { reject: false });
});

describe('the address', () => {
  test('knit puts it on lo as a /32 labelled as its own, once', async () => {
    expect(await ensureDnsAddress({ kernel, address: DNS_ADDRESS })).toEqual({ added: true, ours: true });
    expect(await loAddrs()).toContainEqual(expect.objectContaining({ local: DNS_ADDRESS, prefixlen: 32, label: KNIT_LABEL }));
    expect(await ensureDnsAddress({ kernel, address: DNS_ADDRESS })).toEqual({ added: false, ours: true });
    expect((await loAddrs()).filter((a) => a.local === DNS_ADDRESS)).toHaveLength(1);
  });
});

describe('answers', () => {
  beforeAll(async () => {
    await bed.startResolver({
      queriers: { '10.53.0.2': ['red'], '10.53.0.3': ['red'], '10.53.0.4': ['blue'] },
      records: {
        red: { demo1: { v4: ['10.53.0.2'] }, demo2: { v4: ['10.53.0.3'] }, web: { v4: ['10.53.0.2', '10.53.0.3'], v6: ['fd53::3'] }, many: { v4: many } },
        blue: { demo4: { v4: ['10.53.0.4'] } },
      },
      internal: ['10.53.0.3'],
      tuning: { tcp: { idleMs: 1500, maxPerSource: 8 } },
    });
  });

  test('a container\'s names: A, every address of an alias, AAAA, NODATA for a missing family, PTR', async () => {
    const [demo2, web, web6, demo1v6, ptr] = await ask(c1, [
      { name: 'demo2' }, { name: 'web' }, { name: 'web', type: 'AAAA' }, { name: 'demo1', type: 'AAAA' }, { name: '3.0.53.10.in-addr.arpa', type: 'PTR' }]);
    expect(demo2).toMatchObject({ rcode: 'NOERROR', aa: true, answers: [{ type: 'A', ttl: 5, data: '10.53.0.3' }] });
    expect(data(web).sort()).toEqual(['10.53.0.2', '10.53.0.3']);
    expect(data(web6)).toEqual(['fd53::3']);
    expect(demo1v6).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(data(ptr)).toEqual(['demo2']);
  });

  test('busybox nslookup in a container resolves a knit name', async () => {
    const r = await run(['ip', 'netns', 'exec', c1, 'busybox', 'nslookup', 'demo2', DNS_ADDRESS]);
    expect(r.stdout).toMatch(/Address:\s+10\.53\.0\.3/);
  });

  test('names of a network the asker is not on are not answered (they go upstream); the asker on it gets them', async () => {
    const before = (await bed.upstreamQueries(0)).length;
    const fromRed = await one(c1, { name: 'demo4' });
    expect(data(fromRed)).toEqual([]);
    expect(fromRed.rcode).toBe('SERVFAIL'); // dnsmasq refuses names it has no answer for
    expect((await bed.upstreamQueries(0)).slice(before).join('\n')).toMatch(/query\[A\] demo4 from/);
    expect(data(await one(c3, { name: 'demo4' }))).toEqual(['10.53.0.4']);
  });

  test('external names are forwarded from the host (knit\'s namespace), answers and NXDOMAIN passed back with the client\'s ID', async () => {
    const [ext, nx] = await ask(c1, [{ name: 'ext.test' }, { name: 'nx.test' }]);
    expect(ext).toMatchObject({ id: 1000, rcode: 'NOERROR', answers: [{ type: 'A', data: '192.0.2.7' }] });
    expect(nx).toMatchObject({ id: 1001, rcode: 'NXDOMAIN', answers: [] });
    expect((await bed.upstreamQueries(0)).join('\n')).toMatch(/query\[A\] ext\.test from 10\.54\.0\.1\b/);
  });

  test('the host itself may use the resolver for external names', async () => {
    const r = await bed.ask<Reply[]>(c1, { mode: 'udp', queries: [{ name: 'ext.test' }] }); // positive control from a container
    expect(data(r[0])).toEqual(['192.0.2.7']);
    const fromHost = JSON.parse((await run(['node', 'spec/support/dns-client.mjs', JSON.stringify({ server: DNS_ADDRESS, queries: [{ name: 'ext.test' }] })])).stdout) as Reply[];
    expect(data(fromHost[0])).toEqual(['192.0.2.7']);
  });

  test('an internal network\'s container (only a /32 route to the resolver) gets knit names and nothing external', async () => {
    const before = (await bed.upstreamQueries(0)).length;
    const [demo1, ext] = await ask(c2, [{ name: 'demo1' }, { name: 'ext.test' }]);
    expect(data(demo1)).toEqual(['10.53.0.2']);
    expect(ext).toMatchObject({ rcode: 'REFUSED', answers: [] });
    expect((await bed.upstreamQueries(0)).length).toBe(before);
  });

  test('a source that is not a knit container gets REFUSED for everything, and nothing reaches the upstream', async () => {
    const before = (await bed.upstreamQueries(0)).length;
    const [demo1, ext] = await ask(stranger, [{ name: 'demo1' }, { name: 'ext.test' }]);
    expect(demo1).toMatchObject({ rcode: 'REFUSED', answers: [] });
    expect(ext).toMatchObject({ rcode: 'REFUSED', answers: [] });
    expect((await bed.upstreamQueries(0)).length).toBe(before);
    expect(data(await one(c1, { name: 'demo1' }))).toEqual(['10.53.0.2']); // the same question from a knit container
  });

  test('TCP: several queries on one connection, knit names and forwarded ones; a reply too big for UDP comes whole', async () => {
    const udp = await one(c1, { name: 'many' });
    expect(udp).toMatchObject({ tc: true, answers: [] });
    const replies = await bed.ask<Reply[]>(c1, { mode: 'tcp', queries: [{ name: 'demo1' }, { name: 'many' }, { name: 'ext.test' }] });
    expect(replies.map((r) => r.rcode)).toEqual(['NOERROR', 'NOERROR', 'NOERROR']);
    const byCount = replies.map((r) => r.answers?.length).sort();
    expect(byCount).toEqual([1, 1, 40]);
    expect(replies.flatMap(data)).toContain('192.0.2.7');
  });

  test('TCP connections: at most 8 from one source (set for the test), idle ones closed after 1.5 s (set for the test)', async () => {
    const r = await bed.ask<{ openAfter500ms: number; allClosed: boolean; lastClosedMs: number }>(c1, { mode: 'hold', connections: 12, timeoutMs: 5000 });
    expect(r.openAfter500ms).toBe(8);
    expect(r.allClosed).toBe(true);
    expect(r.lastClosedMs).toBeGreaterThanOrEqual(1400);
    expect(r.lastClosedMs).toBeLessThan(3000);
    expect((await bed.ask<Reply[]>(c1, { mode: 'tcp', queries: [{ name: 'demo1' }] }))[0].answers?.[0]?.data).toBe('10.53.0.2');
  });

  test('it listens on its address only: the gateway\'s port 53 answers nothing', async () => {
    expect(data(await one(c1, { name: 'demo1' }))).toEqual(['10.53.0.2']);
    const r = await one(c1, { name: 'demo1' }, { server: GATEWAY, timeoutMs: 1500 });
    expect(r.error).toBe('ECONNREFUSED');
  });
});

describe('upstream failures', () => {
  test('an upstream that refuses: the next one answers', async () => {
    await bed.setUpstreams([REFUSING_UP, UP]);
    const before = (await bed.upstreamQueries(1)).length;
    await new Promise((r) => setTimeout(r, 1200)); // resolv.conf is looked at again at most once a second
    expect(data(await one(c1, { name: 'ext.test' }))).toEqual(['192.0.2.7']);
    expect((await bed.upstreamQueries(1)).length).toBeGreaterThan(before);
  });

  test('no upstream answering: SERVFAIL within the 3.5 s budget (under dockerd\'s 4 s per server), never a hang', async () => {
    await bed.setUpstreams(['10.54.0.99']);
    await new Promise((r) => setTimeout(r, 1200));
    const r = await one(c1, { name: 'ext.test' });
    expect(r.rcode).toBe('SERVFAIL');
    expect(r.ms).toBeGreaterThanOrEqual(3000);
    expect(r.ms).toBeLessThan(4000);
    expect(data(await one(c1, { name: 'demo1' }))).toEqual(['10.53.0.2']); // knit's own names need no upstream
  });
});

describe('stopping and turning off', () => {
  test('knit stopped, the address stays: a query fails at once (ECONNREFUSED), not after a timeout', async () => {
    expect(data(await one(c1, { name: 'demo1' }))).toEqual(['10.53.0.2']);
    await bed.resolver?.stop(5_000);
    const r = await one(c1, { name: 'demo1' }, { timeoutMs: 3000 });
    expect(r.error).toBe('ECONNREFUSED');
    expect(r.ms).toBeLessThan(1000);
    expect(await loAddrs()).toContainEqual(expect.objectContaining({ local: DNS_ADDRESS }));
  });

  test('the setting changed or turned off: knit removes its own address and nothing it did not add', async () => {
    await run(['ip', 'addr', 'add', '169.254.99.99/32', 'dev', 'lo']);
    expect(await ensureDnsAddress({ kernel, address: '169.254.99.99' })).toEqual({ added: false, ours: false });
    let left = (await loAddrs()).map((a) => a.local);
    expect(left).not.toContain(DNS_ADDRESS);
    expect(left).toContain('169.254.99.99');
    expect(await ensureDnsAddress({ kernel, address: DNS_ADDRESS })).toEqual({ added: true, ours: true });
    expect(await ensureDnsAddress({ kernel, address: undefined })).toEqual({ added: false, ours: false });
    left = (await loAddrs()).map((a) => a.local);
    expect(left).not.toContain(DNS_ADDRESS);
    expect(left).toEqual(expect.arrayContaining(['127.0.0.1', '169.254.99.99']));
  });
});
