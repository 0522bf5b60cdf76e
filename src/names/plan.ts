// Pure planning for names: which records this host publishes, which knit networks a querier is on.
import { cleanNames, type ContainerNames } from '../engine/containers.js';
import { segmentKey } from '../network/overlay/keys.js';
import type { EndpointRecord, NetworkRecord } from '../network/records.js';
import { encodeName, nameKey } from './records.js';

/** Overlays share one key on every host (their segment); a bridge network is this host's alone (its ID). */
export const networkKey = (net: NetworkRecord): string => (net.mode === 'overlay' ? segmentKey(net) : net.id);

const ipOf = (cidr: string | undefined): string[] => (cidr ? [cidr.split('/')[0]] : []);

export interface DesiredInput {
  hostId: string;
  containers: ContainerNames[];
  endpoints: Map<string, EndpointRecord>;
  networks: Map<string, NetworkRecord>;
  /** The name dockerd 29+ gave with an address's RequestAddress (engine hints), if any. */
  endpointName?: (ip: string) => string | undefined;
  /** Endpoints the engine has reported since their Join: its word is final for them, present or not. */
  reported?: ReadonlySet<string>;
}

/** A name record of this host's: its value, and whether the other hosts need it (an overlay endpoint's). */
export interface DesiredName {
  value: string;
  shared: boolean;
}

/**
 * For every joined knit endpoint of a running container: its names and addresses, keyed by nameKey.
 * An endpoint the engine has not reported yet (or with no engine to ask) is published under the name dockerd 29+
 * gave in RequestAddress, so it resolves from its Join on; the engine's names replace it when they come.
 */
export function desiredRecords(a: DesiredInput): Map<string, DesiredName> {
  const out = new Map<string, DesiredName>();
  const record = (ep: EndpointRecord, names: string[]): void => {
    const net = a.networks.get(ep.networkId);
    if (!net || !ep.sandboxKey || !names.length) return;
    const value = encodeName({ names, v4: ipOf(ep.address), v6: ipOf(ep.addressV6) });
    out.set(nameKey(networkKey(net), a.hostId, ep.id), { value, shared: net.mode === 'overlay' });
  };
  const fromEngine = new Set<string>();
  for (const c of a.containers) {
    for (const ce of c.endpoints) {
      const ep = a.endpoints.get(ce.endpointId);
      if (!ep || ep.networkId !== ce.networkId) continue;
      fromEngine.add(ep.id);
      record(ep, ce.names);
    }
  }
  for (const ep of a.endpoints.values()) {
    const ip = ipOf(ep.address)[0] ?? ipOf(ep.addressV6)[0];
    if (fromEngine.has(ep.id) || a.reported?.has(ep.id) || !ip || !a.endpointName) continue;
    record(ep, cleanNames([a.endpointName(ip)]));
  }
  return out;
}

export interface Querier {
  /** The network keys of every knit endpoint in its sandbox (Docker's own scoping). */
  networks: string[];
  /** Whether one of them is not internal: only then are names outside knit forwarded for it. */
  external: boolean;
}

/** Address of a joined endpoint -> what its sandbox may ask. */
export function querierIndex(endpoints: Iterable<EndpointRecord>, networks: Map<string, NetworkRecord>): Map<string, Querier> {
  const bySandbox = new Map<string, { keys: Set<string>; external: boolean }>();
  const joined = [...endpoints].filter((e) => e.sandboxKey && networks.has(e.networkId));
  for (const ep of joined) {
    const net = networks.get(ep.networkId)!;
    let s = bySandbox.get(ep.sandboxKey!);
    if (!s) bySandbox.set(ep.sandboxKey!, (s = { keys: new Set(), external: false }));
    s.keys.add(networkKey(net));
    s.external ||= !net.internal;
  }
  const out = new Map<string, Querier>();
  for (const ep of joined) {
    const s = bySandbox.get(ep.sandboxKey!)!;
    const q = { networks: [...s.keys].sort(), external: s.external };
    for (const ip of [...ipOf(ep.address), ...ipOf(ep.addressV6)]) out.set(ip, q);
  }
  return out;
}

/** Endpoints whose DNS servers (as dockerd gave them in CreateEndpoint) do not include knit's resolver. */
export function resolverMisses(endpoints: Iterable<EndpointRecord>, address: string): EndpointRecord[] {
  return [...endpoints].filter((e) => e.dnsServers !== undefined && !e.dnsServers.includes(address));
}
