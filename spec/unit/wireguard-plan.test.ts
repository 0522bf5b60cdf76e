// Encrypted overlays' pure parts: records read strictly, peers from records (hostile and stale ones left out),
// the diff a `wg set` applies, tunnel address choice, the fail-closed chains, key derivation and `wg` argv/dump.
import { parseCidr } from '../../src/addr/cidr.js';
import { renderRestore } from '../../src/datapath/firewall.js';
import { parseWgDump, renderWgSet, validateEndpoint } from '../../src/datapath/wireguard.js';
import { mergeSegment } from '../../src/network/overlay/plan.js';
import { generatePrivateKey, publicKeyOf } from '../../src/network/overlay/wg-key.js';
import { chooseAddress, desiredPeers, diffPeers, parseWgRecord, wgChains, wgDeviceName, type PublishedWg } from '../../src/network/overlay/wg-plan.js';

const SUBNET = parseCidr('169.254.64.0/18');
const key = (n: number) => `${String.fromCharCode(65 + n).repeat(42)}A=`;
const rec = (host: string, n: number, address: string, revision = n, next?: number): PublishedWg => ({
  host, revision, record: { publicKey: key(n), endpoint: `198.18.0.${n}:51820`, address, ...(next !== undefined ? { next: key(next) } : {}) },
});

describe('records', () => {
  test('a good record is read; every malformed field makes it ignored', () => {
    const good = { publicKey: key(1), endpoint: '198.18.0.1:51820', address: '169.254.64.1' };
    expect(parseWgRecord(JSON.stringify(good), SUBNET)).toEqual(good);
    for (const bad of [
      { ...good, publicKey: 'not-a-key' },
      { ...good, publicKey: `${key(1)}; rm -rf /` },
      { ...good, endpoint: '198.18.0.1' },
      { ...good, endpoint: 'evil.example:51820' },
      { ...good, endpoint: '198.18.0.1:70000' },
      { ...good, address: '10.0.0.1' },
      { ...good, address: 'fd00::1' },
      { ...good, next: 'x' },
    ]) expect(parseWgRecord(JSON.stringify(bad), SUBNET)).toBeUndefined();
    expect(parseWgRecord('{not json', SUBNET)).toBeUndefined();
    expect(validateEndpoint('[fd00::0001]:51820')).toBe('[fd00::1]:51820');
  });
});

describe('peers', () => {
  const claims = new Map([['169.254.64.1', 'ha'], ['169.254.64.2', 'hb'], ['169.254.64.3', 'hc']]);
  test('each claimed host is a peer with its tunnel address; this host\'s own key never is', () => {
    const d = desiredPeers({ published: [rec('ha', 1, '169.254.64.1'), rec('hb', 2, '169.254.64.2')], claims, ownKey: key(1) });
    expect([...d]).toEqual([[key(2), { endpoint: '198.18.0.2:51820', allowedIps: ['169.254.64.2/32'] }]]);
  });
  test('hostile records: an address claimed by another host, or a key already used, is left out; the others stay', () => {
    const published = [rec('hb', 2, '169.254.64.2'), rec('hx', 9, '169.254.64.2', 10), rec('hc', 3, '169.254.64.3'), { ...rec('hy', 2, '169.254.64.3', 20), host: 'hy' }];
    const d = desiredPeers({ published, claims: new Map([...claims, ['169.254.64.9', 'hy']]), ownKey: key(0) });
    expect([...d.keys()]).toEqual([key(2), key(3)]);
    expect(d.get(key(2))!.allowedIps).toEqual(['169.254.64.2/32']);
  });
  test('a rotating host\'s next key is a peer without addresses until its record says it is the key', () => {
    const d = desiredPeers({ published: [rec('hb', 2, '169.254.64.2', 2, 5)], claims, ownKey: key(0) });
    expect(d.get(key(5))).toEqual({ endpoint: '198.18.0.2:51820', allowedIps: [] });
    const current = [{ publicKey: key(2), endpoint: '198.18.0.2:51820', allowedIps: ['169.254.64.2/32'], latestHandshake: 1, rx: 0, tx: 0 }];
    expect(diffPeers(current, d)).toEqual([{ publicKey: key(5), endpoint: '198.18.0.2:51820', allowedIps: [] }]);
    const after = desiredPeers({ published: [{ ...rec('hb', 5, '169.254.64.2'), record: { ...rec('hb', 5, '169.254.64.2').record, endpoint: '198.18.0.2:51820' } }], claims, ownKey: key(0) });
    const both = [...current, { publicKey: key(5), endpoint: '198.18.0.2:51820', allowedIps: [], latestHandshake: 1, rx: 0, tx: 0 }];
    expect(diffPeers(both, after)).toEqual([{ publicKey: key(2), remove: true }, { publicKey: key(5), endpoint: '198.18.0.2:51820', allowedIps: ['169.254.64.2/32'] }]);
    expect(diffPeers(both.slice(1).map((p) => ({ ...p, allowedIps: ['169.254.64.2/32'] })), after)).toEqual([]);
  });
  test('a lost host\'s record gone: its peer is removed', () => {
    const current = [{ publicKey: key(3), endpoint: '198.18.0.3:51820', allowedIps: ['169.254.64.3/32'], latestHandshake: 0, rx: 0, tx: 0 }];
    expect(diffPeers(current, new Map())).toEqual([{ publicKey: key(3), remove: true }]);
  });
});

test('tunnel addresses: the lowest unclaimed usable one; a full subnet says what to do', () => {
  expect(chooseAddress(SUBNET, new Set())).toBe('169.254.64.1');
  expect(chooseAddress(SUBNET, new Set(['169.254.64.1', '169.254.64.3']))).toBe('169.254.64.2');
  expect(() => chooseAddress(parseCidr('10.0.0.0/30'), new Set(['10.0.0.1', '10.0.0.2']))).toThrow(/every WireGuard tunnel address in 10.0.0.0\/30 is taken; set a larger KNIT_WG_SUBNET/);
  expect(wgDeviceName('0123456789abcdef')).toBe('kwg0123456789ab');
});

test('fail-closed chains: in only through the tunnel, nothing routed through it, out only through it', () => {
  expect(renderRestore(wgChains('kwg0123456789ab', '169.254.64.0/18'))).toBe([
    '*raw', ':KNIT-WG-PRE - [0:0]',
    '-A KNIT-WG-PRE -i kwg0123456789ab -p udp -m udp --dport 4790 -j RETURN',
    '-A KNIT-WG-PRE -i kwg0123456789ab -j DROP',
    '-A KNIT-WG-PRE -p udp -m udp --dport 4790 -j DROP', 'COMMIT',
    '*mangle', ':KNIT-WG-FWD - [0:0]', ':KNIT-WG-POST - [0:0]',
    '-A KNIT-WG-FWD -i kwg0123456789ab -j DROP', '-A KNIT-WG-FWD -o kwg0123456789ab -j DROP',
    '-A KNIT-WG-POST ! -o kwg0123456789ab -p udp -m udp --dport 4790 -j DROP',
    '-A KNIT-WG-POST -s 169.254.64.0/18 ! -o kwg0123456789ab -j DROP',
    '-A KNIT-WG-POST -d 169.254.64.0/18 ! -o kwg0123456789ab -j DROP', 'COMMIT', '',
  ].join('\n'));
});

test('segments: a host must agree on encryption with the first definition, which the error names', () => {
  const first = { subnet: '10.50.0.0/24', vni: 5001, encrypted: true, hosts: ['ha'] };
  expect(mergeSegment(first, { subnet: '10.50.0.0/24', encrypted: true })).toBe(first);
  expect(() => mergeSegment(first, { subnet: '10.50.0.0/24', encrypted: false })).toThrow('overlay 10.50.0.0/24 already exists with encrypted true, not false; create it with the same settings on every host');
  expect(() => mergeSegment({ subnet: '10.50.0.0/24', vni: 5001 }, { subnet: '10.50.0.0/24', encrypted: true })).toThrow(/already exists with encrypted false, not true/);
});

test('keys: X25519 pairs as wg prints them; `wg set` gets the private key only as a path', () => {
  const priv = generatePrivateKey();
  expect(Buffer.from(priv, 'base64')).toHaveLength(32);
  expect(publicKeyOf(priv)).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  // RFC 7748 section 6.1: Alice's key pair.
  const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
  expect(Buffer.from(publicKeyOf(alice), 'base64').toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  expect(renderWgSet('kwg0', { privateKeyFile: '/var/lib/knit/wireguard.key', listenPort: 51820, peers: [{ publicKey: key(1), remove: true }, { publicKey: key(2), endpoint: '198.18.0.2:51820', allowedIps: [] }] }))
    .toEqual(['set', 'kwg0', 'listen-port', '51820', 'private-key', '/var/lib/knit/wireguard.key', 'peer', key(1), 'remove', 'peer', key(2), 'endpoint', '198.18.0.2:51820', 'allowed-ips', '']);
  expect(() => renderWgSet('kwg0', { privateKeyFile: '/tmp/../etc/shadow' })).toThrow(/not a plain absolute path/);
  expect(() => renderWgSet('kwg0', { peers: [{ publicKey: '-x' }] })).toThrow(/not 32 bytes in base64/);
});

test('wg show dump: the private key is dropped, peers read with their endpoints, addresses and counters', () => {
  const dump = `PRIVATE\t${key(0)}\t51820\toff\n${key(2)}\t(none)\t198.18.0.2:51820\t169.254.64.2/32\t1764720000\t1200\t3400\toff\n${key(5)}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n`;
  const s = parseWgDump(dump);
  expect(JSON.stringify(s)).not.toContain('PRIVATE');
  expect(s).toEqual({ publicKey: key(0), listenPort: 51820, peers: [
    { publicKey: key(2), endpoint: '198.18.0.2:51820', allowedIps: ['169.254.64.2/32'], latestHandshake: 1764720000, rx: 1200, tx: 3400 },
    { publicKey: key(5), allowedIps: [], latestHandshake: 0, rx: 0, tx: 0 },
  ] });
});
