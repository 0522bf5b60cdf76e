// Everything Docker's own bridge gives, observed as traffic: NAT, isolation, ICC, internal, ports, IPv6, restart.
import { addOutsideHost, engineTag, IMAGE, startHost, stopAll, SUITE_ENGINES, waitFor, type Host, type OutsideHost } from '../support/testbed.js';
import { Knit } from '../support/knit.js';

let host: Host;
let outside: OutsideHost;
let knit: Knit;

const create = (args: string[]) => host.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', ...args]);
const runDetached = (name: string, args: string[], cmd: string[] = ['sleep', '600']) =>
  host.docker(['run', '-d', '--name', name, '--stop-timeout', '1', ...args, IMAGE, ...cmd]);
const ipOf = async (name: string, network: string, v6 = false) =>
  (await host.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").${v6 ? 'GlobalIPv6Address' : 'IPAddress'}}}`, name])).stdout.trim();
const ping = async (from: string, to: string) => (await host.docker(['exec', from, 'ping', '-c', '1', '-W', '2', to], { reject: false })).exitCode === 0;
const web = (name: string, args: string[]) =>
  runDetached(name, args, ['sh', '-c', 'mkdir -p /w80 /w81 && echo port80 > /w80/index.html && echo port81 > /w81/index.html && httpd -p 81 -h /w81 && exec httpd -f -p 80 -h /w80']);
const outsideGet = (port: number) => outside.exec(['timeout', '5', 'busybox', 'wget', '-q', '-O', '-', `http://${outside.hostIp}:${port}/`], { reject: false });
const knitChains = async () => [...(await host.exec(['iptables-save', '-t', 'filter'])).stdout.matchAll(/^:KNIT-IN-([0-9a-f]{12})/gm)].map((m) => m[1]).sort();
const dockerKnitNets = async () =>
  (await host.docker(['network', 'ls', '--no-trunc', '--filter', 'driver=knit', '--format', '{{.ID}}'])).stdout.split('\n').filter(Boolean).map((id) => id.slice(0, 12)).sort();

/** What source address a TCP connection from `container` shows at the outside host. */
async function sourceSeenOutside(container: string): Promise<string> {
  const server = outside.exec(['node', '-e', "require('net').createServer((s)=>{console.log(s.remoteAddress);process.exit(0)}).listen(9000,()=>console.log('up'))"], { timeoutMs: 20_000, reject: false });
  await new Promise((r) => setTimeout(r, 700));
  // A fresh container in `container`'s network namespace: its nc, where `docker exec` on a chrooted engine would
  // run the machine's binaries.
  await host.docker(['run', '--rm', '--network', `container:${container}`, IMAGE, 'sh', '-c', `echo hi | nc -w 2 ${outside.ip} 9000`], { reject: false });
  return (await server).stdout.split('\n').filter((l) => l && l !== 'up')[0] ?? '';
}

describe.each(SUITE_ENGINES['bridge-features'])('on engine %s', (engine) => {
beforeAll(async () => {
  host = await startHost({ name: `features${engineTag(engine)}`, engine });
  await host.exec(['iptables', '-P', 'FORWARD', 'DROP']);
  outside = await addOutsideHost(host);
  knit = new Knit(host);
  await knit.start();
});

afterAll(async () => {
  await knit?.stop();
  await stopAll();
});

test('outbound NAT: the outside host sees the Docker host address', async () => {
  await create(['nat1']);
  await runDetached('nat-c', ['--network', 'nat1']);
  expect(await ping('nat-c', outside.ip)).toBe(true);
  expect(await sourceSeenOutside('nat-c')).toMatch(new RegExp(`^(::ffff:)?${outside.hostIp.replace(/\./g, '\\.')}$`));
  await host.docker(['rm', '-f', 'nat-c']);
  await host.docker(['network', 'rm', 'nat1']);
});

test('isolation: no traffic across knit networks or to and from Docker bridges, until a container joins both', async () => {
  await create(['iso-a']);
  await create(['iso-b']);
  // A second container on each network: the controls that each source sends and each target answers, right then.
  for (const [name, net] of [['iso-ca', 'iso-a'], ['iso-ca2', 'iso-a'], ['iso-cb', 'iso-b'], ['iso-cb2', 'iso-b'], ['iso-dk', 'bridge'], ['iso-dk2', 'bridge']]) {
    await runDetached(name, ['--network', net]);
  }
  const ipA2 = await ipOf('iso-ca2', 'iso-a');
  const ipB = await ipOf('iso-cb', 'iso-b');
  const ipDocker = await ipOf('iso-dk', 'bridge');
  const ipDocker2 = await ipOf('iso-dk2', 'bridge');
  expect(await ping('iso-ca', ipA2)).toBe(true);
  expect(await ping('iso-cb2', ipB)).toBe(true);
  expect(await ping('iso-dk2', ipDocker)).toBe(true);
  expect(await ping('iso-dk', ipDocker2)).toBe(true);
  expect(await ping('iso-ca', ipB)).toBe(false);
  expect(await ping('iso-ca', ipDocker)).toBe(false);
  expect(await ping('iso-dk', ipB)).toBe(false);
  await host.docker(['network', 'connect', 'iso-b', 'iso-ca']);
  expect(await ping('iso-ca', ipB)).toBe(true);
  await host.docker(['rm', '-f', 'iso-ca', 'iso-ca2', 'iso-cb', 'iso-cb2', 'iso-dk', 'iso-dk2']);
  await host.docker(['network', 'rm', 'iso-a', 'iso-b']);
});

test('enable_icc=false: members cannot reach each other but both reach outside, even where earlier holders of their addresses talked', async () => {
  // Earlier holders of the same addresses ping each other (tracked flows; busybox pings in fresh containers share an ICMP ID).
  await create(['--subnet', '10.209.7.0/24', 'wasicc']);
  await runDetached('was-1', ['--network', 'wasicc']);
  await runDetached('was-2', ['--network', 'wasicc']);
  expect(await ping('was-1', await ipOf('was-2', 'wasicc'))).toBe(true);
  await host.docker(['rm', '-f', 'was-1', 'was-2']);
  await host.docker(['network', 'rm', 'wasicc']);
  await create(['--subnet', '10.209.7.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc']);
  await runDetached('icc-1', ['--network', 'noicc']);
  await runDetached('icc-2', ['--network', 'noicc']);
  expect(await ping('icc-1', await ipOf('icc-2', 'noicc'))).toBe(false);
  expect(await ping('icc-1', outside.ip)).toBe(true);
  expect(await ping('icc-2', outside.ip)).toBe(true);
  await host.docker(['rm', '-f', 'icc-1', 'icc-2']);
  await host.docker(['network', 'rm', 'noicc']);
});

test('a removed container\'s tracked flows go with it (its address\'s next holder inherits none)', async () => {
  const flows = async (ip: string) => (await host.exec(['conntrack', '-L', '-f', 'ipv4', '-d', ip], { reject: false })).stdout.split('\n').filter((l) => l.includes(`dst=${ip} `)).length;
  await create(['ct1']);
  await runDetached('ct-a', ['--network', 'ct1']);
  await runDetached('ct-b', ['--network', 'ct1']);
  const ipB = await ipOf('ct-b', 'ct1');
  expect(await ping('ct-a', ipB)).toBe(true);
  // Control: the ping left a tracked flow to ct-b.
  expect(await flows(ipB)).toBeGreaterThan(0);
  await host.docker(['rm', '-f', 'ct-b']);
  expect(await flows(ipB)).toBe(0);
  await host.docker(['rm', '-f', 'ct-a']);
  await host.docker(['network', 'rm', 'ct1']);
});

test('--internal: members reach each other, nothing gets out', async () => {
  await create(['--internal', 'intl']);
  await runDetached('int-1', ['--network', 'intl']);
  await runDetached('int-2', ['--network', 'intl']);
  expect(await ping('int-1', await ipOf('int-2', 'intl'))).toBe(true);
  // Control: the outside host answers the Docker host itself at this moment.
  expect((await host.exec(['ping', '-c', '1', '-W', '2', outside.ip], { reject: false })).exitCode).toBe(0);
  expect(await ping('int-1', outside.ip)).toBe(false);
  expect((await host.docker(['exec', 'int-1', 'ip', 'route'])).stdout).not.toContain('default');
  await host.docker(['rm', '-f', 'int-1', 'int-2']);
  await host.docker(['network', 'rm', 'intl']);
});

test('published ports: from another host, from a sibling (hairpin) and another network; gone with the container', async () => {
  await create(['pub']);
  await create(['pub-other']);
  await web('pub-web', ['--network', 'pub', '-p', '8080:80', '-p', '9100-9101:80-81']);
  // Stays up when pub-web goes: the control that published ports still answer when 8080 no longer does.
  await web('pub-keep', ['--network', 'pub', '-p', '8090:80']);
  await runDetached('pub-sib', ['--network', 'pub']);
  await runDetached('pub-far', ['--network', 'pub-other']);
  await new Promise((r) => setTimeout(r, 500));
  expect((await outsideGet(8080)).stdout.trim()).toBe('port80');
  expect((await outsideGet(9101)).stdout.trim()).toBe('port81');
  for (const c of ['pub-sib', 'pub-far']) {
    const r = await host.docker(['exec', c, 'timeout', '5', 'wget', '-q', '-O', '-', `http://${outside.hostIp}:8080/`], { reject: false });
    expect(r.stdout.trim()).toBe('port80');
  }
  // A second mapping of the same host port is refused with a clear error, and leaves no rule behind.
  const clash = await host.docker(['run', '-d', '--name', 'pub-clash', '--network', 'pub', '-p', '8080:80', IMAGE, 'sleep', '60'], { reject: false });
  expect(clash.stderr).toMatch(/host port 8080\/tcp on 0\.0\.0\.0 is already in use/);
  await host.docker(['rm', '-f', 'pub-clash'], { reject: false });
  const nat = (await host.exec(['iptables-save', '-t', 'nat'])).stdout;
  expect(nat.match(/--dport 8080 /g)?.length).toBe(1);
  await host.docker(['rm', '-f', 'pub-web']);
  expect((await outsideGet(8090)).stdout.trim()).toBe('port80');
  expect((await outsideGet(8080)).exitCode).not.toBe(0);
  expect((await host.exec(['iptables-save', '-t', 'nat'])).stdout).not.toContain('--dport 8080');
  await host.docker(['rm', '-f', 'pub-sib', 'pub-far', 'pub-keep']);
  await host.docker(['network', 'rm', 'pub', 'pub-other']);
});

test('-p PORT: knit picks a free host port and says which; UDP works too', async () => {
  await create(['eph']);
  await web('eph-web', ['--network', 'eph', '-p', '80']);
  const line = knit.logs().reverse().find((l) => l.message === 'ports published') as { ports: string[] } | undefined;
  const port = Number(/:(\d+)->80\/tcp/.exec(line?.ports.join(' ') ?? '')?.[1]);
  expect(port).toBeGreaterThanOrEqual(49153);
  expect((await outsideGet(port)).stdout.trim()).toBe('port80');
  // A datagram from outside reaches the container through the published UDP port, and the reply comes back.
  await runDetached('eph-udp', ['--network', 'eph', '-p', '5353:53/udp'], ['udp-echo', '53']);
  const client = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});` +
    `const send=()=>s.send('knit-udp',5353,'${outside.hostIp}');send();setInterval(send,500);setTimeout(()=>process.exit(1),5000)`;
  const reply = await outside.exec(['node', '-e', client], { reject: false, timeoutMs: 10_000 });
  expect(reply.stdout.trim()).toBe('echo:knit-udp');
  await host.docker(['rm', '-f', 'eph-web', 'eph-udp']);
  await host.docker(['network', 'rm', 'eph']);
});

test('UDP: a client that never stops sending reaches the next container once the published port moves to it', async () => {
  await create(['udpmove']);
  await runDetached('udp-a', ['--network', 'udpmove', '-p', '5354:53/udp'], ['udp-echo', '53']);
  // One socket, so one conntrack flow, sending every 200 ms for 16 s; each reply is printed with its time.
  const script = "const s=require('dgram').createSocket('udp4');const t0=Date.now();s.on('error',()=>{});" +
    "s.on('message',(m)=>console.log(Date.now()-t0,String(m)));" +
    `const send=()=>s.send('moved',5354,'${outside.hostIp}');send();setInterval(send,200);setTimeout(()=>process.exit(0),16000)`;
  const started = Date.now();
  const client = outside.exec(['node', '-e', script], { reject: false, timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 3_000));
  await host.docker(['rm', '-f', 'udp-a']);
  // The flow keeps sending while no container has the port, then the port goes to another container (another address).
  await new Promise((r) => setTimeout(r, 1_000));
  await runDetached('udp-b', ['--network', 'udpmove', '-p', '5354:53/udp'], ['udp-echo', '53']);
  const movedAt = Date.now() - started;
  const replies = (await client).stdout.split('\n').filter(Boolean).map((l) => Number(l.split(' ')[0]));
  expect(replies.filter((t) => t < 3_000).length).toBeGreaterThan(0);
  // The client's clock started after ours, so a reply it timed after movedAt came after udp-b was running.
  expect(replies.filter((t) => t > movedAt).length).toBeGreaterThan(0);
  await host.docker(['rm', '-f', 'udp-b']);
  await host.docker(['network', 'rm', 'udpmove']);
});

test('IPv6: dual-stack containers reach each other over IPv6, given and automatic subnets', async () => {
  await create(['--ipv6', '--subnet', 'fd00:77::/64', 'v6a']);
  await create(['--ipv6', 'v6b']);
  for (const n of ['v6a', 'v6b']) {
    await runDetached(`${n}-1`, ['--network', n]);
    await runDetached(`${n}-2`, ['--network', n]);
    const ip6 = await ipOf(`${n}-2`, n, true);
    expect(ip6).toMatch(n === 'v6a' ? /^fd00:77::/ : /^fd6b:6e69:74/);
    const r = await host.docker(['exec', `${n}-1`, 'ping', '-6', '-c', '1', '-W', '2', ip6], { reject: false });
    expect(r.exitCode).toBe(0);
    expect((await host.docker(['exec', `${n}-1`, 'ip', '-6', 'route'])).stdout).toMatch(/default via/);
    await host.docker(['rm', '-f', `${n}-1`, `${n}-2`]);
  }
  await host.docker(['network', 'rm', 'v6a', 'v6b']);
});

test('restart: a bridge deleted by hand comes back with traffic when knit restarts', async () => {
  await create(['rst']);
  const id = (await host.docker(['network', 'inspect', '-f', '{{.Id}}', 'rst'])).stdout.trim();
  await runDetached('rst-1', ['--network', 'rst']);
  await runDetached('rst-2', ['--network', 'rst']);
  const ip2 = await ipOf('rst-2', 'rst');
  // Control: traffic flows until the bridge is deleted.
  expect(await ping('rst-1', ip2)).toBe(true);
  await host.exec(['ip', 'link', 'del', `kn-${id.slice(0, 12)}`]);
  expect(await ping('rst-1', ip2)).toBe(false);
  await knit.restart();
  await waitFor('traffic over the rebuilt bridge', () => ping('rst-1', ip2), { timeoutMs: 15_000, intervalMs: 500 });
  await host.docker(['rm', '-f', 'rst-1', 'rst-2']);
  await host.docker(['network', 'rm', 'rst']);
});

test('a crash in the middle of network creation leaves rules only for networks Docker has', async () => {
  for (let i = 0; i < 3; i++) {
    const creating = create([`crash${i}`]).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20 + i * 15));
    await knit.kill9();
    await knit.start();
    await creating;
    // dockerd either replayed the call (the network exists) or released its pool (knit drops it).
    await waitFor('knit rules to match Docker networks', async () => JSON.stringify(await knitChains()) === JSON.stringify(await dockerKnitNets()), { timeoutMs: 15_000 });
  }
  // One created without a crash, so that the removal below always has a chain to remove.
  await create(['crash3']);
  const crashed = async () => (await host.docker(['network', 'ls', '--no-trunc', '--filter', 'name=crash', '--format', '{{.ID}}'])).stdout.split('\n').filter(Boolean).map((id) => id.slice(0, 12));
  const before = await crashed();
  // Control: the chains of the networks that were created are there before they are removed.
  expect(before.length).toBeGreaterThanOrEqual(1);
  expect(await knitChains()).toEqual(expect.arrayContaining(before));
  for (let i = 0; i < 4; i++) await host.docker(['network', 'rm', `crash${i}`], { reject: false });
  // Only the crash networks' chains must go: another test's leftovers (if one failed) are not this test's.
  await waitFor('the crash networks\' chains gone', async () => {
    const chains = await knitChains();
    return before.every((id) => !chains.includes(id)) && JSON.stringify(chains) === JSON.stringify(await dockerKnitNets());
  }, { timeoutMs: 15_000 });
});
});
