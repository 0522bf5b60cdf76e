// Pure helpers for knit's resolver seen from the driver: the DNS servers dockerd gives an endpoint, and the
// route that lets a container on an internal network reach the resolver.
import type { EndpointRecord, NetworkRecord } from './records.js';

export const DNS_SERVERS_OPTION = 'com.docker.network.endpoint.dnsservers';

export interface StaticRoute {
  destination: string;
  nextHop: string;
}

/**
 * dockerd sends the daemon's `dns` (or `--dns`) to every non-internal endpoint, and nothing when neither is set;
 * internal endpoints never get the option, so for them nothing can be said. Kept for `knit doctor`.
 */
export function dnsServersOf(net: NetworkRecord, options: Record<string, unknown>): { dnsServers?: string[] } {
  if (net.internal) return {};
  const raw = options[DNS_SERVERS_OPTION];
  const list = Array.isArray(raw) ? raw.filter((s): s is string => typeof s === 'string' && s.length <= 64).slice(0, 16) : [];
  return { dnsServers: list };
}

/**
 * An internal network has no default route, so the resolver's /32 goes via the network's gateway (the host).
 * Once per sandbox: a second identical route makes dockerd's Join fail with "file exists".
 */
export function planDnsRoute(a: {
  resolver?: string;
  net: NetworkRecord;
  ep: EndpointRecord;
  sandboxKey: string;
  /** Every local endpoint record with its network's internal flag. */
  others: Array<{ ep: EndpointRecord; internal: boolean }>;
}): StaticRoute[] {
  const gateway = a.net.ipv4.find((s) => s.gateway)?.gateway?.split('/')[0];
  if (!a.resolver || !a.net.internal || !gateway || !a.ep.address) return [];
  const routed = a.others.some((o) => o.ep.id !== a.ep.id && o.internal && o.ep.sandboxKey === a.sandboxKey && o.ep.address);
  return routed ? [] : [{ destination: `${a.resolver}/32`, nextHop: gateway }];
}
