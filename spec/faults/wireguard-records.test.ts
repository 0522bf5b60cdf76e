// Hostile and stale WireGuard records in the store: two hosts on etcd share an encrypted overlay while records with
// bad keys, bad endpoints, stolen addresses, copied keys and records of hosts long gone are written beside theirs.
// The good peers must stay exactly as they were, before and after a knit restart that reads them all at once.
import { IMAGE, waitFor } from '../support/testbed.js';
import { FaultCluster } from './support/fault-cluster.js';
import { Tally } from './support/tally.js';

const tally = new Tally('hostile WireGuard records');
let c: FaultCluster;
const [A, B] = [0, 1];
const ROOT = '/knit/';
const ip: string[] = [];

const wgDevice = (i: number) => `kwg${String(c.knits[i].logs().find((l) => l.message === 'knit ready')?.host).slice(0, 12)}`;
/** `wg show DEV dump` peers as "key endpoint allowed-ips". */
const peers = async (i: number) => (await c.hosts[i].exec(['wg', 'show', wgDevice(i), 'dump'])).stdout.split('\n').slice(1).filter(Boolean)
  .map((l) => l.split('\t')).map((f) => `${f[0]} ${f[2]} ${f[3]}`).sort();
const ping = async (i: number, to: string) => (await c.docker(i, ['exec', `e${i}`, 'ping', '-c', '2', '-W', '2', to], { reject: false })).exitCode === 0;
const put = (key: string, value: string) => c.etcd!.ctl(['put', `${ROOT}${key}`, value]);
const fakeKey = (n: number) => `${String.fromCharCode(97 + n).repeat(42)}A=`;

beforeAll(async () => {
  c = await FaultCluster.start({ names: ['fwga', 'fwgb'], store: 'etcd' });
  for (const i of [A, B]) {
    await c.docker(i, ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '-o', 'knit.mode=overlay', '-o', 'encrypted', '--subnet', '10.62.0.0/24', 'enc']);
    await c.docker(i, ['run', '-d', '--name', `e${i}`, '--network', 'enc', IMAGE, 'sleep', '3600']);
    ip[i] = (await c.docker(i, ['inspect', '-f', '{{.NetworkSettings.Networks.enc.IPAddress}}', `e${i}`])).stdout.trim();
  }
  await waitFor('the encrypted overlay to carry pings both ways', async () => (await ping(A, ip[B])) && ping(B, ip[A]), { timeoutMs: 20_000, intervalMs: 500 });
});

afterAll(async () => {
  tally.finish();
  await c?.stop();
});

test('bad keys, bad endpoints, stolen addresses, copied keys and stale hosts never disturb the good peers', async () => {
  const good = [await peers(A), await peers(B)];
  expect(good.map((p) => p.length)).toEqual([1, 1]);
  const [bKey, , bAddress] = good[A][0].split(' ');
  const tunnelB = bAddress.split('/')[0];
  const hostile: Array<[string, string]> = [
    ['wireguard/hosts/aaaa000000000001', '{not json'],
    ['wireguard/hosts/aaaa000000000002', JSON.stringify({ v: 1, publicKey: 'not-a-key; reboot', endpoint: '198.18.0.9:51820', address: '169.254.64.40' })],
    ['wireguard/hosts/aaaa000000000003', JSON.stringify({ v: 1, publicKey: fakeKey(3), endpoint: 'evil.example:51820', address: '169.254.64.41' })],
    ['wireguard/hosts/aaaa000000000004', JSON.stringify({ v: 1, publicKey: fakeKey(4), endpoint: '198.18.0.9:99999', address: '169.254.64.42' })],
    ['wireguard/hosts/aaaa000000000005', JSON.stringify({ v: 1, publicKey: fakeKey(5), endpoint: '198.18.0.9:51820', address: '10.0.0.5' })],
    // Host B's tunnel address with another key: the claim says it is B's.
    ['wireguard/hosts/aaaa000000000006', JSON.stringify({ v: 1, publicKey: fakeKey(6), endpoint: '198.18.0.9:51820', address: tunnelB })],
    // Host B's key copied under another host, with an address nobody claimed.
    ['wireguard/hosts/aaaa000000000007', JSON.stringify({ v: 1, publicKey: bKey, endpoint: '198.18.0.9:51820', address: '169.254.64.43' })],
    ['wireguard/hosts/not-a-host-id', JSON.stringify({ v: 1, publicKey: fakeKey(8), endpoint: '198.18.0.9:51820', address: '169.254.64.44' })],
    ['wireguard/hosts/aaaa000000000009/extra', JSON.stringify({ v: 1, publicKey: fakeKey(9), endpoint: '198.18.0.9:51820', address: '169.254.64.45' })],
    // A stale host (no lease, gone for good) with a valid record and claim: a peer that never answers.
    ['wireguard/addresses/169.254.64.46', 'aaaa00000000000a'],
    ['wireguard/hosts/aaaa00000000000a', JSON.stringify({ v: 1, publicKey: fakeKey(10), endpoint: '198.18.0.99:51820', address: '169.254.64.46' })],
  ];
  for (const [key, value] of hostile) await put(key, value);
  tally.op(true, hostile.length);
  const stale = `${fakeKey(10)} 198.18.0.99:51820 169.254.64.46/32`;
  await waitFor('the stale host to become a peer on both hosts', async () => (await peers(A)).includes(stale) && (await peers(B)).includes(stale), { timeoutMs: 15_000 });
  const check = async (when: string) => {
    const failures: string[] = [];
    for (const i of [A, B]) {
      const now = await peers(i);
      if (JSON.stringify(now) !== JSON.stringify([...good[i], stale].sort())) failures.push(`${when}: host ${i} peers ${JSON.stringify(now)}`);
      if (!(await ping(i, ip[1 - i]))) failures.push(`${when}: host ${i} lost the encrypted overlay`);
    }
    return tally.check(failures);
  };
  expect(await check('with the records written')).toEqual([]);
  // A restart reads every record at once (the first listing) rather than one watch event at a time.
  await c.knits[A].restart();
  await waitFor('A to list the records again', async () => (await peers(A)).includes(stale), { timeoutMs: 15_000 });
  expect(await check('after knit A restarted')).toEqual([]);
  tally.crash();
  for (const [key] of hostile) await c.etcd!.ctl(['del', `${ROOT}${key}`]);
  await waitFor('the stale peer to go once its record is deleted', async () => !(await peers(A)).includes(stale) && !(await peers(B)).includes(stale), { timeoutMs: 15_000 });
  expect(tally.check([await peers(A), await peers(B)].flatMap((p, i) => (JSON.stringify(p) === JSON.stringify(good[i]) ? [] : [`host ${i}: ${JSON.stringify(p)}`])))).toEqual([]);
});

test('a hostile endpoint record pointing an encrypted segment at an underlay address: its packets are dropped, never sent in clear', async () => {
  const counter = async (i: number, table: string, chain: string, rule: RegExp) => {
    const out = (await c.hosts[i].exec(['iptables', '-t', table, '-v', '-x', '-n', '-L', chain])).stdout.split('\n');
    return Number(out.find((l) => rule.test(l))?.trim().split(/\s+/)[0] ?? NaN);
  };
  const offTunnel = /DROP\s+17\s+--\s+\*\s+!kwg\S+\s+.*udp dpt:4790/;
  const fromUnderlay = /DROP\s+17\s+--\s+\*\s+\*\s+.*udp dpt:4790/;
  const before = { out: await counter(A, 'mangle', 'KNIT-WG-POST', offTunnel), in: await counter(B, 'raw', 'KNIT-WG-PRE', fromUnderlay) };
  // An endpoint of a host that does not exist, on the encrypted segment, whose VTEP is host B's underlay address.
  await put('overlay/endpoints/10.62.0.0_24/aaaa00000000000b/hostile', JSON.stringify({ v: 1, vtep: c.hosts[B].underlayIp, mac: '02:66:66:66:66:66', ip: '10.62.0.250' }));
  await waitFor('A to program the hostile entry', async () => (await c.hosts[A].exec(['bridge', 'fdb', 'show'])).stdout.includes('02:66:66:66:66:66'), { timeoutMs: 15_000 });
  expect((await c.docker(A, ['exec', 'e0', 'ping', '-c', '3', '-W', '1', '10.62.0.250'], { reject: false })).exitCode).not.toBe(0);
  const after = { out: await counter(A, 'mangle', 'KNIT-WG-POST', offTunnel), in: await counter(B, 'raw', 'KNIT-WG-PRE', fromUnderlay) };
  const failures: string[] = [];
  if (!(after.out >= before.out + 3)) failures.push(`A's off-tunnel drop counter went from ${before.out} to ${after.out}, not up by the 3 pings`);
  if (after.in !== before.in) failures.push(`B saw encrypted-port VXLAN arrive off the tunnel (${before.in} -> ${after.in}): it left A in clear`);
  if (!(await ping(A, ip[B]))) failures.push('A lost the encrypted overlay to B');
  expect(tally.check(failures)).toEqual([]);
  await c.etcd!.ctl(['del', `${ROOT}overlay/endpoints/10.62.0.0_24/aaaa00000000000b/hostile`]);
});
