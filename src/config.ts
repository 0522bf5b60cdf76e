// The KNIT_* settings, parsed once from the environment at start (main.ts is the only caller).
import { validateDnsAddress } from './datapath/dns-address.js';
import { badRequest } from './errors.js';
import ipaddr from 'ipaddr.js';
import { parseCidr } from './addr/cidr.js';
import { parsePoolSpecs, type PoolSpec } from './ipam/pools.js';
import type { MetricsAddress } from './metrics/listener.js';
import type { StoreUrl } from './store/open.js';

export interface Config {
  socket: string;
  stateDir: string;
  store: StoreUrl;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** `auto`: readable lines on a terminal, JSON otherwise. */
  logFormat: 'auto' | 'text' | 'json';
  advertise?: string;
  defaultPools: PoolSpec[];
  reclaimAfterSeconds: number;
  consulToken?: string;
  etcdTls?: { ca?: string; cert?: string; key?: string };
  /** knit's resolver address (KNIT_DNS_ADDRESS); undefined when set empty: no resolver, no names. */
  dnsAddress?: string;
  /** The Docker engine's socket path (from KNIT_DOCKER_HOST), where names come from. */
  dockerSocket: string;
  /** Where the resolver reads its upstream servers (KNIT_RESOLV_CONF); the host's /etc/resolv.conf by default. */
  resolvConf?: string;
  /** Where Prometheus metrics are served (KNIT_METRICS); undefined (the default): not at all. */
  metrics?: MetricsAddress;
  /** Encrypted overlays: WireGuard's UDP port, the tunnel addresses' subnet (the same on every host), rotation period. */
  wireguard: { port: number; subnet: string; rotateSeconds?: number };
}

export const DEFAULTS = {
  socket: '/run/docker/plugins/knit.sock',
  stateDir: '/var/lib/knit',
  store: 'local',
  logLevel: 'info',
  logFormat: 'auto',
  defaultPools: '10.208.0.0/12:24,fd6b:6e69:7400::/40:64',
  reclaimAfter: '3600',
  dnsAddress: '169.254.53.53',
  dockerHost: 'unix:///var/run/docker.sock',
  wgPort: '51820',
  wgSubnet: '169.254.64.0/18',
} as const;

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
const LOG_FORMATS = ['auto', 'text', 'json'] as const;

export function parseStoreUrl(raw: string): StoreUrl {
  if (raw === 'local') return { kind: 'local' };
  const m = /^(consul|etcd):\/\/(.+)$/.exec(raw);
  if (!m) throw badRequest(`KNIT_STORE "${raw}" is not "local", "consul://HOST:PORT" or "etcd://HOST:PORT[,HOST:PORT...]"`);
  const hosts = m[2].split(',').map((h) => parseHostPort(h, raw));
  if (m[1] === 'consul') {
    if (hosts.length !== 1) throw badRequest(`KNIT_STORE "${raw}": consul takes exactly one HOST:PORT`);
    return { kind: 'consul', host: hosts[0].host, port: hosts[0].port };
  }
  return { kind: 'etcd', endpoints: hosts.map((h) => `${h.host}:${h.port}`) };
}

function parseHostPort(text: string, raw: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw badRequest(`KNIT_STORE "${raw}": "${text}" is not HOST:PORT`);
  return { host: m[1], port };
}

/** Empty turns the resolver off; otherwise one IPv4 address, which knit puts on the host's `lo`. */
export function parseDnsAddress(raw: string | undefined): string | undefined {
  return raw === '' ? undefined : validateDnsAddress(raw ?? DEFAULTS.dnsAddress);
}

export function parseDockerHost(raw: string | undefined): string {
  const text = raw || DEFAULTS.dockerHost;
  const m = /^unix:\/\/(\/[^\0]{0,1000})$/.exec(text);
  if (!m) throw badRequest(`KNIT_DOCKER_HOST "${text}" is not unix:///PATH (the Docker engine's socket, e.g. ${DEFAULTS.dockerHost})`);
  return m[1];
}

const METRICS_FORM = 'HOST:PORT with HOST an IP address (e.g. 127.0.0.1:9464 or [::1]:9464) or unix:///PATH; leave it unset to turn metrics off';

/** Off when unset or empty; an IP address and port, or an absolute unix socket path. Host names are refused: no lookup at start. */
export function parseMetricsAddress(raw: string | undefined): MetricsAddress | undefined {
  if (!raw) return undefined;
  const bad = (why: string) => badRequest(`KNIT_METRICS "${raw.slice(0, 200)}" ${why}; give ${METRICS_FORM}`);
  if (raw.startsWith('unix:')) {
    const m = /^unix:\/\/(\/[^\0]{1,1000})$/.exec(raw);
    if (!m || m[1].endsWith('/')) throw bad('is not unix:///PATH with an absolute path to a socket file');
    return { kind: 'unix', path: m[1] };
  }
  const m = /^(?:\[([^\]]{0,100})\]|([^:[\]]{0,100})):(\d{1,5})$/.exec(raw);
  if (!m) throw bad('is not HOST:PORT or unix:///PATH');
  const [, v6, v4, digits] = m;
  const valid = v6 !== undefined ? ipaddr.IPv6.isValid(v6) : ipaddr.IPv4.isValidFourPartDecimal(v4);
  if (!valid) throw bad(`has host "${v6 ?? v4}", which is not an IP${v6 !== undefined ? 'v6' : 'v4'} address (names are not looked up)`);
  const port = Number(digits);
  if (port < 1 || port > 65535) throw bad(`has port ${digits}, outside 1-65535`);
  const host = ipaddr.parse(v6 ?? v4).toString();
  return { kind: 'tcp', host, port };
}

/** KNIT_WG_PORT, KNIT_WG_SUBNET (an IPv4 subnet of at least 4 addresses), KNIT_WG_ROTATE (seconds, or with s/m/h/d). */
export function parseWireguard(env: NodeJS.ProcessEnv): Config['wireguard'] {
  const port = env.KNIT_WG_PORT || DEFAULTS.wgPort;
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw badRequest(`KNIT_WG_PORT "${port}" is not a UDP port (1-65535)`);
  const subnet = env.KNIT_WG_SUBNET || DEFAULTS.wgSubnet;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(subnet);
  if (!m || Number(m[2]) > 30 || m[1].split('.').some((o) => Number(o) > 255)) {
    throw badRequest(`KNIT_WG_SUBNET "${subnet}" is not an IPv4 subnet of at least 4 addresses (ADDRESS/PREFIX, prefix at most 30)`);
  }
  parseCidr(subnet, 'KNIT_WG_SUBNET');
  const out: Config['wireguard'] = { port: Number(port), subnet };
  const rotate = env.KNIT_WG_ROTATE;
  if (rotate) {
    const r = /^(\d{1,9})([smhd]?)$/.exec(rotate);
    const seconds = r ? Number(r[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[r[2] as '' | 's' | 'm' | 'h' | 'd'] : NaN;
    if (!(seconds >= 10)) throw badRequest(`KNIT_WG_ROTATE "${rotate}" is not a period of at least 10 seconds (e.g. 3600, 90m, 12h, 7d)`);
    out.rotateSeconds = seconds;
  }
  return out;
}

export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const level = env.KNIT_LOG_LEVEL || DEFAULTS.logLevel;
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw badRequest(`KNIT_LOG_LEVEL "${level}" is not one of ${LEVELS.join(', ')}`);
  }
  const logFormat = env.KNIT_LOG_FORMAT || DEFAULTS.logFormat;
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw badRequest(`KNIT_LOG_FORMAT "${logFormat}" is not one of ${LOG_FORMATS.join(', ')}`);
  }
  const reclaim = env.KNIT_RECLAIM_AFTER || DEFAULTS.reclaimAfter;
  if (!/^\d{1,9}$/.test(reclaim)) throw badRequest(`KNIT_RECLAIM_AFTER "${reclaim}" is not a number of seconds`);
  const socket = env.KNIT_SOCKET || DEFAULTS.socket;
  const stateDir = env.KNIT_STATE_DIR || DEFAULTS.stateDir;
  for (const [name, path] of [['KNIT_SOCKET', socket], ['KNIT_STATE_DIR', stateDir], ['KNIT_RESOLV_CONF', env.KNIT_RESOLV_CONF || '/']]) {
    if (!path.startsWith('/')) throw badRequest(`${name} "${path}" must be an absolute path`);
  }
  return {
    socket,
    stateDir,
    store: parseStoreUrl(env.KNIT_STORE || DEFAULTS.store),
    logLevel: level as Config['logLevel'],
    logFormat: logFormat as Config['logFormat'],
    advertise: env.KNIT_ADVERTISE || undefined,
    defaultPools: parsePoolSpecs(env.KNIT_DEFAULT_POOLS || DEFAULTS.defaultPools),
    reclaimAfterSeconds: Number(reclaim),
    consulToken: env.KNIT_CONSUL_TOKEN || undefined,
    etcdTls: env.KNIT_ETCD_CA || env.KNIT_ETCD_CERT || env.KNIT_ETCD_KEY
      ? { ca: env.KNIT_ETCD_CA || undefined, cert: env.KNIT_ETCD_CERT || undefined, key: env.KNIT_ETCD_KEY || undefined }
      : undefined,
    dnsAddress: parseDnsAddress(env.KNIT_DNS_ADDRESS),
    dockerSocket: parseDockerHost(env.KNIT_DOCKER_HOST),
    resolvConf: env.KNIT_RESOLV_CONF || undefined,
    metrics: parseMetricsAddress(env.KNIT_METRICS),
    wireguard: parseWireguard(env),
  };
}
