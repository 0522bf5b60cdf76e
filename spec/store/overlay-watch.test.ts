// Which other hosts' overlay endpoints each host learns, through each real store: the same outcome on all three;
// on Consul, whose watches read their whole prefix at every change, only the changed host's records on that
// segment are read (HostRecordWatch's partitions), whatever else the cluster holds.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/log.js';
import type { Datapath } from '../../src/network/datapath.js';
import { Overlay } from '../../src/network/overlay/index.js';
import { K } from '../../src/network/overlay/keys.js';
import { HostLease } from '../../src/network/overlay/lease.js';
import { LiveHosts } from '../../src/network/overlay/live-hosts.js';
import type { Tunnel } from '../../src/network/overlay/tunnel.js';
import { HostRecordWatch } from '../../src/network/overlay/watch.js';
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';
import { openConsulStore } from '../../src/store/consul.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import { openLocalStore } from '../../src/store/local.js';
import { decode } from '../../src/store/records.js';
import type { Store } from '../../src/store/types.js';
import { encodeName, nameKey } from '../../src/names/records.js';
import { RemoteNames } from '../../src/names/remote.js';
import { NameTable } from '../../src/names/table.js';
import { startConsulServer, type ConsulTestServer } from '../support/consul-server.js';
import { startEtcd } from '../support/etcd.js';
import { recordingLog } from '../unit/ipam-bed.js';
import { until } from './contract.js';

const log = createLogger('error');
const cleanups: Array<() => Promise<unknown>> = [];

interface Backend {
  /** A store client for one more host. */
  client(): Promise<Store>;
  consul?: ConsulTestServer;
}

const backends: Array<[string, () => Promise<Backend>]> = [
  ['embedded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'knit-ovwatch-'));
    const store = await openLocalStore(dir);
    cleanups.push(() => store.close(), () => rm(dir, { recursive: true, force: true }));
    // One database for every host of the test (one process), as a shared store would be.
    return { client: async () => store };
  }],
  ['etcd', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.dispose());
    return {
      client: async () => {
        const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '/knit-ovwatch/' });
        cleanups.unshift(() => store.close());
        return store;
      },
    };
  }],
  ['consul', async () => {
    const consul = await startConsulServer();
    cleanups.push(() => consul.close());
    return {
      consul,
      client: async () => {
        const store = await openConsulStore({ host: consul.host, port: consul.port });
        cleanups.unshift(() => store.close());
        return store;
      },
    };
  }],
];

afterAll(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
}, 60_000);

/** The kernel side of Peers, kept in memory: what each VXLAN device would hold. */
function memoryKernel(): { kernel: Datapath; fdb: (dev: string) => Set<string> } {
  const devices = new Map<string, Set<string>>();
  const fdb = (dev: string): Set<string> => devices.get(dev) ?? devices.set(dev, new Set()).get(dev)!;
  type Op = { op: string; dev: string; mac?: string; dst?: string };
  const kernel = {
    vxlanEntries: async (dev: string) => ({ fdb: new Set(fdb(dev)), neigh: new Map<string, string>() }),
    apply: async (ops: Op[]) => ops.forEach((o) => o.op === 'fdb-add' && fdb(o.dev).add(`${o.mac} ${o.dst}`)),
    remove: async (ops: Op[]) => ops.forEach((o) => o.op === 'fdb-del' && fdb(o.dev).delete(`${o.mac} ${o.dst}`)),
  } as unknown as Datapath;
  return { kernel, fdb };
}

const SEGMENTS = [
  { subnet: '10.90.0.0/16', vni: 9001, sk: '10.90.0.0_16' },
  { subnet: '10.91.0.0/16', vni: 9002, sk: '10.91.0.0_16' },
];
const network = (s: (typeof SEGMENTS)[number]) => ({ id: `net${s.vni}`, mode: 'overlay', vni: s.vni, ipv4: [{ subnet: s.subnet }], ipv6: [] }) as unknown as NetworkRecord;

class Host {
  readonly lease: HostLease;
  readonly watch: HostRecordWatch;
  readonly overlay: Overlay;
  readonly mem = memoryKernel();
  /** The names this host answers from: the other hosts', from the same watches as their endpoints. */
  readonly names = new NameTable();
  private n = 0;

  constructor(readonly id: string, readonly index: number, store: Store, o: { warnAbove?: number; log?: Logger } = {}) {
    this.lease = new HostLease({ cluster: store, hostId: id, vtep: `198.51.100.${index}`, log, ttlSeconds: 10 });
    this.watch = new HostRecordWatch({ cluster: store, hostId: id, lease: this.lease, log: o.log ?? log, warnAbove: o.warnAbove });
    const live = new LiveHosts(id);
    this.watch.add(live);
    live.onChange(() => this.watch.refresh());
    this.overlay = new Overlay({
      cluster: store, hostId: id, underlay: { vtep: `198.51.100.${index}`, mtu: 1500 }, kernel: this.mem.kernel, log,
      lease: this.lease, watch: this.watch, live, tunnel: undefined as unknown as Tunnel,
    });
    this.watch.add(new RemoteNames(this.names));
  }

  /** Publishes a name record for an endpoint of this host (as Names does for a running container). */
  name(s: (typeof SEGMENTS)[number], endpoint: string, names: string[], v4: string): Promise<void> {
    return this.lease.put(nameKey(s.sk, this.id, endpoint), encodeName({ names, v4: [v4], v6: [] }));
  }

  /** The other hosts' endpoints this host has programmed on a segment: their MACs (not the flood entries). */
  programmed(s: (typeof SEGMENTS)[number]): string[] {
    return [...this.mem.fdb(`knv${s.vni}`)].map((e) => e.split(' ')[0]).filter((mac) => mac !== '00:00:00:00:00:00').sort();
  }

  async start(segments: Array<(typeof SEGMENTS)[number]>): Promise<void> {
    await this.lease.start();
    for (const s of segments) await this.join(s);
  }

  /** What the driver does for a new overlay network: define (or join) the segment, then attach. */
  async join(s: (typeof SEGMENTS)[number]): Promise<void> {
    await this.overlay.defineSegment({ ipv4: [{ subnet: s.subnet }], vni: s.vni });
    await this.overlay.attach(network(s));
  }

  /** Publishes an endpoint; returns its MAC. */
  async endpoint(s: (typeof SEGMENTS)[number]): Promise<string> {
    const mac = `02:00:00:00:${this.index.toString(16).padStart(2, '0')}:${(++this.n).toString(16).padStart(2, '0')}`;
    const ep = { id: `ep${this.id}${this.n}`, mac, address: `10.${s.vni - 8911}.${this.index}.${this.n}/16` } as EndpointRecord;
    await this.overlay.publish(network(s), ep);
    return mac;
  }

  async stop(): Promise<void> {
    this.watch.close();
    await this.lease.stop();
  }
}

describe.each(backends)('overlay endpoints through the %s store', (_name, open) => {
  test('each host programs the others\' endpoints on its own segments only; joins, leaves and departures follow', async () => {
    const backend = await open();
    const hosts: Host[] = [];
    const host = async (id: string, segments: Array<(typeof SEGMENTS)[number]>): Promise<Host> => {
      const h = new Host(id, hosts.length + 1, await backend.client());
      hosts.push(h);
      await h.start(segments);
      return h;
    };
    const [s1, s2] = SEGMENTS;
    try {
      const a = await host('aaaa', [s1, s2]);
      const b = await host('bbbb', [s1, s2]);
      const c = await host('cccc', [s2]);
      // Each segment record lists its hosts; each host's anchor marks its place there.
      const reader = await backend.client();
      expect(decode<{ hosts: string[] }>((await reader.get(K.segment(s2.sk)))!).hosts).toEqual(['aaaa', 'bbbb', 'cccc']);
      expect(await reader.get(K.anchor(s2.sk, 'cccc'))).toBeDefined();
      expect(await reader.get(K.anchor(s1.sk, 'cccc'))).toBeUndefined();

      const a1 = await a.endpoint(s1);
      const a2 = await a.endpoint(s2);
      const c1 = await c.endpoint(s2);
      await until('b has a\'s and c\'s endpoints', () => b.programmed(s1).join() === a1 && b.programmed(s2).join() === [a2, c1].sort().join());
      await until('c has a\'s endpoint on s2', () => c.programmed(s2).join() === a2);
      await until('a has c\'s endpoint', () => a.programmed(s2).join() === c1);
      // c has no network on s1: nothing of s1 reaches it.
      expect(c.programmed(s1)).toEqual([]);

      // c joins s1 later: it gets what is there already, then what follows.
      await c.join(s1);
      await until('c has a\'s endpoint on s1 after joining it', () => c.programmed(s1).join() === a1);
      const b1 = await b.endpoint(s1);
      await until('c has b\'s new endpoint on s1', () => c.programmed(s1).join() === [a1, b1].sort().join());

      // An endpoint removed goes everywhere.
      await a.overlay.unpublish(network(s1), { id: 'epaaaa1' } as EndpointRecord);
      await until('a\'s removed endpoint is gone from b and c', () => b.programmed(s1).join() === '' && c.programmed(s1).join() === b1);

      // A host that stops (its lease revoked) is forgotten everywhere.
      await c.stop();
      await until('c\'s endpoint is gone from a and b', () => !a.programmed(s2).includes(c1) && !b.programmed(s2).includes(c1));
      expect(b.programmed(s2)).toEqual([a2]);
    } finally {
      for (const h of hosts) await h.stop().catch(() => undefined);
    }
  });
});

describe.each(backends)('names of overlay endpoints through the %s store', (name, open) => {
  test('each host answers the others\' names from the watches of their endpoints; a removed name and a departed host go', async () => {
    const backend = await open();
    const hosts: Host[] = [];
    const [s1, s2] = SEGMENTS;
    try {
      for (const [id, segments] of [['aaaa', [s1, s2]], ['bbbb', [s1]], ['cccc', [s2]]] as const) {
        const h = new Host(id, hosts.length + 1, await backend.client());
        hosts.push(h);
        await h.start([...segments]);
      }
      const [a, b, c] = hosts;
      await a.endpoint(s1);
      await a.name(s1, 'epaaaa1', ['web', 'demo1'], '10.1.1.1');
      await a.endpoint(s2);
      await a.name(s2, 'epaaaa2', ['db'], '10.2.1.2');
      await b.name(s1, 'epbbbb1', ['web'], '10.1.2.1');
      await until('b resolves a\'s names on s1', () => b.names.lookup('demo1', [s1.sk])?.v4.join() === '10.1.1.1');
      await until('a resolves b\'s alias beside nothing of its own', () => a.names.lookup('web', [s1.sk])?.v4.join() === '10.1.2.1');
      await until('c resolves a\'s name on s2', () => c.names.lookup('db', [s2.sk])?.v4.join() === '10.2.1.2');
      // Names are scoped by segment: a's s1 name is not one on s2.
      expect(c.names.lookup('demo1', [s2.sk])).toBeUndefined();
      if (name === 'consul') {
        // Only b's own segments are watched there: c, which has no network on s1, holds none of its names.
        expect(c.names.lookup('demo1', [s1.sk])).toBeUndefined();
        // No watch more than the endpoints need: the liveness keys, and each other host on each shared segment.
        await until('a watches b on s1 and c on s2', () => a.watch.watches() === 1 + 2);
        await until('b watches a on s1', () => b.watch.watches() === 1 + 1);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect([a.watch.watches(), b.watch.watches(), c.watch.watches()]).toEqual([3, 2, 2]);
      }
      // A name dropped goes from the others.
      await b.lease.drop(nameKey(s1.sk, 'bbbb', 'epbbbb1'));
      await until('b\'s name is gone from a', () => a.names.lookup('web', [s1.sk]) === undefined);
      // A host that stops takes its names along.
      await a.stop();
      await until('a\'s names are gone from b and c', () => b.names.size === 0 && c.names.size === 0);
    } finally {
      for (const h of hosts) await h.stop().catch(() => undefined);
    }
  });
});

/** Three hosts (aaaa, bbbb, cccc) on one Consul test server, each with its own client, started on its segments. */
async function consulCluster(segmentsOf: (id: string) => Array<(typeof SEGMENTS)[number]>): Promise<{ consul: ConsulTestServer; hosts: Host[]; client(): Promise<Store> }> {
  const consul = await startConsulServer();
  cleanups.push(() => consul.close());
  const client = async (): Promise<Store> => {
    const store = await openConsulStore({ host: consul.host, port: consul.port });
    cleanups.unshift(() => store.close());
    return store;
  };
  const hosts: Host[] = [];
  for (const id of ['aaaa', 'bbbb', 'cccc']) {
    const h = new Host(id, hosts.length + 1, await client());
    hosts.push(h);
    await h.start(segmentsOf(id));
  }
  return { consul, hosts, client };
}

test('on Consul a change is read by each other host as the changed host\'s records on that segment, not the cluster\'s', async () => {
  const [s1, s2] = SEGMENTS;
  const { consul, hosts, client } = await consulCluster((id) => (id === 'aaaa' ? [s1] : [s1, s2]));
  try {
    const [a, b, c] = hosts;
    // c holds many endpoints, on both segments; b holds one.
    const many: string[] = [];
    for (let i = 0; i < 20; i++) many.push(await c.endpoint(i % 2 ? s2 : s1));
    await until('b has c\'s endpoints', () => b.programmed(s1).length + b.programmed(s2).length === 20);
    await until('a has c\'s endpoints on s1', () => a.programmed(s1).length === 10);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const reader0 = await client();

    // Writes elsewhere wake no watch: every watched prefix holds a key (an empty one would answer at each write,
    // as a prefix of a host without the segment would: a has no network on s2, and nobody watches a there).
    const quiet = await consul.kvReads();
    for (let i = 0; i < 20; i++) await reader0.commit([{ key: `elsewhere/${i}`, value: 'x' }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await consul.kvReads()) - quiet).toBeLessThanOrEqual(2);

    // What one whole-prefix read costs: a watch on every endpoint record would make each other host pay it.
    const reader = await client();
    const base = await consul.counters();
    await reader.list(K.endpoints);
    const wholePrefix = (await consul.counters()).bytesOut - base.bytesOut;

    const before = await consul.counters();
    const mac = await b.endpoint(s1);
    await until('a and c have b\'s new endpoint', () => a.programmed(s1).includes(mac) && c.programmed(s1).includes(mac));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const readBytes = (await consul.counters()).bytesOut - before.bytesOut;
    // Positive control: the change was read (a and c each read b's records on s1) ...
    expect(readBytes).toBeGreaterThan(0);
    // ... and c's twenty records were not read again: whole-prefix watches would read at least twice this.
    expect(wholePrefix).toBeGreaterThan(20 * 100);
    expect(readBytes).toBeLessThan(wholePrefix / 2);
  } finally {
    for (const h of hosts) await h.stop().catch(() => undefined);
  }
});

test('on Consul a host whose lease lapses gets back what it missed, and the others get its endpoints back', async () => {
  const [s1] = SEGMENTS;
  const { consul, hosts, client } = await consulCluster(() => [s1]);
  try {
    const [a, b, c] = hosts;
    const a1 = await a.endpoint(s1);
    const b1 = await b.endpoint(s1);
    await until('a and c have b\'s endpoint, b has a\'s', () => a.programmed(s1).includes(b1) && c.programmed(s1).includes(b1) && b.programmed(s1).includes(a1));
    const lost = b.lease.current()!.id;
    // Consul invalidates b's session: its keys go (Behavior=delete), and b re-publishes under a new one.
    await consul.expireSession(lost);
    // Control: b's record went with its session (b notices at its next renewal, then re-publishes).
    const reader = await client();
    expect(await reader.get(K.endpoint(s1.sk, 'bbbb', 'epbbbb1'))).toBeUndefined();
    // Changes while b is away and right after: b must get them all.
    const a2 = await a.endpoint(s1);
    await until('b to hold a new lease', () => (b.lease.current()?.id ?? lost) !== lost, 15_000);
    const c1 = await c.endpoint(s1);
    const a3 = await a.endpoint(s1);
    await until('b has every endpoint of a and c', () => b.programmed(s1).join() === [a1, a2, a3, c1].sort().join(), 15_000);
    await until('a and c have b\'s endpoint again', () => a.programmed(s1).includes(b1) && c.programmed(s1).includes(b1), 15_000);
    // Its record is in the store under the new lease (not deleted later by the old session's end).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(a.programmed(s1)).toEqual([b1, c1].sort());
    expect(c.programmed(s1)).toEqual([a1, a2, a3, b1].sort());
  } finally {
    for (const h of hosts) await h.stop().catch(() => undefined);
  }
});

test('on Consul a host whose watches (one connection each) pass the warning level says so once, naming Consul\'s connection limit', async () => {
  const [s1, s2] = SEGMENTS;
  const consul = await startConsulServer();
  cleanups.push(() => consul.close());
  const hosts: Host[] = [];
  const logs = [recordingLog(), recordingLog(), recordingLog()];
  try {
    for (const [i, id] of ['aaaa', 'bbbb', 'cccc'].entries()) {
      // aaaa warns above 4 watches; the others (positive control of the count) above 50.
      const store = await openConsulStore({ host: consul.host, port: consul.port });
      cleanups.unshift(() => store.close());
      const h = new Host(id, i + 1, store, { warnAbove: i === 0 ? 4 : 50, log: logs[i].log });
      hosts.push(h);
      await h.start([s1, s2]);
    }
    const [a] = hosts;
    // aaaa: the liveness keys (1) and the other two hosts on two segments (4).
    await until('aaaa watches the other two hosts on both segments', () => a.watch.watches() === 5);
    const warnings = (i: number) => logs[i].lines.filter((l) => l.level === 'warn' && l.message.includes('http_max_conns_per_client'));
    await until('aaaa warns', () => warnings(0).length === 1);
    expect(warnings(0)[0].meta).toEqual({ watches: a.watch.watches() });
    expect(warnings(1)).toEqual([]);
    expect(warnings(2)).toEqual([]);
    // Once, not at every refresh.
    a.watch.refresh();
    expect(warnings(0)).toHaveLength(1);
  } finally {
    for (const h of hosts) await h.stop().catch(() => undefined);
  }
});
