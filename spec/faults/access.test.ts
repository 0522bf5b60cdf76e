// Access: the socket and state dir are root's alone, knit opens no port but its resolver's, and no request content reaches a shell.
import { readdirSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { post } from '../support/client.js';
import { run } from '../support/proc.js';
import { createFixture } from './support/fixture.js';
import { LoneKnit } from './support/lone-knit.js';
import { sendRaw } from './support/raw-http.js';
import { isResolver, listening, namespaceSockets, socketsOf } from './support/sockets.js';
import { Tally } from './support/tally.js';
import { type Fixture, templates, UNKNOWN_PATHS } from './support/templates.js';

const tally = new Tally('access');
let knit: LoneKnit;
let fixture: Fixture;
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
const PWNED = 'knit-pwned-';

/** Shell syntax around a command that would leave /tmp/knit-pwned-N behind if any shell ran it. */
const payloads = (n: number): string[] => {
  const cmd = `touch /tmp/${PWNED}${n}`;
  return [`$(${cmd})`, `\`${cmd}\``, `x;${cmd}`, `x|${cmd}`, `x&&${cmd}`, `x\n${cmd}`, `'$(${cmd})'`, `";${cmd};"`, `$(touch\${IFS}/tmp/${PWNED}${n})`];
};

const IDS = new Set(['NetworkID', 'EndpointID', 'PoolID']);

/** Every string in the body (and, with `keys`, every option name) replaced by the payload; IDs kept when asked, so the request gets deep. */
function inject(value: unknown, payload: string, o: { keepIds: boolean; keys: boolean }, field = ''): unknown {
  if (typeof value === 'string') return o.keepIds && IDS.has(field) ? value : payload;
  if (Array.isArray(value)) return value.map((v) => inject(v, payload, o));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [o.keys && k.includes('.') ? payload : k, inject(v, payload, o, k)]));
}


/** Internet sockets knit holds beyond the resolver's, and anything else listening in its namespace (only knit runs there). */
async function portFailures(): Promise<string[]> {
  const own = await socketsOf(knit.pid);
  const ns = (await namespaceSockets(knit.pid)).filter(listening);
  const resolver = own.filter(isResolver).map((s) => s.table).sort();
  return [
    // Positive control: the resolver's sockets are seen, so an empty list below means no other socket, not a blind probe.
    ...(resolver.join(',') === 'tcp,udp' ? [] : [`the resolver's sockets on 169.254.53.53:53 are not both there (seen: ${resolver.join(',') || 'none'})`]),
    ...own.filter((s) => !isResolver(s)).map((s) => `knit holds a ${s.table} socket on ${s.local} (state ${s.state})`),
    ...ns.filter((s) => !isResolver(s)).map((s) => `something listens on ${s.table} ${s.local} in knit's namespace`),
  ];
}

const leftovers = (): string[] => readdirSync('/tmp').filter((n) => n.startsWith(PWNED));

beforeAll(async () => {
  knit = await LoneKnit.start('fltaccess');
  // The resolver starts just after the plugin socket answers: give it up to 10 s (portFailures says if it never came).
  for (let i = 0; i < 50 && (await socketsOf(knit.pid)).filter(isResolver).length < 2; i++) await new Promise((r) => setTimeout(r, 200));
  fixture = await createFixture(knit.socket);
});

afterAll(async () => {
  tally.finish();
  await knit?.dispose();
});

test('the socket is 0600 and the state directory 0700, both root\'s; nothing in the state directory is open to others', async () => {
  const sock = await stat(knit.socket);
  const dir = await stat(knit.stateDir);
  const failures: string[] = [];
  if (!sock.isSocket() || (sock.mode & 0o777) !== 0o600 || sock.uid !== 0) failures.push(`socket mode ${(sock.mode & 0o777).toString(8)} uid ${sock.uid}`);
  if ((dir.mode & 0o777) !== 0o700 || dir.uid !== 0) failures.push(`state dir mode ${(dir.mode & 0o777).toString(8)} uid ${dir.uid}`);
  for (const entry of await readdir(knit.stateDir, { recursive: true })) {
    const s = await stat(join(knit.stateDir, entry));
    if (s.mode & 0o002) failures.push(`${entry} is writable by everyone (mode ${(s.mode & 0o777).toString(8)})`);
  }
  expect(tally.check(failures)).toEqual([]);
});

test('at start, knit holds no TCP or UDP socket but its resolver\'s, and nothing else in its namespace listens', async () => {
  expect(tally.check(await portFailures())).toEqual([]);
});

test('another user can neither connect to the socket nor list the state directory', async () => {
  const probe = `require('net').connect(${JSON.stringify(knit.socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
  const connect = await run([...NOBODY, 'node', '-e', probe], { reject: false });
  const list = await run([...NOBODY, 'ls', knit.stateDir], { reject: false });
  tally.op(false, 2);
  const failures = [
    ...(connect.stdout.trim() === 'EACCES' ? [] : [`user nobody connecting to the socket got: ${connect.stdout.trim() || connect.stderr.trim()}`]),
    ...(list.exitCode !== 0 ? [] : [`user nobody listed the state dir: ${list.stdout.trim()}`]),
  ];
  expect(tally.check(failures)).toEqual([]);
});

test('nothing a request carries reaches a shell', async () => {
  let n = 0;
  const sent: Array<{ path: string; body: unknown }> = [];
  for (const t of templates(fixture)) {
    for (const payload of payloads(n++)) {
      for (const o of [{ keepIds: false, keys: false }, { keepIds: true, keys: false }, { keepIds: true, keys: true }]) sent.push({ path: t.path, body: inject(t.body, payload, o) });
    }
  }
  for (const path of UNKNOWN_PATHS) sent.push({ path, body: inject({ NetworkID: fixture.networkId }, payloads(n++)[0], { keepIds: false, keys: false }) });
  for (const s of sent) {
    const o = await sendRaw(knit.socket, { path: s.path, body: Buffer.from(JSON.stringify(s.body)) });
    tally.op(o.kind === 'reply' && o.status === 200);
  }
  // Teardown paths run commands too: remove what the injected requests may have created, through knit.
  await post(knit.socket, '/knit.Doctor', '');
  console.log(`${sent.length} requests carried shell syntax in every string field`);
  const failures = [
    ...leftovers().map((f) => `/tmp/${f} exists: request content reached a shell`),
    ...(knit.running() ? [] : ['knit exited']),
  ];
  expect(tally.check(failures)).toEqual([]);
});

test('after serving all that, knit still holds no TCP or UDP socket but its resolver\'s, and nothing else listens', async () => {
  expect(tally.check(await portFailures())).toEqual([]);
});
