// What the records own in the kernel: a network's bridge and VXLAN device, its endpoints' veths; the rest goes.
import type { LinkState } from '../../src/datapath/ops.js';
import { planNetworkRemoval } from '../../src/network/plan.js';
import { planReconcile } from '../../src/network/reconcile.js';
import type { NetworkRecord } from '../../src/network/records.js';
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
