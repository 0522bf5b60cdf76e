// Where the overlay control plane keeps its records in the cluster store, and what an endpoint record holds.
import { parseCidr, subnetKey } from '../../addr/cidr.js';
import type { RemoteEndpoint } from './plan.js';

/** `hosts/<id>` lives exactly as long as that host's lease; so do the endpoint records it publishes. */
export const K = {
  segments: 'overlay/segments/',
  segment: (sk: string) => `overlay/segments/${sk}`,
  vnis: 'overlay/vnis/',
  vni: (v: number) => `overlay/vnis/${v}`,
  endpoints: 'overlay/endpoints/',
  endpoint: (sk: string, host: string, id: string) => `overlay/endpoints/${sk}/${host}/${id}`,
  /**
   * A host's endpoints on one segment are below this prefix, which is also a key: the host's anchor there, written
   * while it has a network on the segment, so that the prefix is never empty (an empty prefix wakes a Consul
   * blocking query at every write anywhere).
   */
  anchor: (sk: string, host: string) => `overlay/endpoints/${sk}/${host}/`,
  hosts: 'hosts/',
  host: (id: string) => `hosts/${id}`,
};

export const segmentKey = (net: { ipv4: Array<{ subnet: string }> }): string => subnetKey(parseCidr(net.ipv4[0].subnet));

/** The value of an endpoint record: where its MAC lives (the publishing host's VTEP) and its addresses. */
export type PublishedEndpoint = Omit<RemoteEndpoint, 'id' | 'host'>;

/** The parts of an endpoint record's key, or undefined for a key of another shape. */
export function parseEndpointKey(key: string): { segment: string; host: string; id: string } | undefined {
  const k = splitKey(key);
  return k?.id ? { segment: k.segment, host: k.host, id: k.id } : undefined;
}

/** The segment and host of an anchor (K.anchor), or undefined for a key of another shape. */
export function parseAnchorKey(key: string): { segment: string; host: string } | undefined {
  const k = splitKey(key);
  return k && k.id === '' ? { segment: k.segment, host: k.host } : undefined;
}

function splitKey(key: string): { segment: string; host: string; id: string } | undefined {
  if (!key.startsWith(K.endpoints)) return undefined;
  const [segment, host, id, extra] = key.slice(K.endpoints.length).split('/');
  return segment && host && id !== undefined && extra === undefined ? { segment, host, id } : undefined;
}
