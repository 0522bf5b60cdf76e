// Published ports: Docker's port map parsed strictly, host ports assigned without clashes.
import { assignPorts, EPHEMERAL, parsePortMap } from '../../src/network/ports.js';

const none = () => false;

describe('port maps', () => {
  test('parses tcp/udp entries and applies the default host IP', () => {
    const reqs = parsePortMap([
      { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
      { Proto: 17, IP: '', Port: 53, HostIP: '127.0.0.1', HostPort: 0, HostPortEnd: 0 },
    ], '0.0.0.0');
    expect(reqs).toEqual([
      { proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080, hostPortEnd: 8080 },
      { proto: 'udp', containerPort: 53, hostIp: '127.0.0.1', hostPort: 0, hostPortEnd: 0 },
    ]);
  });
  test.each([
    ['not a list', /must be a list/],
    [[{ Proto: 1, Port: 80 }], /protocol 1/],
    [[{ Proto: '6', Port: 80 }], /protocol 6 is not/],
    [[{ Proto: 6, Port: 0 }], /container port 0/],
    [[{ Proto: 6, Port: 80, HostPort: 70000 }], /host port range/],
    [[{ Proto: 6, Port: 80, HostPort: 90, HostPortEnd: 80 }], /host port range/],
    [[{ Proto: 6, Port: 80, HostIP: '1.2.3.4; reboot' }], /not an IP address/],
  ])('refuses %p', (raw, msg) => {
    expect(() => parsePortMap(raw, '0.0.0.0')).toThrow(msg);
  });
  test('a host port taken by another mapping or a host socket is refused', () => {
    const req = parsePortMap([{ Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 8080 }], '0.0.0.0');
    const taken = [{ proto: 'tcp' as const, containerPort: 81, hostIp: '0.0.0.0', hostPort: 8080 }];
    expect(() => assignPorts(req, taken, none)).toThrow(/host port 8080\/tcp on 0.0.0.0 is already in use/);
    expect(() => assignPorts(req, [], (p, n) => p === 'tcp' && n === 8080)).toThrow(/already in use/);
    // Same port, other protocol: no clash.
    expect(assignPorts(req, [{ ...taken[0], proto: 'udp' }], none)[0].hostPort).toBe(8080);
  });
  test('addresses: a wildcard clashes with every address of its family, two addresses do not clash', () => {
    const on = (hostIp: string) => parsePortMap([{ Proto: 6, Port: 80, HostIP: hostIp, HostPort: 8080, HostPortEnd: 8080 }], '0.0.0.0');
    const held = (hostIp: string) => [{ proto: 'tcp' as const, containerPort: 80, hostIp, hostPort: 8080 }];
    expect(assignPorts(on('127.0.0.2'), held('127.0.0.1'), none)[0].hostPort).toBe(8080);
    expect(() => assignPorts(on('127.0.0.2'), held('0.0.0.0'), none)).toThrow(/already in use/);
    expect(() => assignPorts(on('0.0.0.0'), held('127.0.0.1'), none)).toThrow(/already in use/);
    expect(assignPorts(on('::1'), held('0.0.0.0'), none)[0].hostPort).toBe(8080);
  });
  test('many full-range mappings each get their own port', () => {
    const reqs = parsePortMap(Array.from({ length: 1000 }, (_, i) => ({ Proto: 6, Port: i + 1, HostPort: 1, HostPortEnd: 65535 })), '0.0.0.0');
    const ports = assignPorts(reqs, [], none).map((m) => m.hostPort);
    expect(new Set(ports).size).toBe(1000);
    expect(Math.max(...ports)).toBe(1000);
  });
  test('-p PORT takes a free ephemeral port; a range takes its first free port', () => {
    const eph = parsePortMap([{ Proto: 6, Port: 80, HostPort: 0 }], '0.0.0.0');
    expect(assignPorts(eph, [], (_p, n) => n === EPHEMERAL.first)[0].hostPort).toBe(EPHEMERAL.first + 1);
    const range = parsePortMap([{ Proto: 6, Port: 80, HostPort: 9000, HostPortEnd: 9002 }], '0.0.0.0');
    expect(assignPorts(range, [], (_p, n) => n === 9000)[0].hostPort).toBe(9001);
  });
});
