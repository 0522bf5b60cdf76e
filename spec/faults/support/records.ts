// knit's records as the tests read them: the embedded store of a state dir, or knit's keys in an etcd.
import { join } from 'node:path';
import { repoRoot } from '../../support/layout.js';
import { run } from '../../support/proc.js';
import type { EtcdServer } from '../../support/etcd.js';
import type { AddressRecord, BlockRecord, LedgerRecord, PoolRecord } from '../../../src/ipam/records.js';
import type { EndpointRecord, NetworkRecord } from '../../../src/network/records.js';

export type Records = Map<string, string>;

// The record shapes are knit's own (types only: the values are read from the store, not through knit's code).
export type NetworkRec = NetworkRecord;
export type EndpointRec = EndpointRecord;
/** `ledger`: handed out from a block, in the host's own ledger (no record in the cluster store). */
export type AddressRec = AddressRecord & { subnet: string; ip: string; ledger?: true };
export type BlockRec = BlockRecord & { subnet: string };
export type PoolRec = PoolRecord;

/** Every record of the embedded store under `stateDir` (read-only; knit may be running). */
export async function localRecords(stateDir: string): Promise<Records> {
  const r = await run(['node', join(repoRoot, 'spec/faults/support/dump-lmdb.mjs'), join(stateDir, 'db')], { timeoutMs: 30_000 });
  return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, string>));
}

/** Every key knit keeps in etcd (below /knit/), without the prefix. */
export async function etcdRecords(etcd: EtcdServer): Promise<Records> {
  const out = JSON.parse(await etcd.ctl(['get', '--prefix', '/knit/', '-w', 'json'])) as { kvs?: Array<{ key: string; value: string }> };
  const text = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');
  return new Map((out.kvs ?? []).map((kv) => [text(kv.key).slice('/knit/'.length), text(kv.value)]));
}

const under = <T>(recs: Records, prefix: string): Array<[string, T]> =>
  [...recs].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k, JSON.parse(v) as T]);

export const hostIdOf = (recs: Records): string => recs.get('meta/host-id') ?? '';
export const networksOf = (recs: Records): NetworkRec[] => under<NetworkRec>(recs, 'net/').map(([, v]) => v);
export const endpointsOf = (recs: Records): EndpointRec[] => under<EndpointRec>(recs, 'ep/').map(([, v]) => v);
export const poolsOf = (recs: Records): PoolRec[] => under<PoolRec>(recs, 'ipam/pools/').map(([, v]) => v);

/** Address records: ipam/addrs/<10.20.0.0_24>/<ip>. */
export function addressesOf(recs: Records): AddressRec[] {
  return under<Omit<AddressRec, 'subnet' | 'ip'>>(recs, 'ipam/addrs/').map(([k, v]) => {
    const [, , sk, ip] = k.split('/');
    return { ...v, subnet: sk.replace('_', '/'), ip };
  });
}

/** A host's ledger (ipam/ledger/<subnet>/<ip> in its own store): the addresses it handed out from its blocks. */
export function ledgerOf(recs: Records, host: string): AddressRec[] {
  return under<LedgerRecord>(recs, 'ipam/ledger/').map(([k, v]) => {
    const [, , sk, ip] = k.split('/');
    return { host, kind: 'dynamic', at: v.at, subnet: sk.replace('_', '/'), ip, ledger: true };
  });
}

/** Block records: ipam/blocks/<10.20.0.0_24>/<base>. */
export const blocksOf = (recs: Records): BlockRec[] =>
  under<BlockRecord>(recs, 'ipam/blocks/').map(([k, v]) => ({ ...v, subnet: k.split('/')[2].replace('_', '/') }));
