// Pure: Docker's port-map option turned into concrete mappings, with host ports checked and chosen.
import { badRequest, conflict } from '../errors.js';
import { formatIp, parseIp } from '../addr/cidr.js';
import type { PortMapping } from './records.js';

const PROTOS: Record<number, PortMapping['proto']> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
/** Docker's own range for ports it chooses (-p PORT). */
export const EPHEMERAL = { first: 49153, last: 60999 };

export interface PortRequest {
  proto: PortMapping['proto'];
  containerPort: number;
  hostIp: string;
  hostPort: number;
  hostPortEnd: number;
}

const isPort = (n: unknown, zeroOk: boolean): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= (zeroOk ? 0 : 1) && n <= 65535;

export function parsePortMap(raw: unknown, defaultHostIp: string): PortRequest[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 4096) throw badRequest('com.docker.network.portmap must be a list of at most 4096 mappings');
  return raw.map((m: Record<string, unknown>, i) => {
    if (typeof m !== 'object' || m === null) throw badRequest(`port mapping ${i} is not an object`);
    const proto = typeof m.Proto === 'number' ? PROTOS[m.Proto] : undefined;
    if (!proto) throw badRequest(`port mapping ${i}: protocol ${String(m.Proto)} is not tcp (6), udp (17) or sctp (132)`);
    if (!isPort(m.Port, false)) throw badRequest(`port mapping ${i}: container port ${String(m.Port)} is not 1-65535`);
    const hostPort = m.HostPort ?? 0;
    const hostPortEnd = m.HostPortEnd ?? hostPort;
    if (!isPort(hostPort, true) || !isPort(hostPortEnd, true) || (hostPortEnd as number) < (hostPort as number)) {
      throw badRequest(`port mapping ${i}: host port range ${String(hostPort)}-${String(hostPortEnd)} is invalid`);
    }
    const ipText = typeof m.HostIP === 'string' && m.HostIP !== '' ? m.HostIP : defaultHostIp;
    const hostIp = formatIp(parseIp(ipText).family, parseIp(ipText).value);
    return { proto, containerPort: m.Port as number, hostIp, hostPort: hostPort as number, hostPortEnd: hostPortEnd as number };
  });
}

const WILD = new Set(['0.0.0.0', '::']);

/** Host ports held, by protocol, family and port: the addresses that hold each (a wildcard holds them all). */
class PortIndex {
  private readonly held = new Map<string, Set<string>>();

  private static key(m: { proto: string; hostIp: string; hostPort: number }): string {
    return `${m.proto}/${m.hostIp.includes(':') ? 6 : 4}/${m.hostPort}`;
  }

  add(m: PortMapping): void {
    const k = PortIndex.key(m);
    const ips = this.held.get(k) ?? new Set<string>();
    ips.add(m.hostIp);
    this.held.set(k, ips);
  }

  clashes(m: { proto: string; hostIp: string; hostPort: number }): boolean {
    const ips = this.held.get(PortIndex.key(m));
    if (!ips || ips.size === 0) return false;
    return WILD.has(m.hostIp) || ips.has(m.hostIp) || [...ips].some((ip) => WILD.has(ip));
  }
}

/**
 * Picks the host port of every request: the one asked for, or the first free one of its range
 * (of the ephemeral range for -p PORT). `taken` holds other endpoints' mappings; `inUse` says
 * whether a socket on the host already holds a port. Each candidate costs O(1), so thousands of
 * full-range mappings are decided in milliseconds.
 */
export function assignPorts(reqs: PortRequest[], taken: PortMapping[], inUse: (proto: string, port: number) => boolean): PortMapping[] {
  const index = new PortIndex();
  for (const t of taken) index.add(t);
  const out: PortMapping[] = [];
  for (const r of reqs) {
    const [first, last] = r.hostPort === 0 ? [EPHEMERAL.first, EPHEMERAL.last] : [r.hostPort, r.hostPortEnd];
    let chosen: PortMapping | undefined;
    for (let p = first; p <= last && !chosen; p++) {
      const candidate: PortMapping = { proto: r.proto, containerPort: r.containerPort, hostIp: r.hostIp, hostPort: p };
      if (index.clashes(candidate) || inUse(r.proto, p)) continue;
      chosen = candidate;
    }
    if (!chosen) {
      const what = first === last ? `host port ${first}/${r.proto}` : `every host port in ${first}-${last}/${r.proto}`;
      throw conflict(`${what} on ${r.hostIp} is already in use; choose another -p host port`);
    }
    index.add(chosen);
    out.push(chosen);
  }
  return out;
}
