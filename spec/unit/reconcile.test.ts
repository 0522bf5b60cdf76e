// What the records own in the kernel: a network's bridge and VXLAN device, its endpoints' veths; the rest goes.
import type { LinkState } from '../../src/datapath/ops.js';
import { planEndpoint, planNetwork, planNetworkRemoval } from '../../src/network/plan.js';
import { planReconcile } from '../../src/network/reconcile.js';
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';
import { buildSpec } from '../../src/network/spec.js';

const ID = 'a'.repeat(64);
const overlay: NetworkRecord = {
  ...buildSpec({ id: ID, options: { 'com.docker.network.generic': { 'knit.mode': 'overlay', 'knit.vni': '5001' } }, ipv4: [{ pool: '10.51.0.0/24', gateway: '10.51.0.1/24', aux: {} }], ipv6: [], defaultBridge: 'kn-aaaaaaaaaaaa' }),
  createdAt: new Date(0).toISOString(),
  vtep: '192.0.2.1',
};
const link = (name: string, kind: string, alias: string): LinkState => ({ name, kind, alias, mtu: 1450, up: true, addrs: [] });

test('an overlay network removed takes its VXLAN device with it', () => {
  expect(planNetworkRemoval(overlay, [])).toEqual([{ op: 'link-del', name: 'knv5001' }, { op: 'link-del', name: 'kn-aaaaaaaaaaaa' }]);
});

test('a VXLAN device belongs to its network: kept while the network has a record, removed as an orphan after', () => {
  const links = [link('kn-aaaaaaaaaaaa', 'bridge', 'knit:net:aaaaaaaaaaaa'), link('knv5001', 'vxlan', 'knit:vx:aaaaaaaaaaaa')];
  expect(planReconcile({ nets: [overlay], eps: [], links }).orphans).toEqual([]);
  expect(planReconcile({ nets: [], eps: [], links }).orphans).toEqual([{ op: 'link-del', name: 'kn-aaaaaaaaaaaa' }, { op: 'link-del', name: 'knv5001' }]);
});

describe('the boot reconcile planner, branch by branch', () => {
  const NET = 'b'.repeat(64);
  const EP = 'c'.repeat(64);
  const bridge: NetworkRecord = {
    ...buildSpec({ id: NET, options: {}, ipv4: [{ pool: '10.60.0.0/24', gateway: '10.60.0.1/24', aux: {} }], ipv6: [{ pool: 'fd00:60::/64', gateway: 'fd00:60::1/64', aux: {} }], defaultBridge: 'kn-bbbbbbbbbbbb' }),
    createdAt: new Date(0).toISOString(),
  };
  const ep = (over: Partial<EndpointRecord> = {}): EndpointRecord => ({
    id: EP, networkId: NET, hostIf: 'knh-cccccccc', peerIf: 'knc-cccccccc', mac: '02:42:0a:3c:00:02', address: '10.60.0.2/24', ports: [], createdAt: new Date(0).toISOString(), ...over,
  });
  const br = (over: Partial<LinkState> = {}): LinkState => ({ ...link('kn-bbbbbbbbbbbb', 'bridge', 'knit:net:bbbbbbbbbbbb'), addrs: ['10.60.0.1/24', 'fd00:60::1/64'], ...over });
  const veth = (over: Partial<LinkState> = {}): LinkState => ({ ...link('knh-cccccccc', 'veth', 'knit:ep:cccccccccccc'), master: 'kn-bbbbbbbbbbbb', ...over });

  test('everything in place: no repair, no orphan, no finding', () => {
    expect(planReconcile({ nets: [bridge], eps: [ep({ sandboxKey: '/var/run/docker/netns/x' })], links: [br(), veth()] })).toEqual({ repairs: [], orphans: [], findings: [], unusedParents: [] });
  });

  test('a missing bridge is re-created whole, with its gateways', () => {
    const plan = planReconcile({ nets: [bridge], eps: [], links: [] });
    expect(plan.repairs).toEqual([{ finding: 'bridge kn-bbbbbbbbbbbb of network bbbbbbbbbbbb was missing', ops: planNetwork(bridge) }]);
    expect(plan.repairs[0].ops.map((o) => o.op)).toEqual(['bridge-add', 'addr-add', 'addr-add']);
    expect(plan.findings).toEqual(['bridge kn-bbbbbbbbbbbb of network bbbbbbbbbbbb was missing']);
  });

  test('a bridge without its IPv4 or IPv6 gateway gets the missing one back; a down bridge is brought up', () => {
    expect(planReconcile({ nets: [bridge], eps: [], links: [br({ addrs: ['fd00:60::1/64'] })] }).repairs[0].ops).toEqual([{ op: 'addr-add', dev: 'kn-bbbbbbbbbbbb', cidr: '10.60.0.1/24' }]);
    expect(planReconcile({ nets: [bridge], eps: [], links: [br({ addrs: ['10.60.0.1/24'] })] }).repairs[0].ops).toEqual([{ op: 'addr-add', dev: 'kn-bbbbbbbbbbbb', cidr: 'fd00:60::1/64' }]);
    const down = planReconcile({ nets: [bridge], eps: [], links: [br({ addrs: [], up: false })] });
    expect(down.repairs).toEqual([{
      finding: 'bridge kn-bbbbbbbbbbbb lacked its gateway address or was down',
      ops: [{ op: 'addr-add', dev: 'kn-bbbbbbbbbbbb', cidr: '10.60.0.1/24' }, { op: 'addr-add', dev: 'kn-bbbbbbbbbbbb', cidr: 'fd00:60::1/64' }, { op: 'link-up', name: 'kn-bbbbbbbbbbbb' }],
    }]);
  });

  test('a subnet without a gateway asks for no address', () => {
    const noGateway: NetworkRecord = { ...bridge, ipv4: [{ subnet: '10.60.0.0/24' }], ipv6: [] };
    expect(planReconcile({ nets: [noGateway], eps: [], links: [br({ addrs: [] })] }).repairs).toEqual([]);
  });

  test('an endpoint of no known network is reported and left alone', () => {
    const plan = planReconcile({ nets: [], eps: [ep()], links: [] });
    expect(plan).toEqual({ repairs: [], orphans: [], findings: ['endpoint cccccccccccc belongs to no known network'], unusedParents: [] });
  });

  test('a missing veth of an endpoint not yet joined is re-created; of a joined one, only reported (its namespace went)', () => {
    const created = planReconcile({ nets: [bridge], eps: [ep()], links: [br()] });
    expect(created.repairs).toEqual([{ finding: 'veth knh-cccccccc of endpoint cccccccccccc was missing', ops: planEndpoint(bridge, ep()) }]);
    expect(created.repairs[0].ops).toMatchObject([{ op: 'veth-add', name: 'knh-cccccccc', peer: 'knc-cccccccc', master: 'kn-bbbbbbbbbbbb', peerMac: '02:42:0a:3c:00:02' }]);
    const joined = planReconcile({ nets: [bridge], eps: [ep({ sandboxKey: '/var/run/docker/netns/x' })], links: [br()] });
    expect(joined).toEqual({ repairs: [], orphans: [], findings: ['veth knh-cccccccc of joined endpoint cccccccccccc is gone (its container\'s namespace went away)'], unusedParents: [] });
  });

  test.each([
    ['detached from its bridge', { master: undefined }],
    ['on another bridge', { master: 'kn-other' }],
    ['down', { up: false }],
  ])('a veth %s is put back on its bridge and brought up', (_what, over) => {
    expect(planReconcile({ nets: [bridge], eps: [ep()], links: [br(), veth(over)] }).repairs).toEqual([{
      finding: 'veth knh-cccccccc was not attached to kn-bbbbbbbbbbbb or was down',
      ops: [{ op: 'link-master', name: 'knh-cccccccc', master: 'kn-bbbbbbbbbbbb' }, { op: 'link-up', name: 'knh-cccccccc' }],
    }]);
  });

  test('links with a knit alias and no record are orphans; links without one, or with a foreign alias, are not knit\'s', () => {
    const links = [
      link('kn-dddddddddddd', 'bridge', 'knit:net:dddddddddddd'),
      link('knh-eeeeeeee', 'veth', 'knit:ep:eeeeeeeeeeee'),
      { ...link('eth0', 'veth', ''), alias: undefined },
      link('docker0', 'bridge', 'docker'),
      link('kn-weird', 'bridge', 'knit:net:NOTHEX'),
    ];
    const plan = planReconcile({ nets: [], eps: [], links });
    expect(plan.orphans).toEqual([{ op: 'link-del', name: 'kn-dddddddddddd' }, { op: 'link-del', name: 'knh-eeeeeeee' }]);
    expect(plan.findings).toEqual(['link kn-dddddddddddd (knit:net:dddddddddddd) has no record', 'link knh-eeeeeeee (knit:ep:eeeeeeeeeeee) has no record']);
  });

  test('findings list the repairs first, then what was only reported', () => {
    const plan = planReconcile({ nets: [bridge], eps: [ep({ networkId: 'f'.repeat(64) })], links: [link('knh-eeeeeeee', 'veth', 'knit:ep:eeeeeeeeeeee')] });
    expect(plan.findings).toEqual([
      'bridge kn-bbbbbbbbbbbb of network bbbbbbbbbbbb was missing',
      'endpoint cccccccccccc belongs to no known network',
      'link knh-eeeeeeee (knit:ep:eeeeeeeeeeee) has no record',
    ]);
  });
});
