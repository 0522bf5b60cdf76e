// Macvlan networks, the pure parts: options, the links and routes of every mode, 802.1q parents, the host leg, repairs.
import type { LinkState, Op } from '../../src/datapath/ops.js';
import { renderBatches } from '../../src/datapath/render.js';
import { hostRoutes, isMacvlan, parentToRelease, planParent } from '../../src/network/macvlan/plan.js';
import { endpointNames, planEndpoint, planEndpointRemoval, planNetwork, planNetworkRemoval } from '../../src/network/plan.js';
import { planReconcile } from '../../src/network/reconcile.js';
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';
import { buildSpec } from '../../src/network/spec.js';

const ID = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);
const EP = 'c'.repeat(64);
const v4 = [{ pool: '198.18.0.0/24', gateway: '198.18.0.254/24', aux: {} }];
const spec = (generic: Record<string, unknown>, extra: Record<string, unknown> = {}, id = ID) =>
  buildSpec({ id, options: { 'com.docker.network.generic': generic, ...extra }, ipv4: v4, ipv6: [], defaultBridge: `kn-${id.slice(0, 12)}` });
const net = (generic: Record<string, unknown>, id = ID): NetworkRecord => ({ ...spec({ 'knit.mode': 'macvlan', ...generic }, {}, id), mtu: 1500, createdAt: '' });
const lines = (ops: Op[]) => renderBatches(ops).ip.map((l) => l.text);
const link = (name: string, extra: Partial<LinkState> = {}): LinkState => ({ name, kind: 'veth', mtu: 1500, up: true, addrs: [], ...extra });
function endpoint(n: NetworkRecord, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  const ep: EndpointRecord = { id: EP, networkId: n.id, ...endpointNames(EP, n), mac: '02:00:00:00:00:01', address: '198.18.0.7/24', ports: [], createdAt: '', ...extra };
  if (isMacvlan(n)) ep.hostRoutes = hostRoutes(n, ep);
  return ep;
}

describe('macvlan options', () => {
  test('Docker\'s names: parent, macvlan_mode (bridge by default); the host leg is off by default', () => {
    expect(spec({ 'knit.mode': 'macvlan', parent: 'eth0' }).macvlan).toEqual({ parent: 'eth0', mode: 'bridge', hostLeg: false });
    expect(spec({ 'knit.mode': 'macvlan', parent: 'eth0', 'knit.macvlan.host': 'true' }).macvlan).toEqual({ parent: 'eth0', mode: 'bridge', hostLeg: true });
  });
  test.each(['bridge', 'private', 'vepa', 'passthru'])('mode %s', (mode) => {
    expect(spec({ 'knit.mode': 'macvlan', parent: 'eth0', macvlan_mode: mode }).macvlan?.mode).toBe(mode);
  });
  test('a parent named IF.VID carries the VLAN to make it from', () => {
    expect(spec({ 'knit.mode': 'macvlan', parent: 'eth0.10' }).macvlan).toEqual({ parent: 'eth0.10', mode: 'bridge', hostLeg: false, vlan: { link: 'eth0', vid: 10 } });
  });
  test.each([
    [{ 'knit.mode': 'macvlan' }, /needs -o parent=IF/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0', macvlan_mode: 'l2' }, /macvlan_mode="l2" is not a macvlan mode; use bridge, private, vepa or passthru/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0;reboot' }, /option parent: interface name "eth0;reboot" may contain only/],
    [{ 'knit.mode': 'macvlan', parent: '-eth0' }, /option parent: interface name "-eth0" must not start with "-"/],
    [{ 'knit.mode': 'macvlan', parent: 'averyveryverylongname' }, /option parent: interface name .* 1 to 15 characters/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0.4095' }, /VLAN ID 4095 \(after the dot\) must be from 1 to 4094/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0.0' }, /VLAN ID 0 \(after the dot\)/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0', 'knit.macvlan.host': 'yes' }, /knit.macvlan.host="yes" is not a boolean/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0', macvlan_mode: 'private', 'knit.macvlan.host': 'true' }, /needs macvlan_mode=bridge/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0', 'com.docker.network.bridge.name': 'br9' }, /bridge.name does not apply to knit.mode=macvlan/],
    [{ 'knit.mode': 'macvlan', parent: 'eth0', 'com.docker.network.bridge.enable_ip_masquerade': 'false' }, /does not apply to knit.mode=macvlan/],
    [{ parent: 'eth0' }, /option parent only applies to knit.mode=macvlan networks, not bridge/],
    [{ 'knit.mode': 'overlay', macvlan_mode: 'bridge' }, /macvlan_mode only applies to knit.mode=macvlan networks, not overlay/],
  ])('refuses %p', (generic, msg) => {
    expect(() => spec(generic)).toThrow(msg);
  });
});

describe('macvlan plans', () => {
  test.each(['bridge', 'private', 'vepa', 'passthru'])('a container\'s interface is a %s macvlan of the parent, made with its MAC and no address', (mode) => {
    const n = net({ parent: 'ul0', macvlan_mode: mode });
    const ep = endpoint(n);
    expect(ep.hostIf).toBe('knccccccccccccc');
    expect(ep.peerIf).toBe('knccccccccccccc');
    expect(lines(planEndpoint(n, ep))).toEqual([
      `link add link ul0 name knccccccccccccc mtu 1500 address 02:00:00:00:00:01 type macvlan mode ${mode}`,
      'link set knccccccccccccc alias knit:ep:cccccccccccc',
    ]);
    expect(planNetwork(n)).toEqual([]);
    expect(lines(planEndpointRemoval(ep))).toEqual(['link del knccccccccccccc']);
  });
  test('the host leg: a bridge-mode macvlan of the parent with no address, and a host route per container address', () => {
    const n = net({ parent: 'ul0', 'knit.macvlan.host': 'true' });
    expect(lines(planNetwork(n))).toEqual(['link add link ul0 name kn-aaaaaaaaaaaa mtu 1500 address 02:de:0f:a1:43:f0 up type macvlan mode bridge', 'link set kn-aaaaaaaaaaaa alias knit:net:aaaaaaaaaaaa']);
    const ep = endpoint(n, { addressV6: 'fd00::7/64' });
    expect(hostRoutes(n as Parameters<typeof hostRoutes>[0], ep)).toEqual([{ dst: '198.18.0.7/32', dev: 'kn-aaaaaaaaaaaa' }, { dst: 'fd00::7/128', dev: 'kn-aaaaaaaaaaaa' }]);
    expect(lines(planEndpoint(n, ep))).toContain('route replace 198.18.0.7/32 dev kn-aaaaaaaaaaaa');
    // The host never ARPs from the leg (its sender address would re-point the host's address at the leg's MAC on the LAN).
    expect(lines(planEndpoint(n, ep))).toContain('neigh replace 198.18.0.7 lladdr 02:00:00:00:00:01 dev kn-aaaaaaaaaaaa nud permanent');
    const removal = ['route flush exact 198.18.0.7/32 dev kn-aaaaaaaaaaaa', 'route flush exact fd00::7/128 dev kn-aaaaaaaaaaaa', 'link del knccccccccccccc',
      'neigh flush to 198.18.0.7 dev kn-aaaaaaaaaaaa nud all', 'neigh flush to fd00::7 dev kn-aaaaaaaaaaaa nud all'];
    expect(lines(planEndpointRemoval(ep))).toEqual(removal);
    expect(lines(planNetworkRemoval(n, [ep]))).toEqual([...removal.slice(0, 3), 'link del kn-aaaaaaaaaaaa', ...removal.slice(3)]);
  });
  test('a host leg made again has the same MAC (the containers\' neighbour entries for the host stay right)', () => {
    const n = net({ parent: 'ul0', 'knit.macvlan.host': 'true' });
    expect(planNetwork(n)).toEqual(planNetwork({ ...n }));
    expect(planNetwork(net({ parent: 'ul0', 'knit.macvlan.host': 'true' }, ID2))[0]).not.toMatchObject({ mac: '02:de:0f:a1:43:f0' });
  });
  test('no host leg: no routes, and nothing on the host for the network itself', () => {
    const n = net({ parent: 'ul0' });
    expect(endpoint(n).hostRoutes).toEqual([]);
    expect(planNetworkRemoval(n, [])).toEqual([]);
  });
});

describe('macvlan parents', () => {
  const mv = (generic: Record<string, unknown>, id = ID) => net(generic, id) as Parameters<typeof planParent>[0]['net'];
  test('an existing parent: nothing to make, and the network takes its MTU', () => {
    expect(planParent({ net: { ...mv({ parent: 'ul0' }), mtu: undefined }, others: [], links: [link('ul0', { mtu: 9000 })] })).toEqual({ mtu: 9000 });
  });
  test('with a host leg, the parent\'s own address in the subnet becomes the source of the host\'s routes', () => {
    const links = [link('ul0', { addrs: ['10.0.0.5/8', '198.18.0.1/24'] })];
    expect(planParent({ net: mv({ parent: 'ul0', 'knit.macvlan.host': 'true' }), others: [], links }).source).toBe('198.18.0.1');
    expect(planParent({ net: mv({ parent: 'ul0' }), others: [], links }).source).toBeUndefined();
    const n = { ...net({ parent: 'ul0', 'knit.macvlan.host': 'true' }), hostLegSource: '198.18.0.1' };
    expect(lines(planEndpoint(n, endpoint(n)))).toContain('route replace 198.18.0.7/32 dev kn-aaaaaaaaaaaa src 198.18.0.1');
  });
  test('a missing IF.VID whose IF exists: an 802.1q sub-interface to make', () => {
    const plan = planParent({ net: mv({ parent: 'ul0.42' }), others: [], links: [link('ul0')] });
    expect(plan.make).toEqual({ op: 'vlan-add', name: 'ul0.42', link: 'ul0', vid: 42, up: true });
    expect(lines([plan.make!])).toEqual(['link add link ul0 name ul0.42 up type vlan id 42']);
    expect(renderBatches([plan.make!]).ip).toHaveLength(1);
  });
  test('an IF.VID that exists already (the user\'s, or knit\'s for another network) is used as it is', () => {
    expect(planParent({ net: mv({ parent: 'ul0.42' }), others: [], links: [link('ul0'), link('ul0.42')] }).make).toBeUndefined();
  });
  test.each([
    ['ul9', undefined, /parent interface ul9 does not exist on this host; give an existing interface/],
    ['ul9.5', undefined, /parent interface ul9.5 does not exist on this host, and neither does ul9/],
    ['ul0', 9000, /MTU 9000 is larger than the MTU 1500 of parent ul0/],
  ])('refuses parent %s with MTU %p', (parent, mtu, msg) => {
    expect(() => planParent({ net: { ...mv({ parent }), mtu }, others: [], links: [link('ul0')] })).toThrow(msg);
  });
  test('passthru takes a parent alone, both ways', () => {
    const links = [link('ul0')];
    expect(() => planParent({ net: mv({ parent: 'ul0', macvlan_mode: 'passthru' }), others: [net({ parent: 'ul0' }, ID2)], links })).toThrow(/passthru gives a parent to one network only/);
    expect(() => planParent({ net: mv({ parent: 'ul0' }), others: [net({ parent: 'ul0', macvlan_mode: 'passthru' }, ID2)], links })).toThrow(/already used by knit macvlan network bbbbbbbbbbbb/);
    expect(planParent({ net: mv({ parent: 'ul0' }), others: [net({ parent: 'ul0' }, ID2)], links })).toEqual({ mtu: 1500 });
  });
  test('a sub-interface goes with the last network that uses it, and only if knit made it', () => {
    const n = mv({ parent: 'ul0.42' });
    expect(parentToRelease({ net: n, others: [], made: ['ul0.42'] })).toBe('ul0.42');
    expect(parentToRelease({ net: n, others: [net({ parent: 'ul0.42' }, ID2)], made: ['ul0.42'] })).toBeUndefined();
    expect(parentToRelease({ net: n, others: [], made: [] })).toBeUndefined();
    expect(parentToRelease({ net: mv({ parent: 'ul0' }), others: [], made: ['ul0.42'] })).toBeUndefined();
  });
});

describe('macvlan reconcile', () => {
  const legNet = net({ parent: 'ul0.42', 'knit.macvlan.host': 'true' });
  test('a missing sub-interface knit made, a missing host leg with its routes, a child not yet joined: all made again', () => {
    const ep = endpoint(legNet);
    const plan = planReconcile({ nets: [legNet], eps: [ep], links: [link('ul0')], made: ['ul0.42'] });
    expect(plan.repairs.map((r) => r.finding)).toEqual([
      '802.1q parent ul0.42 of macvlan network aaaaaaaaaaaa was missing',
      'host leg kn-aaaaaaaaaaaa of macvlan network aaaaaaaaaaaa was missing',
      'macvlan knccccccccccccc of endpoint cccccccccccc was missing',
    ]);
    expect(plan.repairs.flatMap((r) => lines(r.ops))).toEqual([
      'link add link ul0 name ul0.42 up type vlan id 42',
      'link add link ul0.42 name kn-aaaaaaaaaaaa mtu 1500 address 02:de:0f:a1:43:f0 up type macvlan mode bridge', 'link set kn-aaaaaaaaaaaa alias knit:net:aaaaaaaaaaaa',
      'route replace 198.18.0.7/32 dev kn-aaaaaaaaaaaa',
      'neigh replace 198.18.0.7 lladdr 02:00:00:00:00:01 dev kn-aaaaaaaaaaaa nud permanent',
      'link add link ul0.42 name knccccccccccccc mtu 1500 address 02:00:00:00:00:01 type macvlan mode bridge', 'link set knccccccccccccc alias knit:ep:cccccccccccc',
      'route replace 198.18.0.7/32 dev kn-aaaaaaaaaaaa',
      'neigh replace 198.18.0.7 lladdr 02:00:00:00:00:01 dev kn-aaaaaaaaaaaa nud permanent',
    ]);
    expect(plan.orphans).toEqual([]);
  });
  test('a missing parent the user made is reported, never made; a joined endpoint\'s link lives in its container', () => {
    const ep = endpoint(legNet, { sandboxKey: '/var/run/docker/netns/x' });
    const links = [link('ul0'), link('kn-aaaaaaaaaaaa', { kind: 'macvlan', alias: 'knit:net:aaaaaaaaaaaa' })];
    const plan = planReconcile({ nets: [legNet], eps: [ep], links, made: [] });
    expect(plan.repairs).toEqual([]);
    expect(plan.findings).toEqual(['parent ul0.42 of macvlan network aaaaaaaaaaaa is missing: its containers lost their interfaces; bring it back and restart them']);
  });
  test('a host leg that is down is brought up; links with no record and sub-interfaces no network uses go', () => {
    const links = [link('ul0.42'), link('kn-aaaaaaaaaaaa', { kind: 'macvlan', alias: 'knit:net:aaaaaaaaaaaa', up: false }), link('kncdddddddddddd', { kind: 'macvlan', alias: 'knit:ep:dddddddddddd' })];
    const plan = planReconcile({ nets: [legNet], eps: [], links, made: ['ul0.42', 'ul0.7'] });
    expect(plan.repairs).toEqual([{ finding: 'host leg kn-aaaaaaaaaaaa of macvlan network aaaaaaaaaaaa was down', ops: [{ op: 'link-up', name: 'kn-aaaaaaaaaaaa' }] }]);
    expect(plan.orphans).toEqual([{ op: 'link-del', name: 'kncdddddddddddd' }]);
    expect(plan.unusedParents).toEqual(['ul0.7']);
    expect(planReconcile({ nets: [], eps: [], links, made: ['ul0.42'] }).unusedParents).toEqual(['ul0.42']);
  });
});
