// The datapath against the real kernel, inside the throwaway network namespace this jest process was started in.
import { KnitError } from '../../src/errors.js';
import { run, spawnCounts } from '../../src/datapath/exec.js';
import { Kernel } from '../../src/datapath/kernel.js';
import type { LinkState, Op } from '../../src/datapath/ops.js';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { assertThrowawayNetns } from './guard.js';

assertThrowawayNetns();

const kernel = new Kernel();
const alias = (role: string, n: number): string => `knit:${role}:${String(n).padStart(12, '0')}`;
const LINKS = ['kntkbr1', 'kntkbr2', 'kntkbr3', 'kntkbr4', 'kntkbr5', 'kntkbr6', 'kntkul', 'kntkh1', 'kntkh2', 'kntkv1', 'kntkv2', 'kntkbr7', 'kntkg1', 'kntkg2', 'kntkg3', 'kntkg4', 'kntkg5'];

async function link(name: string): Promise<LinkState | undefined> {
  return (await kernel.links()).find((l) => l.name === name);
}

async function json<T>(tool: 'ip' | 'bridge', args: string[]): Promise<T> {
  const r = await run({ tool, args: ['-j', ...args] });
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout || '[]') as T;
}

async function rejection(p: Promise<unknown>): Promise<KnitError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KnitError);
  return err as KnitError;
}

afterAll(async () => {
  kernel.close();
  await kernel.remove(LINKS.map((name): Op => ({ op: 'link-del', name })));
  for (const family of [4, 6] as const) {
    // Declaring the chain empties it (--noflush touches only named chains); then it can go.
    await kernel.iptablesRestore(family, '*filter\n:KNIT-TEST - [0:0]\n-X KNIT-TEST\nCOMMIT\n');
  }
});

describe('links', () => {
  test('a bridge with addresses, brought up', async () => {
    await kernel.apply([
      { op: 'bridge-add', name: 'kntkbr1', mtu: 1400, alias: alias('net', 1), mac: '02:00:00:aa:00:01' },
      { op: 'addr-add', dev: 'kntkbr1', cidr: '10.77.0.1/24' },
      { op: 'addr-add', dev: 'kntkbr1', cidr: 'fd77::1/64' },
      { op: 'link-up', name: 'kntkbr1' },
    ]);
    expect(await link('kntkbr1')).toEqual({
      name: 'kntkbr1', kind: 'bridge', alias: alias('net', 1), mtu: 1400, up: true, mac: '02:00:00:aa:00:01', addrs: ['10.77.0.1/24', 'fd77::1/64'],
    });
  });

  test('a veth pair on the bridge with MTU, peer MAC and alias, up at creation', async () => {
    await kernel.apply([
      { op: 'veth-add', name: 'kntkh1', peer: 'kntkc1', mtu: 1400, master: 'kntkbr1', alias: alias('ep', 1), peerMac: '02:00:00:bb:00:01', up: true },
    ]);
    expect(await link('kntkh1')).toMatchObject({ kind: 'veth', master: 'kntkbr1', mtu: 1400, alias: alias('ep', 1), up: true, addrs: [] });
    expect(await link('kntkc1')).toMatchObject({ kind: 'veth', mtu: 1400, mac: '02:00:00:bb:00:01', up: false });
  });

  test('six link ops take exactly one ip process', async () => {
    const before = spawnCounts();
    await kernel.apply([
      { op: 'bridge-add', name: 'kntkbr2', mtu: 1500, alias: alias('net', 2) },
      { op: 'addr-add', dev: 'kntkbr2', cidr: '10.78.0.1/24' },
      { op: 'link-up', name: 'kntkbr2' },
      { op: 'veth-add', name: 'kntkh2', peer: 'kntkc2', mtu: 1500, master: 'kntkbr2', alias: alias('ep', 2) },
      { op: 'link-up', name: 'kntkh2' },
      { op: 'link-up', name: 'kntkc2' },
    ]);
    const after = spawnCounts();
    expect(after.ip - before.ip).toBe(1);
    expect(after.bridge - before.bridge).toBe(0);
    expect(await link('kntkc2')).toMatchObject({ up: true });
  });

  test('a batch whose third op fails leaves nothing of the first two, and keeps what was there', async () => {
    const err = await rejection(kernel.apply([
      { op: 'bridge-add', name: 'kntkbr3', mtu: 1500, alias: alias('net', 3) },
      { op: 'addr-add', dev: 'kntkbr3', cidr: '10.79.0.1/24' },
      { op: 'bridge-add', name: 'kntkbr1', mtu: 1500, alias: alias('net', 1) },
      { op: 'link-up', name: 'kntkbr3' },
    ]));
    expect(err.kind).toBe('internal');
    expect(err.message).toBe('creating bridge kntkbr1 failed: File exists');
    expect(await link('kntkbr3')).toBeUndefined();
    expect(await link('kntkbr1')).toMatchObject({ kind: 'bridge', up: true, addrs: ['10.77.0.1/24', 'fd77::1/64'] });
  });

  test('concurrent calls share ip processes; one failing call is undone alone and the others are made', async () => {
    const veth = (n: number): Op => ({ op: 'veth-add', name: `kntkg${n}`, peer: `kntkp${n}`, mtu: 1500, master: 'kntkbr1', alias: alias('ep', 100 + n) });
    const before = spawnCounts();
    const results = await Promise.allSettled([
      kernel.apply([veth(1)]),
      kernel.apply([veth(2)]),
      // Its first op is made, its second fails (kntkbr1 exists): the first must be taken back.
      kernel.apply([veth(3), { op: 'bridge-add', name: 'kntkbr1', mtu: 1500, alias: alias('net', 1) }]),
      kernel.apply([veth(4)]),
      kernel.apply([veth(5)]),
    ]);
    const spawned = spawnCounts().ip - before.ip;
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(((results[2] as PromiseRejectedResult).reason as Error).message).toBe('creating bridge kntkbr1 failed: File exists');
    for (const n of [1, 2, 4, 5]) expect(await link(`kntkg${n}`)).toMatchObject({ kind: 'veth', master: 'kntkbr1', alias: alias('ep', 100 + n) });
    expect(await link('kntkg3')).toBeUndefined();
    // 1 alone, then 2-5 together (fails at 3), then 4-5 again, then the undo of 3: fewer than one per call plus undo.
    expect(spawned).toBeLessThan(6);
  });

  test('a failing forwarding entry takes back the links of the same call', async () => {
    const err = await rejection(kernel.apply([
      { op: 'bridge-add', name: 'kntkbr4', mtu: 1500, alias: alias('net', 4) },
      { op: 'fdb-add', dev: 'kntknone', mac: '02:00:00:cc:00:01', dst: '10.80.0.2' },
    ]));
    expect(err.message).toMatch(/^adding forwarding entry 02:00:00:cc:00:01 via 10.80.0.2 on kntknone failed: Cannot find device/);
    expect(await link('kntkbr4')).toBeUndefined();
  });

  test('a neighbour line that makes ip exit without a line number is still undone and named', async () => {
    await kernel.apply([{ op: 'bridge-add', name: 'kntkbr6', mtu: 1500, alias: alias('net', 6), up: true }]);
    await kernel.setSysctl('net.ipv6.conf.kntkbr6.disable_ipv6', '1');
    const err = await rejection(kernel.apply([
      { op: 'neigh-add', dev: 'kntkbr6', ip: 'fd00::7', mac: '02:00:00:dd:00:07' },
      { op: 'bridge-add', name: 'kntkbr5', mtu: 1500, alias: alias('net', 5) },
    ]));
    expect(err.message).toBe('adding neighbour fd00::7 (02:00:00:dd:00:07) on kntkbr6 failed: IPv6 is disabled on this device');
    expect(await link('kntkbr5')).toBeUndefined();
  });

  test('remove of what is absent succeeds; other errors are reported', async () => {
    await kernel.remove([
      { op: 'link-del', name: 'kntknope1' },
      { op: 'addr-del', dev: 'kntkbr1', cidr: '10.99.99.1/24' },
      { op: 'neigh-del', dev: 'kntknope2', ip: '10.99.99.2' },
      { op: 'fdb-del', dev: 'kntknope3', mac: '00:00:00:00:00:00', dst: '10.99.99.3' },
      { op: 'link-del', name: 'kntknope4' },
    ]);
    const err = await rejection(kernel.remove([{ op: 'link-del', name: 'kntknope5' }, { op: 'link-del', name: 'lo' }]));
    expect(err.message).toBe('deleting link lo failed: Operation not supported');
  });
});

describe('overlay entries', () => {
  test('a VXLAN device with VNI and local address on the bridge', async () => {
    await kernel.apply([
      { op: 'bridge-add', name: 'kntkul', mtu: 1500, alias: alias('net', 7), up: true },
      { op: 'addr-add', dev: 'kntkul', cidr: '10.81.0.1/24' },
      { op: 'vxlan-add', name: 'kntkv1', vni: 4242, local: '10.81.0.1', port: 4789, mtu: 1450, alias: alias('vx', 1), master: 'kntkbr1', up: true },
    ]);
    expect(await link('kntkv1')).toMatchObject({ kind: 'vxlan', master: 'kntkbr1', mtu: 1450, alias: alias('vx', 1), up: true });
    const [dev] = await json<Array<{ linkinfo: { info_data: Record<string, unknown> } }>>('ip', ['-d', 'link', 'show', 'kntkv1']);
    expect(dev.linkinfo.info_data).toMatchObject({ id: 4242, local: '10.81.0.1', port: 4789, learning: false, proxy: true });
  });

  test('forwarding entries: two all-zero destinations and one MAC, idempotent, then removed', async () => {
    const fdb: Op[] = [
      { op: 'fdb-add', dev: 'kntkv1', mac: '00:00:00:00:00:00', dst: '10.81.0.2' },
      { op: 'fdb-add', dev: 'kntkv1', mac: '00:00:00:00:00:00', dst: '10.81.0.3' },
      { op: 'fdb-add', dev: 'kntkv1', mac: '02:00:00:ee:00:05', dst: '10.81.0.2' },
    ];
    await kernel.apply(fdb);
    await kernel.apply(fdb);
    const entries = async (): Promise<string[]> =>
      (await json<Array<{ mac: string; dst?: string }>>('bridge', ['fdb', 'show', 'dev', 'kntkv1'])).filter((e) => e.dst).map((e) => `${e.mac}>${e.dst}`).sort();
    expect(await entries()).toEqual(['00:00:00:00:00:00>10.81.0.2', '00:00:00:00:00:00>10.81.0.3', '02:00:00:ee:00:05>10.81.0.2']);
    await kernel.remove(fdb.map((op) => ({ ...op, op: 'fdb-del' }) as Op));
    expect(await entries()).toEqual([]);
  });

  test('neighbour entries: added permanent, removed, removed again', async () => {
    const neigh = async (): Promise<Array<{ dst: string; lladdr: string; state: string[] }>> => json('ip', ['neigh', 'show', 'dev', 'kntkv1']);
    await kernel.apply([{ op: 'neigh-add', dev: 'kntkv1', ip: '10.77.0.5', mac: '02:00:00:ee:00:05' }]);
    await kernel.apply([{ op: 'neigh-add', dev: 'kntkv1', ip: '10.77.0.5', mac: '02:00:00:ee:00:06' }]);
    expect(await neigh()).toEqual([expect.objectContaining({ dst: '10.77.0.5', lladdr: '02:00:00:ee:00:06', state: ['PERMANENT'] })]);
    await kernel.remove([{ op: 'neigh-del', dev: 'kntkv1', ip: '10.77.0.5' }]);
    expect(await neigh()).toEqual([]);
    await kernel.remove([{ op: 'neigh-del', dev: 'kntkv1', ip: '10.77.0.5' }]);
  });
});

describe('entry sessions: neighbour and forwarding entries through long-lived ip and bridge processes', () => {
  const fdbOf = async (dev: string): Promise<string[]> =>
    (await json<Array<{ mac: string; dst?: string }>>('bridge', ['fdb', 'show', 'dev', dev])).filter((e) => e.dst).map((e) => `${e.mac}>${e.dst}`).sort();
  const neighOf = async (dev: string): Promise<string[]> =>
    (await json<Array<{ dst: string; lladdr: string }>>('ip', ['neigh', 'show', 'dev', dev])).map((e) => `${e.dst}>${e.lladdr}`).sort();
  const entry = (dev: string, n: number): Op[] => [
    { op: 'neigh-add', dev, ip: `10.77.1.${n}`, mac: `02:00:00:ab:01:0${n}` },
    { op: 'fdb-add', dev, mac: `02:00:00:ab:01:0${n}`, dst: `10.81.0.${n + 10}` },
  ];
  const vxlan = (name: string, vni: number): Op => ({ op: 'vxlan-add', name, vni, local: '10.81.0.1', port: 4789, mtu: 1450, alias: alias('vx', vni), master: 'kntkbr1', up: true });
  let k: Kernel;
  beforeEach(() => (k = new Kernel()));
  afterEach(() => k.close());

  test('six calls take one ip and one bridge process, and their entries are in the kernel', async () => {
    const before = spawnCounts();
    for (const n of [1, 2, 3, 4, 5]) await k.apply(entry('kntkv1', n));
    await k.remove([{ op: 'neigh-del', dev: 'kntkv1', ip: '10.77.1.5' }, { op: 'fdb-del', dev: 'kntkv1', mac: '02:00:00:ab:01:05', dst: '10.81.0.15' }]);
    const after = spawnCounts();
    expect([after.ip - before.ip, after.bridge - before.bridge]).toEqual([1, 1]);
    expect(await neighOf('kntkv1')).toEqual([1, 2, 3, 4].map((n) => `10.77.1.${n}>02:00:00:ab:01:0${n}`));
    expect(await fdbOf('kntkv1')).toEqual([1, 2, 3, 4].map((n) => `02:00:00:ab:01:0${n}>10.81.0.${n + 10}`));
    await k.remove([1, 2, 3, 4].flatMap((n) => entry('kntkv1', n)).map((op) => ({ ...op, op: op.op.replace('-add', '-del') }) as Op));
    expect([await neighOf('kntkv1'), await fdbOf('kntkv1')]).toEqual([[], []]);
  });

  test('a device deleted and made again behind knit\'s back: the stale link index is noticed and the entries land', async () => {
    await k.apply([vxlan('kntkv2', 4243)]);
    await k.apply(entry('kntkv2', 1));
    // Not through k: its sessions keep the index kntkv2 had, which now names nothing.
    for (const args of [['link', 'del', 'kntkv2'], ['link', 'add', 'kntkv2', 'type', 'vxlan', 'id', '4243', 'local', '10.81.0.1', 'dstport', '4789', 'nolearning']]) {
      expect((await run({ tool: 'ip', args })).exitCode).toBe(0);
    }
    const before = spawnCounts();
    await k.apply(entry('kntkv2', 2));
    // Both tools failed once on the old index and ran again on a new process.
    const after = spawnCounts();
    expect([after.ip - before.ip, after.bridge - before.bridge]).toEqual([1, 1]);
    expect(await neighOf('kntkv2')).toEqual(['10.77.1.2>02:00:00:ab:01:02']);
    expect(await fdbOf('kntkv2')).toEqual(['02:00:00:ab:01:02>10.81.0.12']);
  });

  test('a link knit deletes itself starts fresh processes before the next entries', async () => {
    await k.apply(entry('kntkv2', 3));
    await k.remove([{ op: 'link-del', name: 'kntkv2' }]);
    await k.apply([vxlan('kntkv2', 4244)]);
    const before = spawnCounts();
    await k.apply(entry('kntkv2', 4));
    const after = spawnCounts();
    // One each, for the fresh start (a stale process would have failed and been replaced: two).
    expect([after.ip - before.ip, after.bridge - before.bridge]).toEqual([1, 1]);
    expect(await neighOf('kntkv2')).toEqual(['10.77.1.4>02:00:00:ab:01:04']);
  });

  test('a failing forwarding entry is named, the entries before it taken back, and the next call works', async () => {
    const err = await rejection(k.apply([
      { op: 'fdb-add', dev: 'kntkv1', mac: '02:00:00:ab:02:01', dst: '10.81.0.21' },
      { op: 'fdb-add', dev: 'kntknone', mac: '02:00:00:ab:02:02', dst: '10.81.0.22' },
      { op: 'fdb-add', dev: 'kntkv1', mac: '02:00:00:ab:02:03', dst: '10.81.0.23' },
    ]));
    expect(err.message).toMatch(/^adding forwarding entry 02:00:00:ab:02:02 via 10.81.0.22 on kntknone failed: Cannot find device/);
    expect(await fdbOf('kntkv1')).toEqual([]);
    await k.apply([{ op: 'fdb-add', dev: 'kntkv1', mac: '02:00:00:ab:02:04', dst: '10.81.0.24' }]);
    expect(await fdbOf('kntkv1')).toEqual(['02:00:00:ab:02:04>10.81.0.24']);
    await k.remove([{ op: 'fdb-del', dev: 'kntkv1', mac: '02:00:00:ab:02:04', dst: '10.81.0.24' }]);
  });

  test('a removal goes on past a line that fails, as -force does', async () => {
    await k.apply(entry('kntkv1', 6));
    await k.remove([
      { op: 'fdb-del', dev: 'kntknone', mac: '02:00:00:ab:01:06', dst: '10.81.0.16' },
      { op: 'fdb-del', dev: 'kntkv1', mac: '02:00:00:ab:01:07', dst: '10.81.0.17' },
      { op: 'fdb-del', dev: 'kntkv1', mac: '02:00:00:ab:01:06', dst: '10.81.0.16' },
      { op: 'neigh-del', dev: 'kntkv1', ip: '10.77.1.6' },
    ]);
    expect([await neighOf('kntkv1'), await fdbOf('kntkv1')]).toEqual([[], []]);
  });

  test('a neighbour line that ends ip without a line number is named, and the session starts again', async () => {
    await kernel.apply([{ op: 'bridge-add', name: 'kntkbr7', mtu: 1500, alias: alias('net', 8), up: true }]);
    await kernel.setSysctl('net.ipv6.conf.kntkbr7.disable_ipv6', '1');
    const err = await rejection(k.apply([{ op: 'neigh-add', dev: 'kntkbr7', ip: 'fd00::8', mac: '02:00:00:dd:00:08' }]));
    expect(err.message).toBe('adding neighbour fd00::8 (02:00:00:dd:00:08) on kntkbr7 failed: IPv6 is disabled on this device');
    await k.apply([{ op: 'neigh-add', dev: 'kntkbr7', ip: '10.77.2.8', mac: '02:00:00:dd:00:08' }]);
    expect(await neighOf('kntkbr7')).toEqual(['10.77.2.8>02:00:00:dd:00:08']);
  });
});

describe('iptables', () => {
  test.each([4, 6] as const)('IPv%i: a custom chain restored without flushing, then seen by save', async (family) => {
    const src = family === 4 ? '10.77.0.0/24' : 'fd77::/64';
    await kernel.iptablesRestore(family, `*filter\n:KNIT-TEST - [0:0]\n-A KNIT-TEST -s ${src} -j RETURN\nCOMMIT`);
    const saved = await kernel.iptablesSave(family, 'filter');
    expect(saved).toContain(':KNIT-TEST - [0:0]');
    expect(saved).toContain(`-A KNIT-TEST -s ${src} -j RETURN`);
    expect(saved).toContain(':FORWARD ACCEPT');
  });

  test('a rejected input throws with the tool words', async () => {
    const err = await rejection(kernel.iptablesRestore(4, '*filter\n-A KNIT-NO-SUCH-CHAIN -j RETURN\nCOMMIT\n'));
    expect(err.message).toMatch(/^iptables-restore failed: .*line 2 failed/);
  });

  test('an unknown table is refused before any process', async () => {
    const before = spawnCounts();
    await expect(kernel.iptablesSave(4, 'filter -F')).rejects.toThrow(/iptables table/);
    expect(spawnCounts()).toEqual(before);
  });
});

describe('refusals and processes', () => {
  test('a name with a shell metacharacter is refused before any process runs', async () => {
    const before = spawnCounts();
    for (const name of ['kn-$(reboot)', 'kn;reboot', 'kn x', 'kn\nlink']) {
      const err = await rejection(kernel.apply([{ op: 'link-up', name: 'kntkbr1' }, { op: 'bridge-add', name, mtu: 1500, alias: alias('net', 9) }]));
      expect(err.kind).toBe('bad-request');
      await expect(kernel.remove([{ op: 'link-del', name }])).rejects.toThrow(/interface name/);
    }
    expect(spawnCounts()).toEqual(before);
  });

  test('run returns a non-zero exit instead of throwing', async () => {
    const r = await run({ tool: 'ip', args: ['link', 'show', 'kntknope'] });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/does not exist|Cannot find device/);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  test('sysctls are read and written through /proc/sys, and names are checked', async () => {
    await kernel.setSysctl('net.ipv4.ip_forward', '1');
    expect(await kernel.sysctl('net.ipv4.ip_forward')).toBe('1');
    await expect(kernel.sysctl('net/../../etc/passwd')).rejects.toThrow(/sysctl name/);
    await expect(kernel.setSysctl('net.ipv4.ip_forward', '1; reboot')).rejects.toThrow(/malformed/);
  });
});

describe('connection tracking', () => {
  const table = async (): Promise<string> => readFile('/proc/net/nf_conntrack', 'utf8');

  test('the flows of a removed address are forgotten; an address without flows starts no process', async () => {
    // A conntrack match makes the kernel track this namespace's flows; one ping to loopback leaves a flow.
    await kernel.iptablesRestore(4, '*filter\n:KNIT-TEST - [0:0]\n-A KNIT-TEST -m conntrack --ctstate NEW -j RETURN\nCOMMIT\n');
    const ping = await execa('ping', ['-c', '1', '-W', '2', '127.0.0.1'], { reject: false });
    expect(ping.exitCode).toBe(0);
    expect(await table()).toMatch(/src=127\.0\.0\.1 dst=127\.0\.0\.1 /);

    const before = spawnCounts().conntrack;
    await kernel.flushConntrack([], ['10.77.9.9']);
    expect(spawnCounts().conntrack).toBe(before);

    await kernel.flushConntrack([], ['127.0.0.1']);
    expect(spawnCounts().conntrack).toBe(before + 2);
    expect(await table()).not.toMatch(/src=127\.0\.0\.1 /);
  });
});
