// IPAM records and where they live in the (possibly cluster-wide) store.
import type { Family } from '../addr/cidr.js';

/** One per subnet, shared by every host that asked for it. */
export interface PoolRecord {
  subnet: string;
  range?: string;
  family: Family;
  /** Host IDs holding the pool; the pool goes when the last one releases it. */
  hosts: string[];
  /** The gateway address, the same on every host. */
  gateway?: string;
}

export type AddressKind = 'gateway' | 'static' | 'dynamic';

/** One per taken address; created only if absent, so an address is never handed out twice. */
export interface AddressRecord {
  host: string;
  kind: AddressKind;
  at: string;
}

/**
 * One per claimed block of a pool (blocks.ts): created only if absent, so two hosts never hold one block. Its
 * holder hands out the block's addresses itself, from its local ledger (LedgerRecord), without the store.
 */
export interface BlockRecord {
  host: string;
  /** The block, as CIDR text. */
  block: string;
  at: string;
}

/** In the host's own (embedded) store: an address it handed out from one of its blocks. */
export interface LedgerRecord {
  at: string;
}

export const keys = {
  pools: 'ipam/pools/',
  pool: (subnetKey: string) => `ipam/pools/${subnetKey}`,
  addrsPrefix: 'ipam/addrs/',
  addrs: (subnetKey: string) => `ipam/addrs/${subnetKey}/`,
  addr: (subnetKey: string, ip: string) => `ipam/addrs/${subnetKey}/${ip}`,
  lostPrefix: 'ipam/lost/',
  lost: (host: string) => `ipam/lost/${host}`,
  blocks: (subnetKey: string) => `ipam/blocks/${subnetKey}/`,
  block: (subnetKey: string, base: string) => `ipam/blocks/${subnetKey}/${base}`,
  /** The local ledger lives in the host's own store, never in the cluster store. */
  ledgerPrefix: 'ipam/ledger/',
  ledger: (subnetKey: string) => `ipam/ledger/${subnetKey}/`,
  handed: (subnetKey: string, ip: string) => `ipam/ledger/${subnetKey}/${ip}`,
  /** In the host's own store too: the index of its own address records in the cluster store (held.ts). */
  heldPrefix: 'ipam/held/',
  heldIn: (subnetKey: string) => `ipam/held/${subnetKey}/`,
  held: (subnetKey: string, ip: string) => `ipam/held/${subnetKey}/${ip}`,
  /** The index entry of an address record's key. */
  heldOf: (addrKey: string) => `ipam/held/${addrKey.slice(keys.addrsPrefix.length)}`,
  /** Set once the index holds every record of this host (filled from the records once, then kept by each claim). */
  heldFilled: 'ipam/held-filled',
};

/** The subnet and address of a per-address key (`ipam/<area>/<subnet key>/<ip>`: addrs, ledger, held). */
export function addressKeyParts(key: string): { sk: string; ip: string; subnet: string } {
  const [, , sk, ip] = key.split('/');
  return { sk, ip, subnet: sk.replace('_', '/') };
}
