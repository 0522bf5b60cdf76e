// Pure: the record this host publishes for one of its overlay endpoints (key and value).
import { encode } from '../../store/records.js';
import type { EndpointRecord } from '../records.js';
import { K, type PublishedEndpoint, segmentKey } from './keys.js';

export function endpointKey(a: { hostId: string; net: { ipv4: Array<{ subnet: string }> }; ep: { id: string } }): string {
  return K.endpoint(segmentKey(a.net), a.hostId, a.ep.id);
}

/** The addresses without their prefix: the others need only the host address for their neighbour entries. */
export function endpointValue(vtep: string, ep: Pick<EndpointRecord, 'mac' | 'address' | 'addressV6'>): string {
  const p: PublishedEndpoint = { vtep, mac: ep.mac };
  if (ep.address) p.ip = ep.address.split('/')[0];
  if (ep.addressV6) p.ipv6 = ep.addressV6.split('/')[0];
  return encode(p);
}
