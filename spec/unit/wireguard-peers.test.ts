// WgPeers against a real local store and a recording device: nothing is touched before the first listing (a restart
// keeps its tunnels), then the device gets exactly the valid, claimed records; watch events add and remove peers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from '../../src/addr/cidr.js';
import type { WgPeerSpec, WgPeerState } from '../../src/datapath/wireguard.js';
import { createLogger } from '../../src/log.js';
import { WgPeers } from '../../src/network/overlay/wg-peers.js';
import { WG } from '../../src/network/overlay/wg-plan.js';
import { openLocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/types.js';

const key = (n: number) => `${String.fromCharCode(65 + n).repeat(42)}A=`;
const record = (n: number, address: string) => JSON.stringify({ v: 1, publicKey: key(n), endpoint: `198.18.0.${n}:51820`, address });
let dir = '';
let store: Store;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'knit-wg-peers-'));
  store = await openLocalStore(join(dir, 'db'));
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** A device that holds peers the way `wg` does: set replaces a peer's fields, remove drops it. */
function device(initial: WgPeerState[] = []) {
  const peers = new Map(initial.map((p) => [p.publicKey, p]));
  const calls: WgPeerSpec[][] = [];
  return {
    calls,
    peers,
    dev: {
      show: async () => ({ publicKey: key(0), listenPort: 51820, peers: [...peers.values()] }),
      setPeers: async (changes: WgPeerSpec[]) => {
        calls.push(changes);
        for (const c of changes) {
          if (c.remove) peers.delete(c.publicKey);
          else peers.set(c.publicKey, { publicKey: c.publicKey, endpoint: c.endpoint, allowedIps: c.allowedIps ?? [], latestHandshake: 0, rx: 0, tx: 0 });
        }
      },
    },
  };
}

test('before the first listing the device keeps what it has; then it holds exactly the claimed, valid records', async () => {
  const kept = { publicKey: key(9), endpoint: '198.18.0.9:51820', allowedIps: ['169.254.64.9/32'], latestHandshake: 1, rx: 0, tx: 0 };
  const d = device([kept]);
  const peers = new WgPeers({ cluster: store, subnet: parseCidr('169.254.64.0/18'), log: createLogger('error') });
  await peers.attach(d.dev, key(0));
  expect(d.calls).toEqual([]);
  await store.commit([
    { key: WG.address('169.254.64.2'), value: '0b' },
    { key: WG.address('169.254.64.3'), value: '0c' },
    { key: WG.host('0b'), value: record(2, '169.254.64.2') },
    // Claims B's address: ignored.
    { key: WG.host('0d'), value: record(4, '169.254.64.2') },
    { key: WG.host('0e'), value: '{"v":1,"publicKey":"x"}' },
  ]);
  await peers.reset(await store.list(WG.hosts));
  expect([...d.peers.keys()]).toEqual([key(2)]);
  expect(d.peers.get(key(2))).toMatchObject({ endpoint: '198.18.0.2:51820', allowedIps: ['169.254.64.2/32'] });
  // A host whose claim arrives after its record: read from the store when its record comes.
  peers.change({ type: 'put', key: WG.host('0c'), value: record(3, '169.254.64.3'), revision: 99 });
  await peers.program();
  expect([...d.peers.keys()].sort()).toEqual([key(2), key(3)]);
  peers.change({ type: 'delete', key: WG.host('0b'), revision: 100 });
  await peers.program();
  expect([...d.peers.keys()]).toEqual([key(3)]);
});
