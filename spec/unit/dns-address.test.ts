// The resolver's address on lo: what knit adds, what it removes (only its own), and how the op renders.
import { KnitError } from '../../src/errors.js';
import { KNIT_LABEL, parseHostAddresses, planDnsAddress, validateDnsAddress } from '../../src/datapath/dns-address.js';
import { renderOp } from '../../src/datapath/render.js';

const lo = (local: string, label = 'lo', prefixlen = 32) => ({ dev: 'lo', local, prefixlen, label });

describe('planDnsAddress', () => {
  test('missing: added to lo as a /32 with knit\'s label', () => {
    expect(planDnsAddress({ want: '169.254.53.53', held: [lo('127.0.0.1', 'lo', 8)] })).toEqual({
      ops: [{ op: 'addr-add', dev: 'lo', cidr: '169.254.53.53/32', label: KNIT_LABEL }], present: true, ours: true,
    });
  });
  test('already there (knit\'s from an earlier run, someone else\'s, or on another link): nothing to do', () => {
    expect(planDnsAddress({ want: '169.254.53.53', held: [lo('169.254.53.53', KNIT_LABEL)] })).toEqual({ ops: [], present: true, ours: true });
    expect(planDnsAddress({ want: '169.254.53.53', held: [lo('169.254.53.53')] })).toEqual({ ops: [], present: true, ours: false });
    expect(planDnsAddress({ want: '169.254.53.53', held: [{ dev: 'eth0', local: '169.254.53.53', prefixlen: 16, label: 'eth0' }] }).ops).toEqual([]);
  });
  test('another address of knit\'s (the setting changed) is removed; the old address of someone else is not', () => {
    const held = [lo('169.254.53.54', KNIT_LABEL), lo('169.254.9.9')];
    expect(planDnsAddress({ want: '169.254.53.53', held }).ops).toEqual([
      { op: 'addr-del', dev: 'lo', cidr: '169.254.53.54/32' },
      { op: 'addr-add', dev: 'lo', cidr: '169.254.53.53/32', label: KNIT_LABEL },
    ]);
  });
  test('resolver off: knit\'s address goes, nothing else', () => {
    expect(planDnsAddress({ held: [lo('169.254.53.53', KNIT_LABEL), lo('169.254.9.9')] }).ops).toEqual([{ op: 'addr-del', dev: 'lo', cidr: '169.254.53.53/32' }]);
    expect(planDnsAddress({ held: [lo('169.254.53.53')] }).ops).toEqual([]);
  });
});

test('parseHostAddresses reads IPv4 addresses with their labels', () => {
  const json = JSON.stringify([{ ifname: 'lo', addr_info: [
    { family: 'inet', local: '127.0.0.1', prefixlen: 8, label: 'lo' },
    { family: 'inet', local: '169.254.53.53', prefixlen: 32, label: 'lo:knit' },
    { family: 'inet6', local: '::1', prefixlen: 128 }] }, { ifname: 'eth0' }]);
  expect(parseHostAddresses(json)).toEqual([lo('127.0.0.1', 'lo', 8), lo('169.254.53.53', 'lo:knit')]);
});

test('validateDnsAddress: one IPv4 unicast address that containers reach through their gateway', () => {
  expect(validateDnsAddress('169.254.53.53')).toBe('169.254.53.53');
  for (const bad of ['', 'fd00::53', '0.0.0.0', '127.0.0.53', '224.0.0.1', '255.255.255.255', '169.254.53', 'x']) {
    expect(() => validateDnsAddress(bad)).toThrow(KnitError);
  }
  expect(() => validateDnsAddress('0.0.0.0')).toThrow(/unspecified address/);
});

test('addr-add renders its label after the device; a label of another device or too long is refused', () => {
  expect(renderOp({ op: 'addr-add', dev: 'lo', cidr: '169.254.53.53/32', label: 'lo:knit' }).lines).toEqual(['addr add 169.254.53.53/32 dev lo label lo:knit']);
  expect(() => renderOp({ op: 'addr-add', dev: 'lo', cidr: '169.254.53.53/32', label: 'eth0:knit' })).toThrow(/address label/);
  expect(() => renderOp({ op: 'addr-add', dev: 'lo', cidr: '169.254.53.53/32', label: 'lo:knit-resolver' })).toThrow(/15 characters/);
  expect(() => renderOp({ op: 'addr-add', dev: 'lo', cidr: '169.254.53.53/32', label: 'lo:a b' })).toThrow(/address label/);
});
