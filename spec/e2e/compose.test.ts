// Docker Compose v2 as the client: projects whose networks use knit as driver and IPAM, on a 28.5 engine.
// Compose is the sid chroot's `docker compose` plugin, run in the host's namespaces against its engine.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE, SUITE_ENGINES, startHost, stopAll, type Host } from '../support/testbed.js';
import { Knit } from '../support/knit.js';

let host: Host;
let knit: Knit;

/** Writes a compose file for project `name` under the host's work dir (the same path inside the chroot). */
type Compose = (args: string[], opts?: { reject?: boolean }) => ReturnType<Host['dockerInRoot']>;

async function project(name: string, yaml: string): Promise<Compose> {
  const dir = join(host.dir, 'compose', name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'compose.yaml'), yaml);
  return (args, opts = {}) => host.dockerInRoot(['compose', '-f', join(dir, 'compose.yaml'), '-p', name, ...args], opts);
}

const services = (networks: string) => `
services:
  api:
    image: ${IMAGE}
    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
    networks: [${networks}]
  web:
    image: ${IMAGE}
    command: ["sleep", "600"]
    networks: [${networks}]
`;

const networkId = async (name: string) => (await host.docker(['network', 'inspect', '-f', '{{.Id}}', name])).stdout.trim();
const bridgeOf = (id: string) => `kn-${id.slice(0, 12)}`;
const bridgeExists = async (id: string) => (await host.exec(['ip', 'link', 'show', bridgeOf(id)], { reject: false })).exitCode === 0;
const ipsOf = async (ids: string[], network: string) =>
  Promise.all(ids.map(async (id) => (await host.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, id])).stdout.trim()));
/** Service names as a service sees them: a fresh `compose run` container (docker exec is unreliable here). */
const fromWeb = (compose: Compose, script: string, reject = true) =>
  compose(['run', '--rm', '--no-deps', 'web', 'sh', '-c', script], { reject });

beforeAll(async () => {
  const [engine] = SUITE_ENGINES.compose;
  host = await startHost({ name: 'compose', engine });
  knit = new Knit(host);
  await knit.start();
});

afterAll(async () => {
  await knit?.stop();
  await stopAll();
});

test('up: a knit network (driver and IPAM, no subnet) where service names resolve and the api answers', async () => {
  const compose = await project('auto', `${services('front')}
networks:
  front:
    driver: knit
    ipam:
      driver: knit
`);
  await compose(['up', '-d']);
  const net = 'auto_front';
  expect((await host.docker(['network', 'inspect', '-f', '{{.Driver}} {{.IPAM.Driver}}', net])).stdout).toBe('knit knit');
  const id = await networkId(net);
  expect(await bridgeExists(id)).toBe(true);
  const [apiIp] = await ipsOf([(await compose(['ps', '-q', 'api'])).stdout.trim()], net);
  expect(apiIp).toMatch(/^10\.2(0[89]|1\d|2[0-3])\.\d+\.\d+$/);
  const seen = await fromWeb(compose, 'nslookup api 127.0.0.11 && ping -c 1 -W 2 api && timeout 5 wget -q -O - http://api:80/passwd');
  expect(seen.stdout).toContain(apiIp);
  expect(seen.stdout).toContain('root:x:0:0');
  // Negative beside it: a name no service has does not resolve.
  expect((await fromWeb(compose, 'ping -c 1 -W 2 nosuchservice', false)).exitCode).not.toBe(0);

  await compose(['up', '-d', '--scale', 'web=3']);
  const webs = (await compose(['ps', '-q', 'web'])).stdout.split('\n').filter(Boolean);
  expect(webs).toHaveLength(3);
  const webIps = await ipsOf(webs, net);
  expect(new Set([...webIps, apiIp]).size).toBe(4);
  // The service name now answers with all three replicas.
  const answer = (await fromWeb(compose, 'nslookup web 127.0.0.11')).stdout;
  for (const ip of webIps) expect(answer).toContain(ip);

  await compose(['down', '--timeout', '1']);
  expect((await host.docker(['network', 'ls', '-q', '--filter', `name=^${net}$`])).stdout).toBe('');
  expect(await bridgeExists(id)).toBe(false);

  // And up again: a new network, a new bridge, names resolve again.
  await compose(['up', '-d']);
  const again = await networkId(net);
  expect(again).not.toBe(id);
  expect(await bridgeExists(again)).toBe(true);
  expect((await fromWeb(compose, 'ping -c 1 -W 2 api')).exitCode).toBe(0);
  await compose(['down', '--timeout', '1']);
  expect(await bridgeExists(again)).toBe(false);
});

test('a knit network with a given subnet and gateway', async () => {
  const compose = await project('fixed', `${services('back')}
networks:
  back:
    driver: knit
    ipam:
      driver: knit
      config:
        - subnet: 10.61.0.0/24
          gateway: 10.61.0.254
`);
  await compose(['up', '-d']);
  const net = 'fixed_back';
  expect((await host.docker(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}', net])).stdout).toBe('10.61.0.0/24 10.61.0.254');
  const [apiIp] = await ipsOf([(await compose(['ps', '-q', 'api'])).stdout.trim()], net);
  expect(apiIp).toMatch(/^10\.61\.0\.\d+$/);
  expect((await host.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', bridgeOf(await networkId(net))])).stdout).toContain('10.61.0.254/24');
  const seen = await fromWeb(compose, 'ip route; timeout 5 wget -q -O - http://api:80/passwd');
  expect(seen.stdout).toContain('default via 10.61.0.254');
  expect(seen.stdout).toContain('root:x:0:0');
  await compose(['down', '--timeout', '1']);
  expect((await host.docker(['network', 'ls', '-q', '--filter', `name=^${net}$`])).stdout).toBe('');
});

test('external: true uses a knit network made outside the project, and down leaves it in place', async () => {
  await host.docker(['network', 'create', '-d', 'knit', '--ipam-driver', 'knit', '--subnet', '10.62.0.0/24', 'shared']);
  const id = await networkId('shared');
  const compose = await project('ext', `${services('shared')}
networks:
  shared:
    external: true
`);
  await compose(['up', '-d']);
  const [apiIp] = await ipsOf([(await compose(['ps', '-q', 'api'])).stdout.trim()], 'shared');
  expect(apiIp).toMatch(/^10\.62\.0\.\d+$/);
  expect((await fromWeb(compose, 'timeout 5 wget -q -O - http://api:80/passwd')).stdout).toContain('root:x:0:0');
  // A container started by hand on the same network reaches the service by its name.
  expect((await host.docker(['run', '--rm', '--network', 'shared', IMAGE, 'ping', '-c', '1', '-W', '2', 'api'], { reject: false })).exitCode).toBe(0);
  await compose(['down', '--timeout', '1']);
  expect(await networkId('shared')).toBe(id);
  expect(await bridgeExists(id)).toBe(true);
  await host.docker(['network', 'rm', 'shared']);
  expect(await bridgeExists(id)).toBe(false);
});
