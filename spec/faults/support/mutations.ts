// Catalogues of values that are wrong for one protocol field each: every one must make its request fail.
const shell = (tag: string): string[] => [
  `$(touch /tmp/knit-hostile-${tag})`,
  `\`touch /tmp/knit-hostile-${tag}\``,
  `x; touch /tmp/knit-hostile-${tag}`,
  `x | touch /tmp/knit-hostile-${tag}`,
  `x && touch /tmp/knit-hostile-${tag}`,
  `x\ntouch /tmp/knit-hostile-${tag}`,
];

/** Values of the wrong JSON type for a string field. */
export const NOT_STRINGS: unknown[] = [0, -1, 1e308, 3.5, true, false, [], {}, ['x'], { $ne: '' }];

const hex = (n: number, c = 'a'): string => c.repeat(n);

export const BAD_IDS: unknown[] = [
  '', hex(63), hex(65), hex(64, 'A'), hex(64, 'g'), `0x${hex(62)}`, ` ${hex(63)}`, `${hex(63)}\n`, `${hex(32)}\u0000${hex(31)}`,
  '../../../../etc/passwd', '/etc/passwd', `../${hex(61)}`, '-rf', '--help', `-${hex(63)}`, '%2e%2e%2f%2e%2e', hex(64, 'ａ'),
  hex(100_000), ...shell('id'), null, ...NOT_STRINGS,
];

/** Never a valid subnet: wrong syntax, host bits, the wrong family for IPv4 data, hostile text. */
export const BAD_SUBNETS: unknown[] = [
  '10.0.0.0', '10.0.0.0/', '/24', '10.0.0.0/33', '10.0.0.1/24', '256.0.0.0/8', '10.0.0.0/24/24', '10.0.0.0/-1', '10.0.0.0/0x18',
  '10.0.0.0 /24', ' 10.0.0.0/24', '-10.0.0.0/24', '10.0.0.0/24;reboot', 'fe80::/64%eth0', '::ffff:10.0.0.0/120',
  '010.000.000.000/24', '10.0.0/24', '1.2.3.4.5/24', '2001:db8::/64', 'x'.repeat(5_000), ...shell('subnet'), 24, true, {}, [],
];

/** Interface addresses (address/prefix) outside the fixture's subnet or not addresses at all. */
export const BAD_ADDRESS_CIDRS = (subnetPrefix: string): unknown[] => [
  `${subnetPrefix}.7`, `${subnetPrefix}.7/33`, '10.99.0.7/24', '999.1.1.1/24', `${subnetPrefix}.7/24 `, 'zzz', '-1', '2001:db8::7/64',
  `${subnetPrefix}.300/24`, 'x'.repeat(300), ...shell('addr'), ...NOT_STRINGS,
];

/** Gateways that are not in the subnet, lack the subnet's prefix, or are not addresses. */
export const BAD_GATEWAYS = (subnetPrefix: string): unknown[] => [
  `${subnetPrefix}.1`, `${subnetPrefix}.1/16`, '10.99.0.1/24', `${subnetPrefix}.1/33`, 'gateway', ...shell('gw'), ...NOT_STRINGS,
];

export const BAD_MACS: unknown[] = [
  'zz:zz:zz:zz:zz:zz', '01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', '02:42:ac:11:00', '02:42:ac:11:00:02:03',
  '02-42-ac-11-00-02', '0242.ac11.0002', '02:42:ac:11:00:2', ' 02:42:ac:11:00:02', 'AkKsEQAC', ...shell('mac'), ...NOT_STRINGS,
];

export const BAD_BRIDGE_NAMES: unknown[] = [
  '', '-evil', '--help', 'a'.repeat(16), 'br;reboot', 'br name', '../br', '.', '..', 'br/x', 'br$(id)', 'brä', 'lo',
  ...shell('br').map((s) => s.slice(0, 15)), {}, [], null,
];

export const BAD_MTUS: unknown[] = ['0', '67', '65536', '-1', '1e3', '1500.5', 'abc', '', ' 1500', '9'.repeat(30), '0x5dc', {}, [], null, 1e9];
export const BAD_BOOLS: unknown[] = ['yes', 'no', '2', '', 'TRUE ', 'tRuE', 'on', {}, [], null];
export const BAD_MODES: unknown[] = ['vlan', 'Overlay', '', '-bridge', 'bridge;reboot', 'overlay\n', {}, null];
export const BAD_VNIS: unknown[] = ['0', '16777216', '-5', 'abc', '1.5', '', {}];
export const BAD_HOST_BINDINGS: unknown[] = ['999.0.0.1', '::1', 'localhost', '0.0.0.0/0', '', ...shell('hb'), {}];

/** Keys no -o option has: knit must refuse each, naming it. */
export const UNKNOWN_OPTION_KEYS: string[] = [
  'frob', '__proto__', 'constructor', 'toString', '-o', '--opt', 'com.docker.network.bridge.NAME', 'knit.Mode', 'knit.mode ',
  ' knit.mode', 'x'.repeat(10_000), '', '$(touch /tmp/knit-hostile-key)', 'com.docker.network.bridge.name\u0000',
];

/** Every -o option with a value it must refuse, plus an unknown key beside valid ones. */
export function badGenerics(): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const add = (key: string, values: unknown[], extra: Record<string, unknown> = {}) => {
    for (const v of values) out.push({ ...extra, [key]: v });
  };
  add('com.docker.network.bridge.name', BAD_BRIDGE_NAMES);
  add('com.docker.network.driver.mtu', BAD_MTUS);
  add('com.docker.network.bridge.enable_icc', BAD_BOOLS);
  add('com.docker.network.bridge.enable_ip_masquerade', BAD_BOOLS);
  add('com.docker.network.bridge.host_binding_ipv4', BAD_HOST_BINDINGS);
  add('knit.mode', BAD_MODES);
  add('knit.vni', BAD_VNIS, { 'knit.mode': 'overlay' });
  add('knit.vni', ['4097'], { 'knit.mode': 'bridge' });
  for (const key of UNKNOWN_OPTION_KEYS) out.push(JSON.parse(`{"com.docker.network.driver.mtu":"1400",${JSON.stringify(key)}:"1"}`));
  const many: Record<string, string> = {};
  for (let i = 0; i < 2_000; i++) many[`opt${i}`] = String(i);
  out.push(many);
  return out;
}

/** Port maps knit must refuse: bad protocols, ports, ranges and host addresses, too many entries. */
export function badPortMaps(): unknown[] {
  const ok = { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 18080, HostPortEnd: 18080 };
  const one = (patch: Record<string, unknown>) => [{ ...ok, ...patch }];
  return [
    'tcp/80', 42, {}, [null], ['80'],
    one({ Proto: 0 }), one({ Proto: 99 }), one({ Proto: 'tcp' }), one({ Proto: null }),
    one({ Port: 0 }), one({ Port: 65536 }), one({ Port: -1 }), one({ Port: 1.5 }), one({ Port: '80' }),
    one({ HostPort: 70000, HostPortEnd: 70000 }), one({ HostPort: 100, HostPortEnd: 50 }), one({ HostPort: -80 }),
    one({ HostIP: '999.1.1.1' }), one({ HostIP: '$(touch /tmp/knit-hostile-hostip)' }), one({ HostIP: '::ffff:1.2.3.4' }),
    Array.from({ length: 4_097 }, (_, i) => ({ ...ok, HostPort: 20_000 + i, HostPortEnd: 20_000 + i })),
  ];
}

/** A value nested `depth` levels deep, as arrays or objects. */
export function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Byte sequences that are not UTF-8: a lone continuation byte, an overlong NUL, a surrogate, a cut-off sequence. */
export const INVALID_UTF8: Buffer[] = [
  Buffer.from([0xff]), Buffer.from([0xfe, 0xff]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0x80, 0x80, 0x80]),
];
