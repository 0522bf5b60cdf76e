// This host's own address records in a cluster store (static ones, and dynamic ones claimed one by one), indexed in
// its own store. The sweep that looks for leaked addresses reads the index, not every host's records: read whole,
// that list grew as hosts x addresses, and every host read it every 30 s.
//
// A claim notes its address in the index before its commit, so that a crash in between leaves an entry to check
// (the sweep drops it once it finds no record of this host behind it), never a record nobody looks for. An index
// that was never filled (an upgrade, a lost state directory) is filled once from the records themselves.
import { decode, encode } from '../store/records.js';
import { commitInBatches } from '../store/types.js';
import type { OwnAddress } from './block-own.js';
import type { Ledger } from './ledger.js';
import { addressKeyParts, type AddressKind, type AddressRecord, keys } from './records.js';

interface HeldRecord {
  kind: AddressKind;
  at: string;
}

/** Notes an address this host is about to claim with a record of its own (nothing to do on the embedded store). */
export async function noteHeld(l: Ledger, sk: string, ip: string, kind: AddressKind): Promise<void> {
  if (!l.deps.local) return;
  const held: HeldRecord = { kind, at: new Date().toISOString() };
  await l.deps.local.commit([{ key: keys.held(sk, ip), value: encode(held) }]);
}

/** Drops index entries whose records are gone (released, or found not to be this host's). */
export async function forgetHeld(l: Ledger, recordKeys: string[]): Promise<void> {
  const local = l.deps.local;
  if (!local || !recordKeys.length) return;
  await commitInBatches(local, recordKeys.map((key) => ({ key: keys.heldOf(key), value: null })));
}

/** Drops the index entries of one subnet (its pool was let go, with every record of this host in it). */
export async function forgetHeldSubnet(l: Ledger, sk: string): Promise<void> {
  const local = l.deps.local;
  if (!local) return;
  await commitInBatches(local, (await local.list(keys.heldIn(sk))).map((e) => ({ key: e.key, value: null })));
}

/** This host's address records but gateways (the pool's, shared by every host): from the index where there is one. */
export async function heldRecords(l: Ledger): Promise<OwnAddress[]> {
  const local = l.deps.local;
  if (!local) return scan(l);
  if (!(await local.get(keys.heldFilled))) {
    const found = await scan(l);
    const notes = found.map((a) => ({ key: keys.heldOf(a.key), value: encode({ kind: a.record.kind, at: a.record.at } satisfies HeldRecord) }));
    await commitInBatches(local, [...notes, { key: keys.heldFilled, value: encode({ at: new Date().toISOString() }) }]);
    l.deps.log.info('index of this host\'s address records filled', { records: found.length });
    return found;
  }
  return (await local.list(keys.heldPrefix)).map((e) => {
    const { sk, ip, subnet } = addressKeyParts(e.key);
    return { key: keys.addr(sk, ip), ip, subnet, record: { host: l.hostId, ...decode<HeldRecord>(e) } };
  });
}

/** Every record of the store, kept when it is this host's and not a gateway. */
async function scan(l: Ledger): Promise<OwnAddress[]> {
  return (await l.store.list(keys.addrsPrefix))
    .map((e) => ({ e, record: decode<AddressRecord>(e) }))
    .filter(({ record }) => record.host === l.hostId && record.kind !== 'gateway')
    .map(({ e, record }) => {
      const { ip, subnet } = addressKeyParts(e.key);
      return { key: e.key, ip, subnet, record };
    });
}
