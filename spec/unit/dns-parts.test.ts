// The resolver's small parts: reading resolv.conf like dockerd, rate limits, and which sources are trusted.
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { RateLimiter } from '../../src/dns/limit.js';
import { localSources, trustedFrom } from '../../src/dns/sources.js';
import { chooseUpstreams, parseResolvConf, resolvConfUpstreams } from '../../src/dns/upstreams.js';

describe('upstreams, as dockerd reads them', () => {
  test('nameserver lines in order, once each, comments and junk ignored, IPv6 canonical with its zone kept', () => {
    const text = '# generated\nsearch example.com\nnameserver 192.0.2.1 # main\nnameserver 192.0.2.1\n;nameserver 192.0.2.9\nnameserver bogus\nnameserver FE80:0:0::1%eth0\n  nameserver   198.51.100.2\noptions ndots:2\n';
    expect(parseResolvConf(text)).toEqual(['192.0.2.1', 'fe80::1%eth0', '198.51.100.2']);
  });
  test('only systemd-resolved\'s stub: its real list instead; knit\'s own address is never an upstream; three at most', () => {
    expect(chooseUpstreams({ main: ['127.0.0.53'], systemd: ['192.0.2.1'], exclude: '169.254.53.53' })).toEqual(['192.0.2.1']);
    expect(chooseUpstreams({ main: ['127.0.0.53'], exclude: '169.254.53.53' })).toEqual(['127.0.0.53']);
    expect(chooseUpstreams({ main: ['127.0.0.53', '192.0.2.2'], systemd: ['192.0.2.1'], exclude: 'x' })).toEqual(['127.0.0.53', '192.0.2.2']);
    expect(chooseUpstreams({ main: ['169.254.53.53', '192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'], exclude: '169.254.53.53' })).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  });
  test('the file is read again when it changes (replaced, as resolvconf tools do), within about a second', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knit-dns-'));
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'nameserver 192.0.2.1\n');
    const upstreams = resolvConfUpstreams({ path, systemdPath: join(dir, 'absent'), exclude: '169.254.53.53', log: createLogger('error') });
    expect(upstreams()).toEqual(['192.0.2.1']);
    writeFileSync(join(dir, 'new'), 'nameserver 192.0.2.2\nnameserver 192.0.2.3\n');
    renameSync(join(dir, 'new'), path);
    const deadline = Date.now() + 3000;
    while (upstreams().length !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(upstreams()).toEqual(['192.0.2.2', '192.0.2.3']);
  });
});

describe('rate limit per source', () => {
  test('a burst, then the sustained rate; other sources are not affected', () => {
    let now = 0;
    const limiter = new RateLimiter({ rate: 10, burst: 5, maxSources: 100, now: () => now });
    const allowed = (n: number, who = 'a'): number => Array.from({ length: n }, () => limiter.allow(who)).filter(Boolean).length;
    expect(allowed(8)).toBe(5);
    expect(allowed(3, 'b')).toBe(3);
    now += 500;
    expect(allowed(8)).toBe(5);
    now += 100;
    expect(allowed(8)).toBe(1);
  });
  test('the table stays bounded under many sources; quiet ones are forgotten, the rest share one bucket', () => {
    let now = 0;
    const limiter = new RateLimiter({ rate: 10, burst: 2, maxSources: 50, now: () => now });
    for (let i = 0; i < 10_000; i++) limiter.allow(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBeLessThanOrEqual(51);
    expect(limiter.allow('192.0.2.1')).toBe(false); // shares the exhausted overflow bucket
    now += 5_000;
    expect(limiter.allow('192.0.2.1')).toBe(true); // the quiet ones were swept: it has a bucket of its own
    expect(limiter.size).toBeLessThanOrEqual(51);
  });
});

describe('trusted sources besides knit containers', () => {
  const interfaces = [
    { name: 'lo', address: '127.0.0.1', cidr: '127.0.0.1/8' },
    { name: 'eth0', address: '192.0.2.10', cidr: '192.0.2.10/24' },
    { name: 'docker0', address: '172.17.0.1', cidr: '172.17.0.1/16' },
    { name: 'br-0123456789ab', address: '172.18.0.1', cidr: '172.18.0.1/16' },
    { name: 'kn-0123456789ab', address: '10.1.0.1', cidr: '10.1.0.1/24' },
  ];
  test('the host\'s own addresses and the subnets of Docker\'s bridges; not its neighbours on other links', () => {
    const trusted = localSources(() => interfaces);
    for (const ip of ['127.0.0.1', '192.0.2.10', '10.1.0.1', '172.17.0.2', '172.18.3.4']) expect([ip, trusted(ip)]).toEqual([ip, true]);
    for (const ip of ['192.0.2.11', '10.1.0.2', '203.0.113.1', 'not-an-ip', '::1']) expect([ip, trusted(ip)]).toEqual([ip, false]);
    expect(trustedFrom(interfaces).subnets).toHaveLength(2);
  });
});
