// Block allocation on every real backend (embedded, etcd, the Consul test server) as the cluster store: three
// hosts, each with its own embedded store for its ledger, hand out, release and claim static addresses all at
// once; no address is ever held twice, and the records agree afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keys, type AddressRecord, type BlockRecord } from '../../src/ipam/records.js';
import { openConsulStore } from '../../src/store/consul.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import { openLocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/types.js';
import { readUsage } from '../../src/ipam/usage.js';
import { startConsulServer } from '../support/consul-server.js';
import { startEtcd } from '../support/etcd.js';
import { ipamOn, records } from '../unit/ipam-bed.js';

const SUBNET = '10.80.0.0/24';
const SK = '10.80.0.0_24';
const LOOPS_PER_HOST = 6;
const PAIRS_PER_LOOP = 40;
const dirs: string[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

async function embedded(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-blocks-'));
  dirs.push(dir);
  const store = await openLocalStore(dir);
  cleanups.push(() => store.close());
  return store;
}

const backends: Array<[string, () => Promise<Store>]> = [
  ['embedded', embedded],
  ['etcd', async () => {
    const etcd = await startEtcd();
    const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '/knit-blocks/' });
    cleanups.push(() => store.close(), () => etcd.dispose());
    return store;
  }],
  ['consul', async () => {
    const srv = await startConsulServer();
    const store = await openConsulStore({ host: srv.host, port: srv.port });
    cleanups.push(() => store.close(), () => srv.close());
    return store;
  }],
];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

/** Who holds each address right now, as the callers were told; a second holder is a duplicate. */
class Holders {
  readonly held = new Map<string, string>();
  readonly duplicates: string[] = [];
  take(ip: string, who: string): void {
    const prev = this.held.get(ip);
    if (prev) this.duplicates.push(`${ip} handed to ${who} while ${prev} held it`);
    this.held.set(ip, who);
  }
  // Before the release call: once it returns, the address may be handed out again at once.
  drop(ip: string): void {
    this.held.delete(ip);
  }
}

describe.each(backends)('block allocation through the %s store', (_name, open) => {
  test('three hosts at once: requests, releases and static claims never hand out an address twice', async () => {
    const cluster = await open();
    const hosts: Array<{ name: string; local: Store } & ReturnType<typeof ipamOn>> = [];
    for (const name of ['a', 'b', 'c']) {
      const local = await embedded();
      hosts.push({ name, local, ...ipamOn(cluster, name, { local }) });
    }
    const { poolId } = await hosts[0].ipam.requestPool({ pool: SUBNET, v6: false });
    for (const h of hosts.slice(1)) await h.ipam.requestPool({ pool: SUBNET, v6: false });
    const holders = new Holders();
    let pairs = 0;
    const statics = { granted: 0, refused: 0 };
    const loop = async (h: (typeof hosts)[number], n: number) => {
      const kept: string[] = [];
      for (let i = 0; i < PAIRS_PER_LOOP; i++) {
        const ip = (await h.ipam.requestAddress({ poolId, gateway: false })).split('/')[0];
        holders.take(ip, `${h.name}#${n}`);
        // Keep a few for a while, so blocks fill and more are claimed.
        kept.push(ip);
        if (kept.length > 3 || i === PAIRS_PER_LOOP - 1) {
          for (const k of kept.splice(0, i === PAIRS_PER_LOOP - 1 ? kept.length : 2)) {
            holders.drop(k);
            await h.ipam.releaseAddress(poolId, k);
          }
        }
        pairs++;
      }
    };
    const staticLoop = async (h: (typeof hosts)[number]) => {
      for (let last = 2; last < 254; last += 9) {
        const ip = `10.80.0.${last}`;
        try {
          await h.ipam.requestAddress({ poolId, gateway: false, address: ip });
          holders.take(ip, `${h.name} static`);
          statics.granted++;
        } catch (err) {
          expect(String((err as Error).message)).toMatch(/already in use/);
          statics.refused++;
        }
      }
    };
    await Promise.all([...hosts.flatMap((h) => Array.from({ length: LOOPS_PER_HOST }, (_, n) => loop(h, n))), staticLoop(hosts[2])]);
    expect(holders.duplicates).toEqual([]);
    expect(pairs).toBe(3 * LOOPS_PER_HOST * PAIRS_PER_LOOP);
    expect(statics.granted).toBeGreaterThan(0);
    expect(statics.refused).toBeGreaterThan(0);
    // Afterwards: the static addresses are the only records, no ledger holds an address, and each host kept one
    // spare block (the others went back as they emptied).
    const blocks = [...(await records<BlockRecord>(cluster, keys.blocks(SK))).values()].map((b) => b.host).sort();
    expect(blocks).toEqual(['a', 'b', 'c']);
    expect((await records<AddressRecord>(cluster, keys.addrs(SK))).size).toBe(statics.granted);
    for (const h of hosts) expect((await records(h.local, keys.ledgerPrefix)).size).toBe(0);
  }, 120_000);

  test('usage for metrics: this host\'s block addresses from its ledger, every host\'s blocks from the cluster store', async () => {
    const cluster = await open();
    const a = { local: await embedded() };
    const b = { local: await embedded() };
    const ipamA = ipamOn(cluster, 'a', { local: a.local }).ipam;
    const ipamB = ipamOn(cluster, 'b', { local: b.local }).ipam;
    const { poolId } = await ipamA.requestPool({ pool: '10.81.0.0/24', v6: false });
    await ipamB.requestPool({ pool: '10.81.0.0/24', v6: false });
    await ipamA.requestAddress({ poolId, gateway: true });
    for (let i = 0; i < 3; i++) await ipamA.requestAddress({ poolId, gateway: false });
    await ipamB.requestAddress({ poolId, gateway: false });
    const pool = (await readUsage(cluster, 'a', a.local)).pools.find((p) => p.subnet === '10.81.0.0/24');
    // The gateway's record and a's three block addresses; b's one is in b's own store, its block is counted.
    expect(pool).toEqual({ subnet: '10.81.0.0/24', held: true, inUse: 4, mine: 4, quarantined: 0, blocks: 2, blocksMine: 1, blocksQuarantined: 0 });
    expect((await readUsage(cluster, 'b', b.local)).pools.find((p) => p.subnet === '10.81.0.0/24')).toMatchObject({ inUse: 2, mine: 1, blocksMine: 1 });
  }, 60_000);
});
