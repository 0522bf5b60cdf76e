// Rendering of kernel ops into batch lines, their inverses, and the parsing of what ip prints back.
import { KnitError } from '../../src/errors.js';
import type { Op } from '../../src/datapath/ops.js';
import { describeOp, renderBatches, renderOp, undoOp } from '../../src/datapath/render.js';
import { parseBatchErrors, parseLinks, parseRouteDsts, trackedAddresses } from '../../src/datapath/parse.js';

const ALIAS = 'knit:net:4fb789de0a1b';
const bridge: Op = { op: 'bridge-add', name: 'kn-4fb789de0a1b', mtu: 1500, alias: ALIAS };
const veth: Op = { op: 'veth-add', name: 'knh0123456789ab', peer: 'knc0123456789ab', mtu: 1450, master: 'kn-4fb789de0a1b', alias: 'knit:ep:0123456789ab', peerMac: '02:42:AC:11:00:02' };
const vxlan: Op = { op: 'vxlan-add', name: 'knv42', vni: 42, local: '192.0.2.1', port: 4789, mtu: 1450, alias: 'knit:vx:0123456789ab', master: 'kn-4fb789de0a1b', up: true };

describe('renderOp', () => {
  test('bridge: generic attributes before `type`, alias on its own line (the kernel ignores it at creation)', () => {
    expect(renderOp(bridge)).toEqual({ tool: 'ip', lines: ['link add kn-4fb789de0a1b mtu 1500 type bridge', `link set kn-4fb789de0a1b alias ${ALIAS}`] });
    expect(renderOp({ ...bridge, mac: '02:00:00:00:00:01', up: true }).lines[0]).toBe('link add kn-4fb789de0a1b mtu 1500 address 02:00:00:00:00:01 up type bridge');
  });
  test('veth: master and mtu on the host end, mtu and MAC on the peer, in one creation line', () => {
    expect(renderOp(veth).lines).toEqual([
      'link add knh0123456789ab mtu 1450 master kn-4fb789de0a1b type veth peer name knc0123456789ab mtu 1450 address 02:42:ac:11:00:02',
      'link set knh0123456789ab alias knit:ep:0123456789ab',
    ]);
    expect(renderOp({ ...veth, peerMac: undefined, up: true }).lines[0]).toBe(
      'link add knh0123456789ab mtu 1450 master kn-4fb789de0a1b up type veth peer name knc0123456789ab mtu 1450');
  });
  test('vxlan: static entries only (nolearning, proxy)', () => {
    expect(renderOp(vxlan).lines).toEqual([
      'link add knv42 mtu 1450 master kn-4fb789de0a1b up type vxlan id 42 local 192.0.2.1 dstport 4789 nolearning proxy',
      'link set knv42 alias knit:vx:0123456789ab',
    ]);
  });
  test.each([
    [{ op: 'addr-add', dev: 'kn-x', cidr: '10.0.0.1/24' }, 'addr add 10.0.0.1/24 dev kn-x'],
    [{ op: 'addr-add', dev: 'kn-x', cidr: 'FD00::1/64' }, 'addr add fd00::1/64 dev kn-x nodad'],
    [{ op: 'addr-del', dev: 'kn-x', cidr: 'fd00::1/64' }, 'addr del fd00::1/64 dev kn-x'],
    [{ op: 'link-master', name: 'knh1', master: 'kn-x' }, 'link set knh1 master kn-x'],
    [{ op: 'link-up', name: 'kn-x' }, 'link set kn-x up'],
    [{ op: 'link-del', name: 'kn-x' }, 'link del kn-x'],
    [{ op: 'neigh-add', dev: 'knv42', ip: '10.0.0.5', mac: '02:42:0a:00:00:05' }, 'neigh replace 10.0.0.5 lladdr 02:42:0a:00:00:05 dev knv42 nud permanent'],
    [{ op: 'neigh-del', dev: 'knv42', ip: '10.0.0.5' }, 'neigh flush to 10.0.0.5 dev knv42 nud all'],
  ] as Array<[Op, string]>)('ip: %j', (op, line) => expect(renderOp(op)).toEqual({ tool: 'ip', lines: [line] }));
  test.each([
    [{ op: 'fdb-add', dev: 'knv42', mac: '00:00:00:00:00:00', dst: '192.0.2.2' }, 'fdb append 00:00:00:00:00:00 dev knv42 dst 192.0.2.2 self permanent'],
    [{ op: 'fdb-add', dev: 'knv42', mac: '02:42:0A:00:00:05', dst: '192.0.2.2' }, 'fdb replace 02:42:0a:00:00:05 dev knv42 dst 192.0.2.2 self permanent'],
    [{ op: 'fdb-del', dev: 'knv42', mac: '00:00:00:00:00:00', dst: '192.0.2.2' }, 'fdb del 00:00:00:00:00:00 dev knv42 dst 192.0.2.2 self'],
  ] as Array<[Op, string]>)('bridge: %j', (op, line) => expect(renderOp(op)).toEqual({ tool: 'bridge', lines: [line] }));

  test.each([
    [{ ...bridge, name: 'kn-x;reboot' }, /interface name/],
    [{ ...bridge, alias: 'knit:net:x y' }, /link alias/],
    [{ ...bridge, mtu: 9 }, /MTU/],
    [{ ...veth, peer: '-force' }, /must not start/],
    [{ ...veth, master: 'kn-$(id)' }, /interface name/],
    [{ ...veth, peerMac: 'ff:ff:ff:ff:ff:ff' }, /multicast/],
    [{ ...vxlan, vni: 0 }, /VNI/],
    [{ ...vxlan, local: '192.0.2.1\nlink del eth0' }, /VXLAN local address/],
    [{ ...vxlan, port: 70000 }, /UDP port/],
    [{ op: 'addr-add', dev: 'kn-x', cidr: '10.0.0.1/24 dev eth0' }, /address\/prefix/],
    [{ op: 'fdb-add', dev: 'knv42', mac: '00:00:00:00:00:00', dst: '192.0.2.2 self' }, /VXLAN destination/],
    [{ op: 'neigh-add', dev: 'knv42', ip: '10.0.0.5', mac: '02:42:0a:00:00:05\n' }, /MAC address/],
  ] as Array<[Op, RegExp]>)('refuses %j', (op, pattern) => {
    expect(() => renderOp(op)).toThrow(KnitError);
    expect(() => renderOp(op)).toThrow(pattern);
  });
});

describe('renderBatches', () => {
  test('splits ip and bridge lines, keeps op indexes, puts neighbour lines last', () => {
    const ops: Op[] = [
      vxlan,
      { op: 'neigh-add', dev: 'knv42', ip: '10.0.0.5', mac: '02:42:0a:00:00:05' },
      { op: 'fdb-add', dev: 'knv42', mac: '02:42:0a:00:00:05', dst: '192.0.2.2' },
      { op: 'link-up', name: 'knv42' },
    ];
    const b = renderBatches(ops);
    expect(b.ip.map((l) => [l.index, l.text.split(' ').slice(0, 2).join(' ')])).toEqual([
      [0, 'link add'], [0, 'link set'], [3, 'link set'], [1, 'neigh replace'],
    ]);
    expect(b.bridge).toEqual([{ index: 2, text: 'fdb replace 02:42:0a:00:00:05 dev knv42 dst 192.0.2.2 self permanent' }]);
  });
  test('one invalid op refuses the whole list', () => {
    expect(() => renderBatches([bridge, { op: 'link-up', name: 'a b' }])).toThrow(/interface name "a b"/);
  });
});

describe('undoOp', () => {
  test('creations become deletes', () => {
    expect(undoOp(bridge)).toEqual({ op: 'link-del', name: 'kn-4fb789de0a1b' });
    expect(undoOp(veth)).toEqual({ op: 'link-del', name: 'knh0123456789ab' });
    expect(undoOp(vxlan)).toEqual({ op: 'link-del', name: 'knv42' });
    expect(undoOp({ op: 'addr-add', dev: 'kn-x', cidr: '10.0.0.1/24' })).toEqual({ op: 'addr-del', dev: 'kn-x', cidr: '10.0.0.1/24' });
    expect(undoOp({ op: 'fdb-add', dev: 'knv42', mac: '00:00:00:00:00:00', dst: '192.0.2.2' })).toEqual({ op: 'fdb-del', dev: 'knv42', mac: '00:00:00:00:00:00', dst: '192.0.2.2' });
    expect(undoOp({ op: 'neigh-add', dev: 'knv42', ip: '10.0.0.5', mac: '02:42:0a:00:00:05' })).toEqual({ op: 'neigh-del', dev: 'knv42', ip: '10.0.0.5' });
  });
  test.each([{ op: 'link-del', name: 'kn-x' }, { op: 'link-up', name: 'kn-x' }, { op: 'neigh-del', dev: 'knv42', ip: '10.0.0.5' }] as Op[])(
    '%j has no inverse', (op) => expect(undoOp(op)).toBeUndefined());
  test('descriptions name the link', () => expect(describeOp(bridge)).toBe('creating bridge kn-4fb789de0a1b'));
});

describe('parseBatchErrors', () => {
  test('a failure names its line and the kernel words', () => {
    expect(parseBatchErrors('RTNETLINK answers: File exists\nCommand failed -:3\n', 1)).toEqual([{ line: 3, words: 'File exists' }]);
    expect(parseBatchErrors('Error: ipv4: Address already assigned.\nCommand failed -:2\n', 1)).toEqual([{ line: 2, words: 'ipv4: Address already assigned' }]);
  });
  test('-force reports every failed line', () => {
    const stderr = 'Cannot find device "kn-zz"\nCommand failed -:2\nError: ipv4: Address not found.\nCommand failed -:4\n';
    expect(parseBatchErrors(stderr, 1)).toEqual([{ line: 2, words: 'Cannot find device "kn-zz"' }, { line: 4, words: 'ipv4: Address not found' }]);
  });
  test('a message with no marker is a failure at an unknown line only when the exit code says so', () => {
    expect(parseBatchErrors('RTNETLINK answers: No such file or directory\n', 2)).toEqual([{ words: 'No such file or directory' }]);
    expect(parseBatchErrors('Warning: something\n', 0)).toEqual([]);
    expect(parseBatchErrors('', 1)).toEqual([{ words: 'no reason given' }]);
  });
});

describe('parseLinks and parseRouteDsts', () => {
  test('reads ip -j -d addr show', () => {
    const json = JSON.stringify([
      { ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
      { ifname: 'knh1', flags: ['BROADCAST', 'UP'], mtu: 1450, master: 'kn-x', link_type: 'ether', address: '02:00:00:00:00:03', ifalias: 'knit:ep:0123456789ab', linkinfo: { info_kind: 'veth' }, addr_info: [] },
      { ifname: 'kn-x', flags: ['NO-CARRIER', 'BROADCAST'], mtu: 1500, link_type: 'ether', address: '02:00:00:00:00:04', linkinfo: { info_kind: 'bridge' },
        addr_info: [{ family: 'inet', local: '10.0.0.1', prefixlen: 24, scope: 'global' }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }] },
    ]);
    expect(parseLinks(json)).toEqual([
      { name: 'lo', kind: 'loopback', mtu: 65536, up: true, addrs: [] },
      { name: 'knh1', kind: 'veth', mtu: 1450, up: true, master: 'kn-x', alias: 'knit:ep:0123456789ab', mac: '02:00:00:00:00:03', addrs: [] },
      { name: 'kn-x', kind: 'bridge', mtu: 1500, up: false, mac: '02:00:00:00:00:04', addrs: ['10.0.0.1/24'] },
    ]);
  });
  test('reads route destinations', () => {
    expect(parseRouteDsts('[{"dst":"10.1.1.0/24"},{"dst":"default"},{"dst":"192.0.2.7"},{"dst":"fd00::5"}]')).toEqual(['10.1.1.0/24', '192.0.2.7/32', 'fd00::5/128']);
  });
});

describe('trackedAddresses', () => {
  // As the kernel prints them (one ICMP flow each way, IPv6 in full).
  const table = [
    'ipv4     2 icmp     1 29 src=10.0.0.2 dst=10.0.0.3 type=8 code=0 id=7 src=10.0.0.3 dst=10.0.0.2 type=0 code=0 id=7 mark=0 zone=0 use=2',
    'ipv6     10 icmpv6   58 30 src=fd00:0000:0000:0000:0000:0000:0000:0002 dst=fd00:0000:0000:0000:0000:0000:0000:0003 type=128 code=0 id=8 src=fd00:0000:0000:0000:0000:0000:0000:0003 dst=fd00:0000:0000:0000:0000:0000:0000:0002 type=129 code=0 id=8 mark=0 zone=0 use=2',
    '',
  ].join('\n');

  test('finds sources and destinations, IPv4 and IPv6 in its compressed form', () => {
    expect(trackedAddresses(table, ['10.0.0.2', '10.0.0.3', 'fd00::2', 'fd00::3'])).toEqual(['10.0.0.2', '10.0.0.3', 'fd00::2', 'fd00::3']);
  });

  test('an address that only prefixes a tracked one, or is absent, is not there', () => {
    expect(trackedAddresses(table, ['10.0.0.20', '10.0.0.4', 'fd00::20', 'fd00::'])).toEqual([]);
    expect(trackedAddresses('', ['10.0.0.2'])).toEqual([]);
  });

  test('what is not an address is returned, for conntrack itself to judge', () => {
    expect(trackedAddresses(table, ['not-an-ip'])).toEqual(['not-an-ip']);
  });
});
