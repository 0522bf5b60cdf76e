// Address arithmetic, pool choice and pool IDs.
import { formatCidr, formatIp, parseCidr, parseIp, overlaps, usableBounds } from '../../src/addr/cidr.js';
import { chooseSubnet, parsePoolId, parsePoolSpecs, poolId } from '../../src/ipam/pools.js';
import { AddressBook } from '../../src/ipam/allocator.js';

describe('cidr', () => {
  test('parses and prints IPv4 and IPv6', () => {
    expect(formatCidr(parseCidr('10.20.0.0/24'))).toBe('10.20.0.0/24');
    expect(formatCidr(parseCidr('fd00:1::/64'))).toBe('fd00:1::/64');
    expect(formatIp(4, parseIp('10.0.0.255').value + 1n)).toBe('10.0.1.0');
  });
  test.each([
    ['10.20.0.1/24', /host bits set/],
    ['10.20.0.0/33', /longer than 32/],
    ['10.20.0/24', /not an IP address|dotted-quad/],
    ['nonsense', /CIDR form/],
    ['::ffff:10.0.0.0/120', /IPv4-mapped/],
    ['10.0.0.0/24; rm -rf /', /CIDR form|not an IP/],
  ])('refuses %s', (text, msg) => {
    expect(() => parseCidr(text)).toThrow(msg);
  });
  test('overlap and bounds', () => {
    expect(overlaps(parseCidr('10.0.0.0/16'), parseCidr('10.0.5.0/24'))).toBe(true);
    expect(overlaps(parseCidr('10.0.0.0/24'), parseCidr('10.0.1.0/24'))).toBe(false);
    const b = usableBounds(parseCidr('10.0.0.0/30'));
    expect([formatIp(4, b.first), formatIp(4, b.last)]).toEqual(['10.0.0.1', '10.0.0.2']);
  });
});

describe('pools', () => {
  const specs = parsePoolSpecs('10.208.0.0/12:24,fd6b:6e69:7400::/40:64');
  test('chooses the first free subnet, skipping held pools and on-link routes', () => {
    expect(formatCidr(chooseSubnet(specs, 4, [])!)).toBe('10.208.0.0/24');
    const avoid = [parseCidr('10.208.0.0/24'), parseCidr('10.208.1.0/25'), parseCidr('10.208.2.0/23')];
    expect(formatCidr(chooseSubnet(specs, 4, avoid)!)).toBe('10.208.4.0/24');
    expect(formatCidr(chooseSubnet(specs, 6, [])!)).toBe('fd6b:6e69:7400::/64');
  });
  test('a route covering the whole range leaves nothing', () => {
    expect(chooseSubnet(parsePoolSpecs('10.0.0.0/16:24'), 4, [parseCidr('10.0.0.0/8')])).toBeUndefined();
  });
  test('pool IDs are deterministic and round-trip', () => {
    const s = parseCidr('10.20.0.0/24');
    const r = parseCidr('10.20.0.128/25');
    expect(poolId(s)).toBe('knit:10.20.0.0/24');
    expect(poolId(s, r)).toBe('knit:10.20.0.0/24~10.20.0.128/25');
    expect(formatCidr(parsePoolId(poolId(s, r)).range!)).toBe('10.20.0.128/25');
    expect(() => parsePoolId('../../etc')).toThrow(/not a knit pool/);
    expect(() => parsePoolId(42)).toThrow(/not a knit pool/);
  });
  test.each(['', '10.0.0.0/8', '10.0.0.0/8:7', '10.0.0.0/8:31', 'x:24'])('refuses pool spec %p', (t) => {
    expect(() => parsePoolSpecs(t)).toThrow(/KNIT_DEFAULT_POOLS/);
  });
});

describe('AddressBook', () => {
  test('hands out every usable address once, never network or broadcast', () => {
    const book = new AddressBook(parseCidr('10.0.0.0/29'));
    const got: string[] = [];
    for (let ip = book.next(); ip !== undefined; ip = book.next()) {
      book.take(ip);
      got.push(formatIp(4, ip));
    }
    expect(got).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });
  test('round-robin: a released address is not reused at once', () => {
    const book = new AddressBook(parseCidr('10.0.0.0/24'));
    const a = book.next()!;
    book.take(a);
    book.release(a);
    expect(book.next()).not.toBe(a);
  });
  test('dynamic addresses come from the range; the gateway from the subnet', () => {
    const book = new AddressBook(parseCidr('10.0.0.0/24'), parseCidr('10.0.0.128/25'));
    expect(formatIp(4, book.lowestFree()!)).toBe('10.0.0.1');
    expect(formatIp(4, book.next()!)).toBe('10.0.0.128');
    expect(book.capacity).toBe(127n); // .255 is the broadcast
  });
  test('stays fast when a /16 is nearly full', () => {
    const book = new AddressBook(parseCidr('10.1.0.0/16'));
    for (let i = 0; i < 65_000; i++) book.take(book.next()!);
    const t = Date.now();
    for (let i = 0; i < 500; i++) {
      const ip = book.next()!;
      book.take(ip);
      book.release(ip);
    }
    expect(book.count).toBe(65_000);
    expect(Date.now() - t).toBeLessThan(5_000);
  });
});
