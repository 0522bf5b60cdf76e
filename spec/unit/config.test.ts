// The KNIT_* settings: the defaults, what each setting turns into, and a clear bad-request error for every bad value.
import { DEFAULTS, parseConfig, parseMetricsAddress, parseStoreUrl } from '../../src/config.js';
import { KnitError } from '../../src/errors.js';
import { parsePoolSpecs } from '../../src/ipam/pools.js';

/** The error `run` throws: a bad request whose message contains `text`. */
function refused(run: () => unknown, text: string): void {
  let err: unknown;
  try {
    run();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KnitError);
  expect(err).toMatchObject({ kind: 'bad-request', message: expect.stringContaining(text) });
}

describe('parseConfig', () => {
  test('an empty environment gives the documented defaults', () => {
    expect(parseConfig({})).toEqual({
      socket: '/run/docker/plugins/knit.sock',
      stateDir: '/var/lib/knit',
      store: { kind: 'local' },
      logLevel: 'info',
      advertise: undefined,
      defaultPools: parsePoolSpecs(DEFAULTS.defaultPools),
      reclaimAfterSeconds: 3600,
      consulToken: undefined,
      etcdTls: undefined,
      logFormat: 'auto',
      dnsAddress: '169.254.53.53',
      dockerSocket: '/var/run/docker.sock',
      resolvConf: undefined,
      wireguard: { port: 51820, subnet: '169.254.64.0/18' },
    });
    expect(parseConfig({}).defaultPools.length).toBe(2);
  });

  test('an empty value counts as unset', () => {
    expect(parseConfig({ KNIT_SOCKET: '', KNIT_STATE_DIR: '', KNIT_STORE: '', KNIT_LOG_LEVEL: '', KNIT_RECLAIM_AFTER: '', KNIT_ADVERTISE: '', KNIT_CONSUL_TOKEN: '', KNIT_DEFAULT_POOLS: '' })).toEqual(parseConfig({}));
  });

  test('every setting is taken as given', () => {
    const c = parseConfig({
      KNIT_SOCKET: '/tmp/k.sock',
      KNIT_STATE_DIR: '/srv/knit',
      KNIT_STORE: 'consul://10.0.0.5:8500',
      KNIT_LOG_LEVEL: 'debug',
      KNIT_RECLAIM_AFTER: '0',
      KNIT_ADVERTISE: 'eth1',
      KNIT_CONSUL_TOKEN: 'secret',
      KNIT_DEFAULT_POOLS: '10.100.0.0/16:24',
      KNIT_LOG_FORMAT: 'json',
      KNIT_DNS_ADDRESS: '169.254.1.53',
      KNIT_DOCKER_HOST: 'unix:///run/docker-other.sock',
      KNIT_RESOLV_CONF: '/etc/knit-resolv.conf',
      KNIT_WG_PORT: '51900',
      KNIT_WG_SUBNET: '10.99.0.0/24',
      KNIT_WG_ROTATE: '12h',
    });
    expect(c).toEqual({
      socket: '/tmp/k.sock',
      stateDir: '/srv/knit',
      store: { kind: 'consul', host: '10.0.0.5', port: 8500 },
      logLevel: 'debug',
      advertise: 'eth1',
      defaultPools: parsePoolSpecs('10.100.0.0/16:24'),
      reclaimAfterSeconds: 0,
      consulToken: 'secret',
      etcdTls: undefined,
      logFormat: 'json',
      dnsAddress: '169.254.1.53',
      dockerSocket: '/run/docker-other.sock',
      resolvConf: '/etc/knit-resolv.conf',
      wireguard: { port: 51900, subnet: '10.99.0.0/24', rotateSeconds: 43_200 },
    });
  });

  test('any one etcd TLS file turns TLS on; the others stay unset', () => {
    expect(parseConfig({ KNIT_ETCD_CA: '/ca.pem' }).etcdTls).toEqual({ ca: '/ca.pem', cert: undefined, key: undefined });
    expect(parseConfig({ KNIT_ETCD_CERT: '/c.pem', KNIT_ETCD_KEY: '/k.pem' }).etcdTls).toEqual({ ca: undefined, cert: '/c.pem', key: '/k.pem' });
  });

  test.each([
    [{ KNIT_LOG_LEVEL: 'verbose' }, 'KNIT_LOG_LEVEL "verbose" is not one of error, warn, info, debug'],
    [{ KNIT_RECLAIM_AFTER: '1h' }, 'KNIT_RECLAIM_AFTER "1h" is not a number of seconds'],
    [{ KNIT_RECLAIM_AFTER: '-5' }, 'KNIT_RECLAIM_AFTER "-5" is not a number of seconds'],
    [{ KNIT_RECLAIM_AFTER: '1234567890' }, 'KNIT_RECLAIM_AFTER "1234567890" is not a number of seconds'],
    [{ KNIT_SOCKET: 'knit.sock' }, 'KNIT_SOCKET "knit.sock" must be an absolute path'],
    [{ KNIT_STATE_DIR: 'var/lib/knit' }, 'KNIT_STATE_DIR "var/lib/knit" must be an absolute path'],
    [{ KNIT_STORE: 'redis://h:1' }, 'KNIT_STORE "redis://h:1" is not "local"'],
    [{ KNIT_DEFAULT_POOLS: '10.0.0.0/8' }, 'KNIT_DEFAULT_POOLS entry "10.0.0.0/8" is not BASE/LEN:SIZE'],
    [{ KNIT_DEFAULT_POOLS: '10.0.0.0/16:8' }, 'KNIT_DEFAULT_POOLS entry "10.0.0.0/16:8": size must be between 16 and'],
    [{ KNIT_WG_PORT: '70000' }, 'KNIT_WG_PORT "70000" is not a UDP port (1-65535)'],
    [{ KNIT_WG_SUBNET: 'fd00::/64' }, 'KNIT_WG_SUBNET "fd00::/64" is not an IPv4 subnet of at least 4 addresses'],
    [{ KNIT_WG_SUBNET: '10.0.0.0/31' }, 'KNIT_WG_SUBNET "10.0.0.0/31" is not an IPv4 subnet'],
    [{ KNIT_WG_ROTATE: '5' }, 'KNIT_WG_ROTATE "5" is not a period of at least 10 seconds'],
    [{ KNIT_WG_ROTATE: '1w' }, 'KNIT_WG_ROTATE "1w" is not a period of at least 10 seconds'],
  ])('%p is refused: %s', (env, message) => {
    refused(() => parseConfig(env), message);
  });
});

describe('parseStoreUrl', () => {
  test('local, one Consul agent, one or more etcd endpoints (names, IPv4, bracketed IPv6)', () => {
    expect(parseStoreUrl('local')).toEqual({ kind: 'local' });
    expect(parseStoreUrl('consul://consul.internal:8500')).toEqual({ kind: 'consul', host: 'consul.internal', port: 8500 });
    expect(parseStoreUrl('etcd://10.0.0.1:2379')).toEqual({ kind: 'etcd', endpoints: ['10.0.0.1:2379'] });
    expect(parseStoreUrl('etcd://a:2379,[fd00::1]:2379,b.example:65535')).toEqual({ kind: 'etcd', endpoints: ['a:2379', '[fd00::1]:2379', 'b.example:65535'] });
  });

  test.each([
    ['', 'KNIT_STORE "" is not "local", "consul://HOST:PORT" or "etcd://HOST:PORT[,HOST:PORT...]"'],
    ['LOCAL', 'KNIT_STORE "LOCAL" is not "local"'],
    ['consul:/h:1', 'KNIT_STORE "consul:/h:1" is not "local"'],
    ['consul://a:1,b:2', 'KNIT_STORE "consul://a:1,b:2": consul takes exactly one HOST:PORT'],
    ['consul://h', 'KNIT_STORE "consul://h": "h" is not HOST:PORT'],
    ['etcd://h:0', 'KNIT_STORE "etcd://h:0": "h:0" is not HOST:PORT'],
    ['etcd://h:65536', 'KNIT_STORE "etcd://h:65536": "h:65536" is not HOST:PORT'],
    ['etcd://h:123456', '"h:123456" is not HOST:PORT'],
    ['etcd://a:1,', '"" is not HOST:PORT'],
    ['etcd://h;reboot:1', '"h;reboot:1" is not HOST:PORT'],
    ['etcd://fd00::1:2379', '"fd00::1:2379" is not HOST:PORT'],
  ])('%p is refused', (raw, message) => {
    refused(() => parseStoreUrl(raw), message);
  });
});

describe('KNIT_METRICS', () => {
  test('unset or empty: metrics are off', () => {
    expect(parseConfig({}).metrics).toBeUndefined();
    expect(parseConfig({ KNIT_METRICS: '' }).metrics).toBeUndefined();
  });

  test('an IPv4 or bracketed IPv6 address with a port, or an absolute unix socket path', () => {
    expect(parseConfig({ KNIT_METRICS: '127.0.0.1:9464' }).metrics).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9464 });
    expect(parseMetricsAddress('0.0.0.0:1')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 1 });
    expect(parseMetricsAddress('[::1]:65535')).toEqual({ kind: 'tcp', host: '::1', port: 65535 });
    expect(parseMetricsAddress('[fd00:0::0:1]:9464')).toEqual({ kind: 'tcp', host: 'fd00::1', port: 9464 });
    expect(parseMetricsAddress('unix:///run/knit/metrics.sock')).toEqual({ kind: 'unix', path: '/run/knit/metrics.sock' });
  });

  test.each([
    ['9464', 'is not HOST:PORT or unix:///PATH'],
    ['localhost:9464', 'has host "localhost", which is not an IPv4 address (names are not looked up)'],
    ['127.0.0.1', 'is not HOST:PORT or unix:///PATH'],
    ['127.0.0.1:0', 'has port 0, outside 1-65535'],
    ['127.0.0.1:65536', 'has port 65536, outside 1-65535'],
    ['127.0.0.1:123456', 'is not HOST:PORT or unix:///PATH'],
    ['127.0.0.1:-1', 'is not HOST:PORT or unix:///PATH'],
    ['256.0.0.1:9464', 'has host "256.0.0.1", which is not an IPv4 address'],
    ['::1:9464', 'is not HOST:PORT or unix:///PATH'],
    ['[::g]:9464', 'has host "::g", which is not an IPv6 address'],
    ['http://127.0.0.1:9464/metrics', 'is not HOST:PORT or unix:///PATH'],
    ['unix://run/knit.sock', 'is not unix:///PATH with an absolute path to a socket file'],
    ['unix:///run/knit/', 'is not unix:///PATH with an absolute path to a socket file'],
    ['unix:/run/knit.sock', 'is not unix:///PATH'],
  ])('%p is refused at start, naming the variable and the forms it takes', (raw, why) => {
    refused(() => parseConfig({ KNIT_METRICS: raw }), `KNIT_METRICS "${raw}" ${why}`);
    refused(() => parseMetricsAddress(raw), 'give HOST:PORT with HOST an IP address (e.g. 127.0.0.1:9464 or [::1]:9464) or unix:///PATH; leave it unset to turn metrics off');
  });
});
