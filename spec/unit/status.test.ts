// The status document's pure parts: records as the status shows them, and the other hosts of the cluster.
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';
import { localPart, peersOf } from '../../src/status.js';

const net = (id: string, over: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id, mode: 'bridge', bridge: `kn-${id.slice(0, 12)}`, icc: true, masquerade: true, internal: false, knitIpam: true,
  ipv4: [{ subnet: '10.208.1.0/24', gateway: '10.208.1.1' }], ipv6: [], createdAt: 't', ...over,
});
const ep = (id: string, networkId: string, address: string): EndpointRecord => ({
  id, networkId, hostIf: 'knh', peerIf: 'knc', mac: '02:00:00:00:00:01', address, ports: [], createdAt: 't',
});

test('networks carry mode, subnets, VNI and their endpoint count; IDs are 12 characters', () => {
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  const part = localPart(
    [net(a), net(b, { mode: 'overlay', vni: 77, ipv4: [{ subnet: '10.50.0.0/24' }], ipv6: [{ subnet: 'fd00::/64' }] })],
    [ep('1'.repeat(64), a, '10.208.1.2/24'), ep('2'.repeat(64), a, '10.208.1.3/24')],
  );
  expect(part.networks).toEqual([
    { id: 'aaaaaaaaaaaa', mode: 'bridge', bridge: `kn-${'a'.repeat(12)}`, subnets: ['10.208.1.0/24'], endpoints: 2 },
    { id: 'bbbbbbbbbbbb', mode: 'overlay', bridge: `kn-${'b'.repeat(12)}`, subnets: ['10.50.0.0/24', 'fd00::/64'], vni: 77, endpoints: 0 },
  ]);
  expect(part.endpoints.map((e) => [e.id, e.network, e.address])).toEqual([
    ['111111111111', 'aaaaaaaaaaaa', '10.208.1.2/24'],
    ['222222222222', 'aaaaaaaaaaaa', '10.208.1.3/24'],
  ]);
});

test('peers: every live host but this one, with its VTEP and the endpoints it publishes', () => {
  const hosts = [
    { key: 'hosts/me', value: '{"vtep":"10.0.0.1"}' },
    { key: 'hosts/h2', value: '{"vtep":"10.0.0.2","since":"t"}' },
    { key: 'hosts/h3', value: 'not json' },
  ];
  const published = [
    { key: 'overlay/endpoints/10.50.0.0-24/h2/e1' },
    { key: 'overlay/endpoints/10.50.0.0-24/h2/e2' },
    { key: 'overlay/endpoints/10.60.0.0-24/h2/e3' },
    // Anchors mark a host's segments; they are not endpoints.
    { key: 'overlay/endpoints/10.50.0.0-24/h2/' },
    { key: 'overlay/endpoints/10.60.0.0-24/h3/' },
    { key: 'overlay/endpoints/10.50.0.0-24/me/e4' },
    // A host whose lease lapsed is not a peer, whatever it left behind.
    { key: 'overlay/endpoints/10.50.0.0-24/gone/e5' },
  ];
  expect(peersOf('me', hosts, published)).toEqual([
    { host: 'h2', vtep: '10.0.0.2', endpoints: 3 },
    { host: 'h3', endpoints: 0 },
  ]);
});
