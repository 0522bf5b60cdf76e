// Validation of names and values bound for kernel command lines, and the names derived from Docker IDs.
import { KnitError } from '../../src/errors.js';
import {
  aliasFor, bridgeName, isDockerId, sysctlPath, validateAlias, validateChain, validateCidr, validateFdbMac, validateIfName,
  validateIp, validateMac, validateMtu, validatePort, validateVni, vethNames, vxlanName,
} from '../../src/datapath/names.js';

const ID = '4fb789de0a1b' + 'c'.repeat(52);
const HOSTILE = ['a;reboot', 'a$(id)', '`id`', 'a b', 'a\nb', 'a|b', 'a&b', "a'b", 'a"b', 'a/b', 'a\\b', 'a#b', 'a\tb', ''];

function refused(fn: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(KnitError);
  expect((thrown as KnitError).kind).toBe('bad-request');
  expect((thrown as KnitError).message).toMatch(pattern);
}

describe('interface names', () => {
  test.each(['kn-4fb789de0a1b', 'eth0', 'a', 'x'.repeat(15), 'vlan.100', 'a_b-c.d'])('accepts %j', (name) => {
    expect(validateIfName(name)).toBe(name);
  });
  test.each(HOSTILE)('refuses %j and quotes it', (name) => refused(() => validateIfName(name), /interface name ".*"/s));
  test('refuses 16 characters', () => refused(() => validateIfName('x'.repeat(16)), /1 to 15 characters/));
  test('refuses a leading dash (an option to ip)', () => refused(() => validateIfName('-force'), /must not start with "-"/));
  test.each(['.', '..'])('refuses %j', (name) => refused(() => validateIfName(name), /reserved/));
  test('refuses a non-string', () => refused(() => validateIfName(42), /not a string/));
});

describe('MAC addresses', () => {
  test('normalises to lowercase', () => expect(validateMac('02:42:AC:11:00:02')).toBe('02:42:ac:11:00:02'));
  test.each(['02:42:ac:11:00', '02:42:ac:11:00:02:03', '0242ac110002', '02-42-ac-11-00-02', '2:42:ac:11:0:2', 'zz:42:ac:11:00:02', '02:42:ac:11:00:02;'])(
    'refuses malformed %j', (mac) => refused(() => validateMac(mac), /six colon-separated hex bytes/),
  );
  test.each(['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '33:33:00:00:00:01'])('refuses group address %j', (mac) =>
    refused(() => validateMac(mac), /multicast/));
  test('refuses all zeros for a link', () => refused(() => validateMac('00:00:00:00:00:00'), /all zeros/));
  test('accepts all zeros for a forwarding entry', () => expect(validateFdbMac('00:00:00:00:00:00')).toBe('00:00:00:00:00:00'));
  test('a forwarding entry still refuses multicast', () => refused(() => validateFdbMac('01:00:00:00:00:00'), /multicast/));
});

describe('IP addresses and CIDRs', () => {
  test('IPv4 and canonical IPv6', () => {
    expect(validateIp('10.0.0.1')).toBe('10.0.0.1');
    expect(validateIp('FD00:0:0:0:0:0:0:1')).toBe('fd00::1');
  });
  test.each(['10.0.0', '10.0.0.256', '0x0a.0.0.1', '10.0.0.1 ', 'fe80::1%eth0', 'fd00::1;', '10.0.0.1$(id)', 'localhost', ''])(
    'refuses %j', (ip) => refused(() => validateIp(ip), /IP address|zone/),
  );
  test('interface addresses keep host bits', () => {
    expect(validateCidr('10.20.0.1/24')).toBe('10.20.0.1/24');
    expect(validateCidr('fd00:0::1/64')).toBe('fd00::1/64');
  });
  test.each([['10.0.0.1', /address\/prefix/], ['10.0.0.1/33', /longer than 32/], ['fd00::1/129', /longer than 128/],
    ['10.0.0.1/24 dev eth0', /address\/prefix/], ['10.0.0.1//24', /address\/prefix/], ['x/24', /not an IPv4 or IPv6/]] as const)(
    'refuses %j', (cidr, pattern) => refused(() => validateCidr(cidr), pattern),
  );
});

describe('numbers', () => {
  test('VNI range', () => {
    expect(validateVni(1)).toBe(1);
    expect(validateVni(16777215)).toBe(16777215);
    for (const bad of [0, 16777216, 1.5, -1, NaN, '42']) refused(() => validateVni(bad), /VNI .* between 1 and 16777215/);
  });
  test('MTU range', () => {
    expect(validateMtu(68)).toBe(68);
    expect(validateMtu(9000)).toBe(9000);
    for (const bad of [67, 65536, 1500.5, '1500']) refused(() => validateMtu(bad), /MTU/);
  });
  test('port range', () => {
    expect(validatePort(4789)).toBe(4789);
    refused(() => validatePort(0), /UDP port/);
  });
});

describe('aliases and chains', () => {
  test('alias form', () => {
    expect(validateAlias('knit:net:4fb789de0a1b')).toBe('knit:net:4fb789de0a1b');
    for (const bad of ['knit:net:4fb789de0a1', 'knit:NET:4fb789de0a1b', 'knit:net:4fb789de0a1b ', 'x:net:4fb789de0a1b', 'knit:net:4fb789de0a1g']) {
      refused(() => validateAlias(bad), /knit:<role>:<12 hex digits>/);
    }
  });
  test('chain names', () => {
    expect(validateChain('KNIT-ISOLATION_1')).toBe('KNIT-ISOLATION_1');
    refused(() => validateChain('K'.repeat(29)), /1 to 28/);
    expect(validateChain('KNIT-IN-4fb789de0a1b')).toBe('KNIT-IN-4fb789de0a1b');
    refused(() => validateChain('-KNIT'), /must not start/);
    for (const bad of ['KNIT;X', 'KNIT X', 'KNIT$(id)', 'KNIT\n-F', 'KNIT.X', '']) refused(() => validateChain(bad), /chain name/);
  });
});

describe('sysctl names', () => {
  test('dotted and slashed forms', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/eth0.100/forwarding')).toBe('net/ipv4/conf/eth0.100/forwarding');
  });
  test.each(['ip_forward', 'net.ipv4..x', 'net/../../etc/passwd', '../net/x', 'net.ipv4.ip forward', 'net.ipv4.$(id)'])('refuses %j', (name) =>
    refused(() => sysctlPath(name), /sysctl name/));
});

describe('derived names', () => {
  test('Docker IDs', () => {
    expect(isDockerId(ID)).toBe(true);
    expect(isDockerId(ID.toUpperCase())).toBe(false);
    expect(isDockerId(ID.slice(1))).toBe(false);
    expect(isDockerId(42)).toBe(false);
  });
  test('bridge, veth, vxlan names fit in 15 characters', () => {
    expect(bridgeName(ID)).toBe('kn-4fb789de0a1b');
    expect(vethNames(ID)).toEqual({ host: 'knh4fb789de0a1b', peer: 'knc4fb789de0a1b' });
    expect(vxlanName(16777215)).toBe('knv16777215');
    for (const n of [bridgeName(ID), vethNames(ID).host, vxlanName(16777215)]) expect(validateIfName(n)).toBe(n);
  });
  test('alias from role and ID', () => expect(validateAlias(aliasFor('ep', ID))).toBe('knit:ep:4fb789de0a1b'));
  test('refuses what is not a Docker ID', () => {
    refused(() => bridgeName('abc'), /network ID "abc" is not a Docker ID/);
    refused(() => vethNames('$(reboot)'.padEnd(64, '0')), /endpoint ID/);
    refused(() => vxlanName(0), /VNI/);
  });
});
