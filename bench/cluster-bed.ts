// The cluster benchmark's hosts: N network namespaces (knt-benchkNNN) on one underlay bridge (netns knt-benchku),
// etcd or the Consul test server on that underlay (cluster-store.ts), and in each namespace a knit process (dist/main.js) with KNIT_STORE,
// KNIT_ADVERTISE=ul0 and its own socket, state dir and log. No dockerd: the benchmark posts dockerd's calls to
// each socket. Everything is removed again, in reverse order, whatever failed; a killed run's namespaces
// (knt-bench*) are removed by the runner's next start.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_DAEMON, noUpstreamsFile } from '../spec/support/knit.js';
import { testbedDir } from '../spec/support/layout.js';
import { GiveUp, run, spawnLogged, waitFor, type Spawned } from '../spec/support/proc.js';
import { deleteNetns, killUntilGone, pidsInNamespaces, nsIdentity } from '../spec/support/reap.js';
import { inParallel, type BenchContext } from './bed.js';
import { inNetns } from './iperf.js';
import { startBenchStore, storeKind, type BenchStore } from './cluster-store.js';
import { builtModule } from './knit-run.js';
import { LeanConnection } from './lean-client.js';

/** RFC 2544's benchmarking range, a /24 no other bed uses: up to 249 hosts, etcd on .250. */
const UNDERLAY = '198.18.78';
const ETCD_IP = `${UNDERLAY}.250`;
/** The root namespace's address on the underlay when the Consul test server (in this process) is the store. */
const ROOT_IP = `${UNDERLAY}.251`;
export const UNDERLAY_NS = 'knt-benchku';
export const MAX_HOSTS = 200;
/** knit processes started at once: each start is mostly CPU (Node, then knit's first reconcile). */
const START_PARALLEL = 4;

export interface ClusterHost {
  index: number;
  netns: string;
  vtep: string;
  dir: string;
  socket: string;
  knit: Spawned;
  conn: LeanConnection;
}

export interface ClusterBed {
  hosts: ClusterHost[];
  store: BenchStore;
  /** How long starting every knit took, until each answered on its socket. */
  startMs: number;
}

const hostName = (i: number): string => `benchk${String(i + 1).padStart(3, '0')}`;
const benchDir = join(testbedDir, 'bench', 'cluster');

async function makeUnderlay(): Promise<void> {
  await run(['ip', 'netns', 'add', UNDERLAY_NS]);
  const ul = (...args: string[]) => run(['ip', '-n', UNDERLAY_NS, ...args]);
  await ul('link', 'set', 'lo', 'up');
  await ul('link', 'add', 'ul', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  await ul('link', 'set', 'ul', 'up');
  await ul('addr', 'add', `${ETCD_IP}/24`, 'dev', 'ul');
}

/** Namespace `netns` with `ul0` on the underlay bridge at `vtep`. */
async function makeHostNetns(netns: string, port: string, vtep: string): Promise<void> {
  await run(['ip', 'netns', 'add', netns]);
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  await run(['ip', 'link', 'add', 'ul0', 'netns', netns, 'type', 'veth', 'peer', 'name', port, 'netns', UNDERLAY_NS]);
  await run(['ip', '-n', UNDERLAY_NS, 'link', 'set', port, 'master', 'ul', 'up']);
  await run(['ip', '-n', netns, 'addr', 'add', `${vtep}/24`, 'dev', 'ul0']);
  await run(['ip', '-n', netns, 'link', 'set', 'ul0', 'up']);
}

async function startKnit(netns: string, dir: string, store: string): Promise<{ knit: Spawned; socket: string }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'knit.sock');
  // As users run it (info logs, resolver on); names have no engine here, so KNIT_DOCKER_HOST points at a socket nobody serves.
  const knit = spawnLogged([...inNetns(`/run/netns/${netns}`), ...NODE_DAEMON, builtModule('main.js')], {
    logFile: join(dir, 'knit.log'),
    env: {
      KNIT_SOCKET: socket,
      KNIT_STATE_DIR: join(dir, 'state'),
      KNIT_STORE: store,
      KNIT_ADVERTISE: 'ul0',
      KNIT_LOG_LEVEL: 'info',
      KNIT_DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`,
      KNIT_RESOLV_CONF: await noUpstreamsFile(dir),
    },
  });
  const conn = new LeanConnection(socket, 5_000);
  try {
    await waitFor(`knit in ${netns} to answer (log ${join(dir, 'knit.log')})`, async () => {
      if (!knit.running()) throw new GiveUp(`knit exited: ${(await readFile(join(dir, 'knit.log'), 'utf8').catch(() => '')).slice(-1_500)}`);
      const zero = '0'.repeat(64);
      const r = await conn.call('/NetworkDriver.EndpointOperInfo', { NetworkID: zero, EndpointID: zero }).catch(() => undefined);
      return r?.status === 200;
    }, { timeoutMs: 120_000, intervalMs: 250 });
  } finally {
    conn.close();
  }
  return { knit, socket };
}

/** Beds being torn down or running, so that the runner's SIGINT/SIGTERM handler can remove them too. */
const live = new Set<() => Promise<void>>();

/** For the runner's signal handler: kill every knit and etcd of the beds still up and delete their namespaces. */
export async function stopClusters(): Promise<void> {
  await Promise.all([...live].map((stop) => stop()));
}

/** Starts the bed for `count` hosts, runs `fn`, and always removes every process and namespace it made. */
export async function withCluster<T>(ctx: BenchContext, count: number, fn: (bed: ClusterBed) => Promise<T>): Promise<T> {
  if (!Number.isInteger(count) || count < 2 || count > MAX_HOSTS) throw new Error(`cluster size ${count} must be 2..${MAX_HOSTS}`);
  const hosts: ClusterHost[] = [];
  const made: string[] = [];
  let store: BenchStore | undefined;
  let down: Promise<void> | undefined;
  const stop = () => (down ??= teardown(hosts, store, made, ctx));
  live.add(stop);
  try {
    await makeUnderlay();
    made.push(UNDERLAY_NS);
    for (let i = 0; i < count; i++) {
      const netns = `knt-${hostName(i)}`;
      await makeHostNetns(netns, `u-${hostName(i)}`, `${UNDERLAY}.${i + 1}`);
      made.push(netns);
    }
    store = await startBenchStore(storeKind(), { underlayNs: UNDERLAY_NS, bridge: 'ul', etcdIp: ETCD_IP, rootIp: ROOT_IP });
    const url = store.url;
    ctx.progress(`cluster ${count}: ${count} namespaces and ${url}; starting knit in each`);
    const started = performance.now();
    const slots = [...Array(count).keys()];
    // Every start finishes (or fails) before this returns, so the clean-up knows every process.
    const failures: Error[] = [];
    await inParallel({ ...ctx, deadline: Number.POSITIVE_INFINITY }, slots, START_PARALLEL, async (i) => {
      if (failures.length) return;
      const netns = `knt-${hostName(i)}`;
      const dir = join(benchDir, hostName(i));
      try {
        const { knit, socket } = await startKnit(netns, dir, url);
        hosts.push({ index: i, netns, vtep: `${UNDERLAY}.${i + 1}`, dir, socket, knit, conn: new LeanConnection(socket, 60_000) });
      } catch (err) {
        failures.push(err as Error);
      }
      if (hosts.length % 10 === 0) ctx.progress(`cluster ${count}: ${hosts.length} knit processes answer`);
    });
    if (failures.length) throw failures[0];
    hosts.sort((a, b) => a.index - b.index);
    return await fn({ hosts, store, startMs: performance.now() - started });
  } finally {
    await stop();
    live.delete(stop);
  }
}

/** SIGKILL, not SIGTERM: N leases revoked one by one would make every other knit reprogram N times for nothing. */
async function teardown(hosts: ClusterHost[], store: BenchStore | undefined, made: string[], ctx: BenchContext): Promise<void> {
  const errors: string[] = [];
  for (const h of hosts) h.conn.close();
  for (const h of hosts) h.knit.kill('SIGKILL');
  await Promise.all(hosts.map((h) => h.knit.exited));
  await store?.dispose().catch((err: Error) => errors.push(`${store.kind}: ${err.message}`));
  for (const netns of made.reverse()) {
    try {
      // Anything still in the namespace (a knit child, an ip or iptables of its) goes first.
      const id = await nsIdentity('net', `/run/netns/${netns}`);
      if (id) await killUntilGone(() => pidsInNamespaces(new Set([id])), `processes of ${netns}`);
      await deleteNetns(netns);
    } catch (err) {
      errors.push(`${netns}: ${(err as Error).message}`);
    }
  }
  if (errors.length) ctx.progress(`cluster clean-up: ${errors.slice(0, 5).join('; ')}`);
}
