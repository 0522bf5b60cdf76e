// A real, throwaway etcd for tests: free ports on loopback (or an address inside a network namespace), data in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, spawnLogged, waitFor, within, type Spawned } from './proc.js';

export interface EtcdOptions {
  /** The address etcd listens on and advertises (default 127.0.0.1). */
  host?: string;
  /** Run etcd inside /run/netns/NAME; ports are then picked at random, as the namespace cannot be probed from here. */
  netns?: string;
  /** How long to wait for etcd to answer after each start (default 20 s). */
  readyTimeoutMs?: number;
  /** Serve clients over TLS with a throwaway CA, and require a client certificate. */
  tls?: boolean;
  /** Run etcd at this nice level (a benchmark's store standing in for a machine of its own). */
  nice?: number;
}

/** PEM files for a client: the CA that signed etcd's certificate, and a client certificate and key. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

/** The client's files plus etcd's own certificate and key. */
export interface ServerTls extends EtcdTls {
  serverCert: string;
  serverKey: string;
}

export interface EtcdServer {
  /** host:port of the client URL, as KNIT_STORE=etcd://… and openEtcdStore take it. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** The client's files, when started with `tls`. */
  readonly tls?: EtcdTls;
  /** SIGTERM, then SIGKILL if it has not exited in time; keeps the data for restart(). */
  stop(): Promise<void>;
  /** SIGKILL: a crash, as far as etcd can tell. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data dir (stopping it first if it runs). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: etcd keeps its connections but answers nothing, as on a stalled host. */
  pause(): void;
  resume(): void;
  /** Runs `etcdctl ARGS` against it (inside its namespace, if any) and returns stdout. */
  ctl(args: readonly string[]): Promise<string>;
  /** Stops it and removes its temp dir; safe to call more than once. */
  dispose(): Promise<void>;
}

const STOP_GRACE_MS = 5_000;
const EXIT_WAIT_MS = 5_000;

/** Two distinct ports the kernel reports free on `host` (both held open at once, so they differ). */
async function freePorts(host: string): Promise<[number, number]> {
  const servers = [createServer(), createServer()];
  const ports = await Promise.all(
    servers.map(
      (s) =>
        new Promise<number>((resolve, reject) => {
          s.once('error', reject);
          s.listen(0, host, () => resolve((s.address() as { port: number }).port));
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return [ports[0], ports[1]];
}

/** In a fresh namespace nothing listens yet, so any port above the usual ranges is free. */
const randomPorts = (): [number, number] => {
  const client = 20_000 + 2 * Math.floor(Math.random() * 10_000);
  return [client, client + 1];
};

/** A CA, etcd's certificate for `host` (an address: it goes in the IP SAN) and a client certificate, valid for a day. */
async function makeCertificates(dir: string, host: string): Promise<ServerTls> {
  const file = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'];
  const signed = (name: string, extra: string[]): string[] => [
    'openssl', 'req', '-x509', ...ec, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`), '-subj', `/CN=knit test ${name}`,
    '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-addext', 'basicConstraints=critical,CA:FALSE', ...extra,
  ];
  await run(['openssl', 'req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-subj', '/CN=knit test CA']);
  await run(signed('server', ['-addext', `subjectAltName=IP:${host}`]));
  await run(signed('client', []));
  const [ca, cert, key] = [file('ca.crt'), file('client.crt'), file('client.key')];
  return { ca, cert, key, serverCert: file('server.crt'), serverKey: file('server.key') };
}

const nsPrefix = (netns?: string): string[] => (netns ? ['nsenter', `--net=/run/netns/${netns}`] : []);

/** host:port, with an IPv6 address in brackets as URLs need it. */
const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export interface EtcdArgvOptions {
  host: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  netns?: string;
  tls?: ServerTls;
  nice?: number;
}

/** The argv that runs etcd: exported so a multi-host test can check it without starting anything. */
export function etcdArgv(opts: EtcdArgvOptions): string[] {
  const client = `${opts.tls ? 'https' : 'http'}://${hostPort(opts.host, opts.clientPort)}`;
  const peer = `http://${hostPort(opts.host, opts.peerPort)}`;
  const tls = opts.tls
    ? ['--cert-file', opts.tls.serverCert, '--key-file', opts.tls.serverKey, '--trusted-ca-file', opts.tls.ca, '--client-cert-auth']
    : [];
  return [
    ...nsPrefix(opts.netns),
    ...(opts.nice === undefined ? [] : ['nice', '-n', String(opts.nice)]),
    'etcd',
    '--name', 'default',
    '--data-dir', opts.dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `default=${peer}`,
    '--initial-cluster-state', 'new',
    ...tls,
  ];
}

/** The same argv prefix as etcd's own reaches it inside its namespace. */
function ctlArgv(opts: { endpoint: string; netns?: string; tls?: EtcdTls; args: readonly string[] }): string[] {
  const tls = opts.tls ? ['--cacert', opts.tls.ca, '--cert', opts.tls.cert, '--key', opts.tls.key] : [];
  const url = `${opts.tls ? 'https' : 'http'}://${opts.endpoint}`;
  return [...nsPrefix(opts.netns), 'etcdctl', '--endpoints', url, '--dial-timeout=1s', '--command-timeout=2s', ...tls, ...opts.args];
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdServer> {
  const host = opts.host ?? '127.0.0.1';
  const [clientPort, peerPort] = opts.netns ? randomPorts() : await freePorts(host);
  const tempDir = await mkdtemp(join(tmpdir(), 'knit-etcd-'));
  const dataDir = join(tempDir, 'data');
  const logFile = join(tempDir, 'etcd.log');
  const endpoint = hostPort(host, clientPort);
  let tls: ServerTls | undefined;
  let proc: Spawned | undefined;
  const ctlArgs = (args: readonly string[]): string[] => ctlArgv({ endpoint, netns: opts.netns, tls, args });

  const start = async (): Promise<void> => {
    const started = spawnLogged(etcdArgv({ host, clientPort, peerPort, dataDir, netns: opts.netns, tls, nice: opts.nice }), { logFile, capture: true });
    proc = started;
    const probe = async (): Promise<'ready' | 'exited' | false> => {
      if (!started.running()) return 'exited';
      return (await run(ctlArgs(['endpoint', 'health']), { reject: false, timeoutMs: 5_000 })).exitCode === 0 && 'ready';
    };
    const outcome = await waitFor(`etcd at ${endpoint}`, probe, { timeoutMs: opts.readyTimeoutMs ?? 20_000, intervalMs: 100 }).catch(
      async (err: unknown) => {
        await started.stop(STOP_GRACE_MS);
        throw new Error(`${(err as Error).message}; etcd said: ${started.stderr.slice(-2_000)}`);
      },
    );
    if (outcome === 'exited') throw new Error(`etcd at ${endpoint} exited while starting: ${started.stderr.slice(-2_000)}`);
  };
  const stop = async (): Promise<void> => {
    // A paused etcd would sit on SIGTERM until the grace time ran out.
    proc?.kill('SIGCONT');
    await proc?.stop(STOP_GRACE_MS);
  };
  const kill = async (): Promise<void> => {
    if (!proc) return;
    proc.kill('SIGKILL');
    await within(proc.exited, EXIT_WAIT_MS);
  };

  try {
    if (opts.tls) tls = await makeCertificates(tempDir, host);
    await start();
  } catch (err) {
    await rm(tempDir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    dataDir,
    tls: tls && { ca: tls.ca, cert: tls.cert, key: tls.key },
    stop,
    kill,
    async restart() {
      await stop();
      await start();
    },
    pause: () => proc?.kill('SIGSTOP'),
    resume: () => proc?.kill('SIGCONT'),
    ctl: async (args) => (await run(ctlArgs(args), { timeoutMs: 10_000 })).stdout,
    async dispose() {
      await stop();
      await rm(tempDir, { recursive: true, force: true });
    },
  };
}

export interface Relay {
  /** host:port to give the client instead of etcd's own. */
  readonly endpoint: string;
  /** Severs every relayed connection and refuses new ones: a network partition, seen from the client. */
  cut(): void;
  mend(): void;
  close(): Promise<void>;
}

/** A TCP relay on loopback in front of `target` (host:port), to partition one client from etcd while others still reach it. */
export async function startRelay(target: string): Promise<Relay> {
  const sep = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, sep), Number(target.slice(sep + 1))];
  const sockets = new Set<Socket>();
  let passing = true;
  const server: Server = createServer((inbound) => {
    if (!passing) {
      inbound.destroy();
      return;
    }
    const outbound = connect(port, host);
    const pair = [inbound, outbound];
    const drop = (): void => {
      for (const s of pair) {
        s.destroy();
        sockets.delete(s);
      }
    };
    for (const s of pair) {
      sockets.add(s);
      s.on('error', drop).on('close', drop);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const cut = (): void => {
    passing = false;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    endpoint: `127.0.0.1:${(server.address() as { port: number }).port}`,
    cut,
    mend: () => {
      passing = true;
    },
    close: async () => {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
