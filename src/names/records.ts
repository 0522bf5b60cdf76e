// The cluster-wide name records: one per knit endpoint, written by its host under that host's lease.
import { decode, encode } from '../store/records.js';

/** `names/<network key>/<host id>/<endpoint id>`: the network key is the overlay segment (the same on every host) or the network ID. */
export const NAMES = 'names/';
export const nameKey = (network: string, host: string, endpoint: string): string => `${NAMES}${network}/${host}/${endpoint}`;

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

export function splitKey(key: string): { network: string; host: string; endpoint: string } | undefined {
  const [network, host, endpoint, ...rest] = key.slice(NAMES.length).split('/');
  return key.startsWith(NAMES) && network && host && endpoint && !rest.length ? { network, host, endpoint } : undefined;
}
