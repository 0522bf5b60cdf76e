// The name records: one per knit endpoint of a running container. An overlay endpoint's is written by its host under
// that host's lease, beside the endpoint's overlay record (so each other host reads it with the watch it keeps on
// that host's endpoints there anyway); a bridge or macvlan network's names concern its own host only and stay in
// memory, keyed the same way with the network ID in place of the segment.
import { K } from '../network/overlay/keys.js';
import { decode, encode } from '../store/records.js';

/** The last part of a name record's key: `overlay/endpoints/<segment>/<host>/<endpoint>/name`. */
const NAME = 'name';

/** The network key is the overlay segment (the same on every host) or, for names that stay on their host, the network ID. */
export const nameKey = (network: string, host: string, endpoint: string): string => `${K.endpoint(network, host, endpoint)}/${NAME}`;

export interface NameRecord {
  names: string[];
  v4: string[];
  v6: string[];
}

export interface ParsedName extends NameRecord {
  network: string;
  host: string;
  endpoint: string;
}

export const encodeName = (r: NameRecord): string => encode({ names: r.names, v4: r.v4, v6: r.v6 });

const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');

/** A record another host wrote, checked: a malformed one is ignored rather than answered from. */
export function parseName(key: string, value: string): ParsedName | undefined {
  const where = splitKey(key);
  if (!where) return undefined;
  try {
    const r = decode<Partial<NameRecord>>({ key, value, revision: 0 });
    if (!strings(r.names) || !strings(r.v4) || !strings(r.v6)) return undefined;
    return { ...where, names: r.names, v4: r.v4, v6: r.v6 };
  } catch {
    return undefined;
  }
}

/** The parts of a name record's key, or undefined for a key of another shape (an endpoint record, an anchor). */
export function splitKey(key: string): { network: string; host: string; endpoint: string } | undefined {
  if (!key.startsWith(K.endpoints)) return undefined;
  const [network, host, endpoint, last, ...rest] = key.slice(K.endpoints.length).split('/');
  return network && host && endpoint && last === NAME && !rest.length ? { network, host, endpoint } : undefined;
}
