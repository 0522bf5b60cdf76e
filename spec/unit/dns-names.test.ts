// Names (issue 13): what a host publishes, what a querier may see, and the index the resolver answers from.
import { namesFromInspect, type InspectReply } from '../../src/engine/containers.js';
import { negotiate } from '../../src/engine/client.js';
import { parseDnsAddress, parseDockerHost } from '../../src/config.js';
import { desiredRecords, networkKey, querierIndex, resolverMisses } from '../../src/names/plan.js';
import { encodeName, nameKey, splitKey } from '../../src/names/records.js';
import { parseEndpointKey } from '../../src/network/overlay/keys.js';
import { NameTable } from '../../src/names/table.js';
import { dnsServersOf, planDnsRoute } from '../../src/network/dns.js';
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';
import { createLogger } from '../../src/log.js';
import { engineHints, ENDPOINT_NAME_OPTION } from '../../src/protocol/engine-hints.js';

const id = (c: string) => c.repeat(64);
const net = (c: string, extra: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id: id(c), mode: 'bridge', bridge: `kn-${c}`, icc: true, masquerade: true, internal: false, knitIpam: true,
  ipv4: [{ subnet: '10.50.0.0/24', gateway: '10.50.0.1/24' }], ipv6: [], createdAt: '', ...extra,
});
const ep = (c: string, network: string, address: string, sandboxKey?: string, extra: Partial<EndpointRecord> = {}): EndpointRecord => ({
  id: id(c), networkId: network, hostIf: 'h', peerIf: 'p', mac: '02:00:00:00:00:01', address, ports: [], createdAt: '',
  ...(sandboxKey ? { sandboxKey } : {}), ...extra,
});

describe('names from the engine', () => {
  const base: InspectReply = {
    Id: id('c'), Name: '/Demo1', State: { Running: true }, Config: { Hostname: 'cccccccccccc' },
    NetworkSettings: { Networks: { ov: { NetworkID: id('a'), EndpointID: id('e'), Aliases: ['Web', 'cccccccccccc', 'bad name!'] } } },
  };
  test('20.10 (no DNSNames): name, aliases, short ID and hostname, lower-case, invalid dropped, no duplicates', () => {
    expect(namesFromInspect(base)).toEqual({ id: id('c'), endpoints: [{ endpointId: id('e'), networkId: id('a'), names: ['demo1', 'web', 'cccccccccccc'] }] });
  });
  test('DNSNames (API 1.44+) is taken as it is', () => {
    const c = { ...base, NetworkSettings: { Networks: { ov: { NetworkID: id('a'), EndpointID: id('e'), Aliases: ['x'], DNSNames: ['demo1', 'svc', 'cccccccccccc'] } } } };
    expect(namesFromInspect(c)?.endpoints[0].names).toEqual(['demo1', 'svc', 'cccccccccccc']);
  });
  test('a stopped container has no names; an endpoint without IDs (default bridge before start) is skipped', () => {
    expect(namesFromInspect({ ...base, State: { Running: false } })).toBeUndefined();
    const c = { ...base, NetworkSettings: { Networks: { bridge: { NetworkID: id('b'), EndpointID: '' } } } };
    expect(namesFromInspect(c)).toEqual({ id: id('c'), endpoints: [] });
  });
  test('API versions: the engine\'s, capped at the newest knit reads; older than 20.10 refused', () => {
    expect(negotiate('1.41')).toBe('1.41');
    expect(negotiate('1.45')).toBe('1.45');
    expect(negotiate('1.52')).toBe('1.51');
    expect(() => negotiate('1.40')).toThrow(/1\.41 \(Docker 20\.10\) or newer/);
    expect(() => negotiate('x')).toThrow(/not a version/);
  });
});

describe('what a host publishes', () => {
  const ov = net('a', { mode: 'overlay', vni: 4100, ipv4: [{ subnet: '10.60.0.0/24', gateway: '10.60.0.1/24' }] });
  const br = net('b');
  const networks = new Map([[ov.id, ov], [br.id, br]]);
  const containers = [{ id: id('c'), endpoints: [
    { endpointId: id('1'), networkId: ov.id, names: ['demo1', 'web'] },
    { endpointId: id('2'), networkId: br.id, names: ['demo1'] },
    { endpointId: id('3'), networkId: br.id, names: ['ghost'] },
  ] }];
  test('joined knit endpoints of running containers, keyed by segment (overlay, shared with the other hosts) or network ID (bridge, this host\'s only)', () => {
    const endpoints = new Map([[id('1'), ep('1', ov.id, '10.60.0.5/24', '/sb/1')], [id('2'), ep('2', br.id, '10.50.0.5/24', '/sb/1')]]);
    const out = desiredRecords({ hostId: 'h1', containers, endpoints, networks });
    expect(networkKey(ov)).toBe('10.60.0.0_24');
    expect([...out]).toEqual([
      [nameKey('10.60.0.0_24', 'h1', id('1')), { value: encodeName({ names: ['demo1', 'web'], v4: ['10.60.0.5'], v6: [] }), shared: true }],
      [nameKey(br.id, 'h1', id('2')), { value: encodeName({ names: ['demo1'], v4: ['10.50.0.5'], v6: [] }), shared: false }],
    ]);
    // Beside the endpoint's overlay record, in the prefix the other hosts watch; not an endpoint record itself.
    expect(nameKey('10.60.0.0_24', 'h1', id('1'))).toBe(`overlay/endpoints/10.60.0.0_24/h1/${id('1')}/name`);
    expect(parseEndpointKey(nameKey('10.60.0.0_24', 'h1', id('1')))).toBeUndefined();
    expect(splitKey(nameKey('10.60.0.0_24', 'h1', id('1')))).toEqual({ network: '10.60.0.0_24', host: 'h1', endpoint: id('1') });
    expect(splitKey(`overlay/endpoints/10.60.0.0_24/h1/${id('1')}`)).toBeUndefined();
    expect(splitKey('overlay/endpoints/10.60.0.0_24/h1/')).toBeUndefined();
  });
  test('an endpoint that has not joined (or left) publishes nothing', () => {
    const endpoints = new Map([[id('1'), ep('1', ov.id, '10.60.0.5/24')]]);
    expect(desiredRecords({ hostId: 'h1', containers, endpoints, networks }).size).toBe(0);
  });
  test('dockerd 29+\'s RequestAddress name publishes a joined endpoint before the engine reports it; the engine\'s names then win', () => {
    const endpoints = new Map([[id('1'), ep('1', ov.id, '10.60.0.5/24', '/sb/1')], [id('6'), ep('6', ov.id, '10.60.0.6/24', '/sb/6')], [id('7'), ep('7', ov.id, '10.60.0.7/24')]]);
    const hinted = new Map([['10.60.0.5', 'Ignored'], ['10.60.0.6', 'New29'], ['10.60.0.7', 'notjoined']]);
    const out = desiredRecords({ hostId: 'h1', containers, endpoints, networks, endpointName: (ip) => hinted.get(ip) });
    expect([...out]).toEqual([
      [nameKey('10.60.0.0_24', 'h1', id('1')), { value: encodeName({ names: ['demo1', 'web'], v4: ['10.60.0.5'], v6: [] }), shared: true }],
      [nameKey('10.60.0.0_24', 'h1', id('6')), { value: encodeName({ names: ['new29'], v4: ['10.60.0.6'], v6: [] }), shared: true }],
    ]);
    // Once the engine has reported an endpoint its word is final: gone from its list (the container died) means gone.
    expect(desiredRecords({ hostId: 'h1', containers: [], endpoints, networks, endpointName: (ip) => hinted.get(ip), reported: new Set([id('6')]) }).has(nameKey('10.60.0.0_24', 'h1', id('6')))).toBe(false);
    // A name that is not a DNS name publishes nothing.
    expect(desiredRecords({ hostId: 'h1', containers: [], endpoints, networks, endpointName: () => 'bad name!' }).size).toBe(0);
  });
  test('engine hints keep the name per address while it is held: replaced by the next request, gone with the release', () => {
    const hints = engineHints(createLogger('error'));
    hints.addressGiven({ [ENDPOINT_NAME_OPTION]: 'web' }, '10.9.0.2/24');
    hints.addressGiven(null, '10.9.0.3/24');
    expect(hints.endpointName('10.9.0.2')).toBe('web');
    expect(hints.endpointName('10.9.0.3')).toBeUndefined();
    hints.addressReleased('10.9.0.2');
    expect(hints.endpointName('10.9.0.2')).toBeUndefined();
    hints.addressGiven({ [ENDPOINT_NAME_OPTION]: 'db' }, '10.9.0.3/24');
    hints.addressGiven({}, '10.9.0.3/24');
    expect(hints.endpointName('10.9.0.3')).toBeUndefined();
  });
  test('a querier sees every knit network of its sandbox, and no other', () => {
    const eps = [ep('1', ov.id, '10.60.0.5/24', '/sb/1'), ep('2', br.id, '10.50.0.5/24', '/sb/1'), ep('4', br.id, '10.50.0.9/24', '/sb/2'), ep('5', br.id, '10.50.0.7/24')];
    const q = querierIndex(eps, networks);
    expect(q.get('10.60.0.5')).toEqual({ networks: [br.id, '10.60.0.0_24'].sort(), external: true });
    expect(q.get('10.50.0.9')).toEqual({ networks: [br.id], external: true });
    expect(q.has('10.50.0.7')).toBe(false);
    expect(q.has('10.50.0.1')).toBe(false);
  });
  test('a sandbox only on internal networks gets no external names; one non-internal network is enough', () => {
    const int = net('i', { internal: true, ipv4: [{ subnet: '10.62.0.0/24', gateway: '10.62.0.1/24' }] });
    const nets = new Map([...networks, [int.id, int]]);
    const q = querierIndex([ep('1', int.id, '10.62.0.5/24', '/sb/1'), ep('2', int.id, '10.62.0.6/24', '/sb/2'), ep('3', br.id, '10.50.0.6/24', '/sb/2')], nets);
    expect(q.get('10.62.0.5')?.external).toBe(false);
    expect(q.get('10.62.0.6')).toEqual({ networks: [br.id, int.id].sort(), external: true });
  });
  test('endpoints whose DNS servers lack the resolver are named; unknown (internal, older records) are not', () => {
    const eps = [ep('1', br.id, '', undefined, { dnsServers: [] }), ep('2', br.id, '', undefined, { dnsServers: ['169.254.53.53'] }), ep('3', br.id, '')];
    expect(resolverMisses(eps, '169.254.53.53').map((e) => e.id)).toEqual([id('1')]);
    expect(dnsServersOf(br, { 'com.docker.network.endpoint.dnsservers': ['169.254.53.53', 7] })).toEqual({ dnsServers: ['169.254.53.53'] });
    expect(dnsServersOf(br, {})).toEqual({ dnsServers: [] });
    expect(dnsServersOf(net('c', { internal: true }), {})).toEqual({});
  });
});

describe('the name table', () => {
  const t = new NameTable();
  const put = (network: string, host: string, e: string, names: string[], v4: string[], v6: string[] = []) =>
    t.set(nameKey(network, host, e), encodeName({ names, v4, v6 }));
  put('seg', 'h1', 'e1', ['demo1', 'web'], ['10.60.0.5']);
  put('seg', 'h2', 'e2', ['demo2', 'web'], ['10.60.0.6'], ['fd00::6']);
  put('other', 'h3', 'e3', ['demo3'], ['10.61.0.5']);
  test('an alias held on two hosts answers with both addresses; a name with the family missing gives an empty list', () => {
    expect(t.lookup('web', ['seg'])).toEqual({ v4: ['10.60.0.5', '10.60.0.6'], v6: ['fd00::6'] });
    expect(t.lookup('demo1', ['seg'])).toEqual({ v4: ['10.60.0.5'], v6: [] });
  });
  test('names of networks the asker is not on are not answered', () => {
    expect(t.lookup('demo3', ['seg'])).toBeUndefined();
    expect(t.lookup('demo3', ['other'])).toEqual({ v4: ['10.61.0.5'], v6: [] });
    expect(t.reverse('10.61.0.5', ['seg'])).toBeUndefined();
    expect(t.reverse('10.60.0.6', ['seg'])).toBe('demo2');
  });
  test('a deleted or malformed record answers nothing any more', () => {
    t.set(nameKey('seg', 'h2', 'e2'), undefined);
    expect(t.lookup('web', ['seg'])).toEqual({ v4: ['10.60.0.5'], v6: [] });
    expect(t.lookup('demo2', ['seg'])).toBeUndefined();
    t.set(nameKey('seg', 'h1', 'e1'), '{"v":1,"names":"demo1"}');
    expect(t.lookup('demo1', ['seg'])).toBeUndefined();
    expect(t.size).toBe(1);
  });
});

describe('resolver route and settings', () => {
  const internal = net('i', { internal: true });
  const me = ep('1', internal.id, '10.50.0.5/24', '/sb/1');
  test('an internal network gets the /32 via its gateway, once per sandbox', () => {
    expect(planDnsRoute({ resolver: '169.254.53.53', net: internal, ep: me, sandboxKey: '/sb/1', others: [] }))
      .toEqual([{ destination: '169.254.53.53/32', nextHop: '10.50.0.1' }]);
    const other = { ep: ep('2', id('j'), '10.51.0.5/24', '/sb/1'), internal: true };
    expect(planDnsRoute({ resolver: '169.254.53.53', net: internal, ep: me, sandboxKey: '/sb/1', others: [other] })).toEqual([]);
    expect(planDnsRoute({ resolver: '169.254.53.53', net: internal, ep: me, sandboxKey: '/sb/2', others: [other] })).toHaveLength(1);
  });
  test('no route on a network with a default route, or with the resolver off', () => {
    expect(planDnsRoute({ resolver: '169.254.53.53', net: net('b'), ep: me, sandboxKey: '/sb/1', others: [] })).toEqual([]);
    expect(planDnsRoute({ net: internal, ep: me, sandboxKey: '/sb/1', others: [] })).toEqual([]);
  });
  test('KNIT_DNS_ADDRESS and KNIT_DOCKER_HOST', () => {
    expect(parseDnsAddress(undefined)).toBe('169.254.53.53');
    expect(parseDnsAddress('')).toBeUndefined();
    expect(() => parseDnsAddress('169.254.53.530')).toThrow(/KNIT_DNS_ADDRESS "169.254.53.530" is not an IPv4 address/);
    expect(() => parseDnsAddress('127.0.0.1')).toThrow(/loopback/);
    expect(parseDockerHost(undefined)).toBe('/var/run/docker.sock');
    expect(parseDockerHost('unix:///tmp/d.sock')).toBe('/tmp/d.sock');
    expect(() => parseDockerHost('tcp://1.2.3.4:2375')).toThrow(/is not unix:\/\/\/PATH/);
  });
});
