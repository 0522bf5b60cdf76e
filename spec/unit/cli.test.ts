// The knit command line: which words run what, and how status and doctor read for a person.
import { parseArgs } from '../../src/cli/args.js';
import { unreachable } from '../../src/cli/client.js';
import { formatDoctor, formatStatus, metricsLine, port, storeLine, table, type DoctorDocument } from '../../src/cli/format.js';
import type { StatusDocument } from '../../src/status.js';

describe('parseArgs', () => {
  test('no command runs the daemon, as the systemd unit and the plugin entry point start it', () => {
    expect(parseArgs([])).toEqual({ kind: 'daemon' });
    expect(parseArgs(['daemon'])).toEqual({ kind: 'daemon' });
  });

  test('status and doctor take --json and --socket', () => {
    expect(parseArgs(['status'])).toEqual({ kind: 'ask', what: 'status', json: false });
    expect(parseArgs(['doctor', '--json'])).toEqual({ kind: 'ask', what: 'doctor', json: true });
    expect(parseArgs(['status', '--socket', '/run/docker/plugins/abc/knit.sock', '--json']))
      .toEqual({ kind: 'ask', what: 'status', json: true, socket: '/run/docker/plugins/abc/knit.sock' });
    expect(parseArgs(['status', '--socket=/tmp/k.sock'])).toEqual({ kind: 'ask', what: 'status', json: false, socket: '/tmp/k.sock' });
  });

  test('--help, -h and help anywhere print the usage', () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['status', '--help'], ['daemon', '-h']]) expect(parseArgs(argv)).toEqual({ kind: 'help' });
  });

  test('an unknown command, option or a relative socket is a usage error naming the word', () => {
    expect(parseArgs(['stats'])).toEqual({ kind: 'usage', problem: 'unknown command "stats"' });
    expect(parseArgs(['status', '-j'])).toEqual({ kind: 'usage', problem: 'knit status does not take "-j"' });
    expect(parseArgs(['status', '--socket'])).toMatchObject({ kind: 'usage', problem: expect.stringContaining('--socket') });
    expect(parseArgs(['doctor', '--socket', 'knit.sock'])).toMatchObject({ kind: 'usage' });
    expect(parseArgs(['daemon', '--json'])).toMatchObject({ kind: 'usage', problem: expect.stringContaining('"--json"') });
  });
});

test('rotate-key asks the daemon like status and doctor', () => {
  expect(parseArgs(['rotate-key'])).toEqual({ kind: 'ask', what: 'rotate-key', json: false });
  expect(parseArgs(['rotate-key', '--json', '--socket=/tmp/k.sock'])).toEqual({ kind: 'ask', what: 'rotate-key', json: true, socket: '/tmp/k.sock' });
  expect(parseArgs(['rotate-key', 'now'])).toEqual({ kind: 'usage', problem: 'knit rotate-key does not take "now"' });
});

test('the WireGuard part: which backend runs, the tunnel, each peer\'s last handshake and bytes; or that none is in use', () => {
  const now = Math.round(Date.now() / 1000);
  const wireguard = {
    backend: 'wireguard-go' as const, device: 'kwg3f2a9c1e0b7d', address: '169.254.64.1', publicKey: 'K'.repeat(43) + '=', listenPort: 51820, up: true,
    peers: [{ host: '77aa88bb99cc00dd', endpoint: '10.0.0.2:51820', address: '169.254.64.2', latestHandshake: now - 5, rx: 1200, tx: 3400 }],
  };
  const text = formatStatus({ ...doc, wireguard });
  expect(text).toContain(`WireGuard: wireguard-go (userspace: the kernel has no WireGuard), kwg3f2a9c1e0b7d 169.254.64.1 port 51820, public key ${'K'.repeat(43)}=\n`);
  expect(text).toMatch(/^  77aa88bb99cc00dd\s+10\.0\.0\.2:51820\s+169\.254\.64\.2\s+[56] s ago\s+1200\/3400$/m);
  expect(formatStatus({ ...doc, wireguard: { ...wireguard, up: false, peers: [] } })).toContain('WireGuard: not in use (no encrypted overlay on this host); backend wireguard-go\n');
  expect(formatStatus(doc)).not.toContain('WireGuard');
});

test('a socket nobody listens on is one sentence: knit is not running', () => {
  expect(unreachable('/run/docker/plugins/knit.sock', 'ENOENT')).toBe('knit is not running: cannot reach /run/docker/plugins/knit.sock');
  expect(unreachable('/s', 'ECONNREFUSED')).toBe('knit is not running: cannot reach /s');
  expect(unreachable('/s', 'EACCES')).toMatch(/permission denied .*run as root/);
});

const calls = {
  '/NetworkDriver.CreateEndpoint': { count: 12, errors: 0, p50: 1.24, p99: 3.5, max: 4 },
  '/IpamDriver.RequestAddress': { count: 3, errors: 1, p50: 0.5, p99: 120.4, max: 121 },
};
const doc: StatusDocument = {
  host: '3f2a9c1e0b7d4a55',
  store: { kind: 'etcd', reachable: true, lease: 'held' },
  networks: [
    { id: '4be1c0ffee12', mode: 'bridge', bridge: 'kn-4be1c0ffee12', subnets: ['10.208.0.0/24'], endpoints: 1 },
    { id: '9d0e7a6b5c4d', mode: 'overlay', bridge: 'knv9d0e7a6b5c4', subnets: ['10.50.0.0/24', 'fd00::/64'], vni: 4242, endpoints: 0 },
  ],
  endpoints: [{
    id: 'aa11bb22cc33', network: '4be1c0ffee12', address: '10.208.0.2/24', addressV6: 'fd6b::2/64',
    ports: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 8080 }, { proto: 'udp', containerPort: 53, hostIp: '::1', hostPort: 5353 }],
  }],
  peers: [{ host: '77aa88bb99cc00dd', vtep: '10.0.0.2', endpoints: 3 }],
  calls,
  spawned: { ip: 7, bridge: 0, 'iptables-restore': 2 },
  rssBytes: 83 * 1024 * 1024,
};

describe('formatStatus', () => {
  const text = formatStatus(doc);
  const lines = text.split('\n');

  test('one heading per part, in order, each with its count', () => {
    expect(lines.filter((l) => /^\S/.test(l)).map((l) => l.split(':')[0]))
      .toEqual(['Host', 'Store', 'Networks', 'Endpoints', 'Peers', 'Calls', 'Processes', 'Memory']);
    expect(text).toContain('Host:      3f2a9c1e0b7d4a55\n');
    expect(text).toContain('Store:     etcd, reachable, lease held\n');
    expect(text).toContain('Networks:  2\n');
    expect(text).toContain('Calls:     15 since start');
    expect(text).toContain('Processes: ip 7, iptables-restore 2 (spawned since start)\n');
    expect(text).toContain('Memory:    83 MB resident\n');
  });

  test('tables line their columns up under the headers', () => {
    const header = lines.find((l) => l.startsWith('  ID') && l.includes('MODE'))!;
    const overlay = lines.find((l) => l.includes('9d0e7a6b5c4d'))!;
    expect(overlay.indexOf('overlay vni 4242')).toBe(header.indexOf('MODE'));
    expect(overlay.indexOf('10.50.0.0/24 fd00::/64')).toBe(header.indexOf('SUBNETS'));
    expect(overlay.trimEnd().endsWith(' 0')).toBe(true);
  });

  test('endpoints show both addresses and every published port', () => {
    expect(lines.find((l) => l.includes('aa11bb22cc33'))).toMatch(/10\.208\.0\.2\/24 fd6b::2\/64\s+0\.0\.0\.0:8080->80\/tcp, \[::1\]:5353->53\/udp$/);
  });

  test('peers with their VTEP and endpoint count; calls with count, p50, p99 and errors', () => {
    expect(lines.find((l) => l.includes('77aa88bb99cc00dd'))).toMatch(/^  77aa88bb99cc00dd\s+10\.0\.0\.2\s+3$/);
    expect(lines.find((l) => l.includes('NetworkDriver.CreateEndpoint'))).toMatch(/NetworkDriver\.CreateEndpoint\s+12\s+1\.2 ms\s+3\.5 ms\s+0$/);
    expect(lines.find((l) => l.includes('IpamDriver.RequestAddress'))).toMatch(/\s+3\s+0\.5 ms\s+120 ms\s+1$/);
  });

  test('an empty host says none instead of printing empty tables; the embedded store has no peers part', () => {
    const empty = formatStatus({ ...doc, store: { kind: 'local', reachable: true }, networks: [], endpoints: [], peers: undefined, calls: {}, spawned: { ip: 0 } });
    expect(empty).toContain('Store:     local (embedded, this host only)\n');
    expect(empty).toContain('Networks:  none\n');
    expect(empty).toContain('Endpoints: none\n');
    expect(empty).toContain('Calls:     none yet\n');
    expect(empty).toContain('Processes: none spawned since start\n');
    expect(empty).not.toContain('Peers');
  });
});

test('store line: an unreachable store and a lost lease stand out', () => {
  expect(storeLine({ kind: 'consul', reachable: false, error: 'the consul store did not answer within 2000 ms', lease: 'unknown' }))
    .toBe('consul, UNREACHABLE (the consul store did not answer within 2000 ms), lease unknown');
  expect(storeLine({ kind: 'etcd', reachable: true, lease: 'lost' })).toMatch(/^etcd, reachable, lease LOST/);
});

test('metrics line: where to scrape (or why not), shown after the store only when KNIT_METRICS is set', () => {
  expect(metricsLine({ address: '127.0.0.1:9464', listening: true })).toBe('http://127.0.0.1:9464/metrics');
  expect(metricsLine({ address: 'unix:///run/knit-metrics.sock', listening: true })).toBe('unix:///run/knit-metrics.sock, GET /metrics');
  expect(metricsLine({ address: '127.0.0.1:9464', listening: false, error: 'EADDRINUSE' })).toBe('NOT served on 127.0.0.1:9464 (EADDRINUSE)');
  const lines = formatStatus({ ...doc, metrics: { address: '[::1]:9464', listening: true } }).split('\n');
  expect(lines[2]).toBe('Metrics:   http://[::1]:9464/metrics');
  expect(formatStatus(doc)).not.toContain('Metrics:');
});

test('port: host address, host port, container port and protocol, IPv6 in brackets', () => {
  expect(port({ proto: 'tcp', containerPort: 80, hostIp: '127.0.0.1', hostPort: 18080 })).toBe('127.0.0.1:18080->80/tcp');
  expect(port({ proto: 'sctp', containerPort: 9, hostIp: '::', hostPort: 9 })).toBe('[::]:9->9/sctp');
});

test('table pads every column but the last', () => {
  expect(table(['A', 'BB'], [['xxx', 'y']])).toEqual(['  A    BB', '  xxx  y']);
});

describe('formatDoctor', () => {
  const clean: DoctorDocument = {
    findings: [], repaired: 0, removed: 0, failures: [], firewallJumpsFixed: 0,
    orphanNetworks: 0, restoredAddresses: 0, staleEndpoints: 0, leakedAddresses: 0, segments: 0,
  };

  test('nothing found: one line that says so', () => {
    expect(formatDoctor(clean)).toBe('knit doctor: records, kernel links, firewall and addresses agree; nothing to fix\n');
  });

  test('no finding but something put right (a firewall jump dockerd pushed aside): says what was fixed', () => {
    expect(formatDoctor({ ...clean, firewallJumpsFixed: 1 })).toBe('knit doctor: records and kernel links agree\nFixed:\n  1 firewall jumps restored\n');
  });

  test('findings, what was fixed (only the non-zero counts) and what could not be', () => {
    const text = formatDoctor({
      ...clean, findings: ['link kn-0123 (knit:net) has no record'], removed: 1, leakedAddresses: 2,
      failures: ['veth knh1 gone: ip failed'],
    });
    expect(text).toBe([
      'knit doctor: 1 finding',
      '  - link kn-0123 (knit:net) has no record',
      'Fixed:',
      '  1 links without a record removed',
      '  2 leaked addresses released',
      'Could not fix:',
      '  - veth knh1 gone: ip failed',
      '',
    ].join('\n'));
  });
});
