// knit's iptables chains: what each network option means in rules, and the restore text they render to.
import { KnitError } from '../../src/errors.js';
import { renderJump, renderRestore, renderRule } from '../../src/datapath/firewall.js';
import { CHAINS, jumps, planNetworkChains, planShared } from '../../src/network/firewall-plan.js';
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';

const net = (over: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id: 'ab'.repeat(32), mode: 'bridge', bridge: 'kn-abababababab', icc: true, masquerade: true, internal: false, knitIpam: true,
  ipv4: [{ subnet: '10.20.0.0/24', gateway: '10.20.0.1/24' }], ipv6: [], createdAt: '', ...over,
});
const ep: EndpointRecord = {
  id: 'cd'.repeat(32), networkId: 'ab'.repeat(32), hostIf: 'knhcdcdcdcdcdcd', peerIf: 'knccdcdcdcdcdcd', mac: '02:00:00:00:00:01',
  address: '10.20.0.2/24', ports: [{ proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }], createdAt: '',
};
const text = (n: NetworkRecord, eps: EndpointRecord[] = []) =>
  renderRestore([...planNetworkChains(n), ...planShared({ nets: [n], eps, dockerBridges: ['docker0'], family: 4 })]);

describe('firewall plans', () => {
  test('a default network: replies, ICC, published ports in; out except to Docker bridges; NAT', () => {
    const t = text(net(), [ep]);
    expect(t).toContain('-A KNIT-IN-abababababab -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
    expect(t).toContain('-A KNIT-IN-abababababab -i kn-abababababab -j ACCEPT');
    expect(t).toContain('-A KNIT-IN-abababababab -m conntrack --ctstate DNAT -j ACCEPT');
    expect(t).toMatch(/-A KNIT-IN-abababababab -j DROP\n/);
    expect(t).toContain('-A KNIT-FOREIGN -o docker0 -j DROP');
    expect(t).toContain('-A KNIT-POSTROUTING -s 10.20.0.0/24 ! -o kn-abababababab -j MASQUERADE');
    expect(t).toContain('-A KNIT-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.20.0.2:80');
  });
  test('ICC off drops traffic between members, before replies are accepted (a stale tracked flow lets nothing through)', () => {
    const rules = text(net({ icc: false })).split('\n').filter((l) => l.startsWith('-A KNIT-IN-abababababab '));
    expect(rules.slice(0, 2)).toEqual([
      '-A KNIT-IN-abababababab -i kn-abababababab -j DROP',
      '-A KNIT-IN-abababababab -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ]);
    expect(rules.filter((l) => l.includes('-i kn-abababababab -j ACCEPT'))).toEqual([]);
  });
  test('internal: no way out, no NAT, no published ports', () => {
    const t = text(net({ internal: true }), [ep]);
    expect(t).toContain('-A KNIT-OUT-abababababab -j DROP');
    expect(t).not.toContain('MASQUERADE');
    expect(t).not.toContain('DNAT --to');
  });
  test('masquerade off keeps hairpin NAT only', () => {
    const t = text(net({ masquerade: false }));
    expect(t).not.toContain('! -o kn-abababababab -j MASQUERADE');
    expect(t).toContain('-s 10.20.0.0/24 -o kn-abababababab -m conntrack --ctstate DNAT -j MASQUERADE');
  });
  test('chains are declared (flushed) before rules, removed chains deleted last', () => {
    const t = renderRestore([{ table: 'filter', name: CHAINS.forward, rules: [] }], [{ table: 'filter', name: 'KNIT-IN-000000000000' }]);
    expect(t).toBe('*filter\n:KNIT-FORWARD - [0:0]\n:KNIT-IN-000000000000 - [0:0]\n-X KNIT-IN-000000000000\nCOMMIT\n');
  });
  test('jumps go first in their built-in chain', () => {
    expect(renderJump(jumps(4)[0], false)).toBe('*filter\n-I FORWARD 1 -j KNIT-FORWARD\nCOMMIT\n');
    expect(renderJump(jumps(4)[3], true)).toContain('-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j KNIT-DNAT');
  });
  test.each([
    [{ in: '-x', target: 'ACCEPT' }, 'interface name "-x" must not start with "-"'],
    [{ in: 'a b', target: 'ACCEPT' }, 'interface name "a b" may contain only letters'],
    [{ src: '10.0.0.0/8;x', target: 'ACCEPT' }, 'rule address "10.0.0.0/8;x" is not in CIDR form'],
    [{ target: 'ACCEPT; reboot' }, 'iptables chain name "ACCEPT; reboot" may contain only letters'],
    [{ proto: 'tcp' as const, dport: 0, target: 'ACCEPT' }, 'port 0 is not between 1 and 65535'],
    [{ target: 'DNAT', toDestination: '1.2.3.4:80 --foo' }, 'DNAT destination "1.2.3.4:80 --foo" is malformed'],
  ])('refuses a malformed rule %p as a bad request naming what is wrong', (rule, message) => {
    let err: unknown;
    try {
      renderRule('KNIT-X', rule);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KnitError);
    expect(err).toMatchObject({ kind: 'bad-request', message: expect.stringContaining(message) });
  });
});
