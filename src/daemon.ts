// Builds the running daemon from a parsed config: stores, kernel, handlers, socket server.
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Config } from './config.js';
import { Kernel } from './datapath/kernel.js';
import { badRequest, describe, KnitError } from './errors.js';
import { sweep } from './maintenance.js';
import { Ipam } from './ipam/service.js';
import { HostAddresses } from './ipam/host-addresses.js';
import { parseCidr } from './addr/cidr.js';
import type { Logger } from './log.js';
import { reconcile } from './network/doctor.js';
import { IptablesFirewall } from './network/firewall.js';
import { keys } from './network/records.js';
import { NetworkDriver } from './network/service.js';
import { engineHints } from './protocol/engine-hints.js';
import { routeTable } from './protocol/routes.js';
import { createApp, listen } from './protocol/server.js';
import { CallMetrics } from './protocol/metrics.js';
import { spawnCounts } from './datapath/exec.js';
import { openLocalStore } from './store/local.js';
import { openClusterStore } from './store/open.js';
import { Overlay } from './network/overlay/index.js';
import { HostLease } from './network/overlay/lease.js';
import { Segments } from './network/overlay/segments.js';
import { HostRecordWatch } from './network/overlay/watch.js';
import { LiveHosts } from './network/overlay/live-hosts.js';
import { startLiveness } from './liveness.js';
import { Tunnel } from './network/overlay/tunnel.js';
import { keys as ipamKeys, type PoolRecord } from './ipam/records.js';
import { subnetKey } from './addr/cidr.js';
import { decode } from './store/records.js';
import { boundPorts } from './datapath/sockets.js';
import { statusDocument } from './status.js';
import type { Store } from './store/types.js';
import { makeNames, startNames, type RunningNames } from './names/start.js';
import { ensureDnsAddress } from './datapath/dns-address.js';
import { readUsage } from './ipam/usage.js';
import type { RunningMetrics } from './metrics/start.js';

const SWEEP_INTERVAL_MS = 30_000;
/** A host whose lease lapses this long is gone: the others drop its entries. */
const LEASE_TTL_SECONDS = 10;
const ORPHAN_CHECK_DELAY_MS = 2_000;
const LIVENESS_INTERVAL_MS = 5_000;

export interface Daemon {
  hostId: string;
  stop(): Promise<void>;
}

async function ensureHostId(store: Store): Promise<string> {
  const existing = await store.get(keys.hostId);
  if (existing) return existing.value;
  const id = randomBytes(8).toString('hex');
  if ((await store.commit([{ key: keys.hostId, value: id, expect: 0 }])) !== null) return id;
  // Another start wrote it first (the guard failed): that one stands.
  const won = await store.get(keys.hostId);
  if (!won) throw new KnitError('internal', 'the host ID was neither written nor found in the local store');
  return won.value;
}

/** The --ip-range of the pool knit's IPAM holds for `subnet` ('' for none); undefined when it holds none. */
async function poolRange(cluster: Store, subnet: string): Promise<string | undefined> {
  const entry = await cluster.get(ipamKeys.pool(subnetKey(parseCidr(subnet))));
  return entry ? (decode<PoolRecord>(entry).range ?? '') : undefined;
}

/** Forwarding must be on for NAT and published ports; say so clearly when knit cannot turn it on. */
async function checkForwarding(kernel: Kernel, log: Logger): Promise<void> {
  try {
    await kernel.setSysctl('net.ipv4.ip_forward', '1');
  } catch (err) {
    log.error('IPv4 forwarding is off: containers cannot reach beyond their network', { error: describe(err) });
  }
  // Turning IPv6 forwarding on changes how the host treats router advertisements: only warn.
  const v6 = await kernel.sysctl('net.ipv6.conf.all.forwarding').catch(() => '1');
  if (v6 !== '1') log.warn('IPv6 forwarding is off: IPv6 traffic between containers works, but not beyond the host (sysctl -w net.ipv6.conf.all.forwarding=1)');
}

/** KNIT_ADVERTISE is an address of this host or the name of the interface that holds it. */
async function underlay(kernel: Kernel, advertise: string): Promise<{ vtep: string; underlayMtu: number }> {
  const links = await kernel.links();
  const byName = links.find((l) => l.name === advertise);
  const v4 = (cidrs: string[]) => cidrs.map((c) => c.split('/')[0]).find((a) => !a.includes(':'));
  if (byName) {
    const vtep = v4(byName.addrs);
    if (!vtep) throw new KnitError('bad-request', `KNIT_ADVERTISE interface ${advertise} has no IPv4 address`);
    return { vtep, underlayMtu: byName.mtu };
  }
  const holder = links.find((l) => l.addrs.some((c) => c.split('/')[0] === advertise));
  if (!holder) throw new KnitError('bad-request', `KNIT_ADVERTISE ${advertise} is neither an interface nor an address of this host`);
  return { vtep: advertise, underlayMtu: holder.mtu };
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  // KNIT_METRICS: off by default, and then nothing is wrapped or counted.
  const kit = config.metrics ? await import('./metrics/kit.js') : undefined;
  const exported = kit ? new kit.KnitMetrics() : undefined;
  const rawLocal = await openLocalStore(join(config.stateDir, 'db'));
  const local = kit && exported ? kit.observedStore(rawLocal, exported) : rawLocal;
  const hostId = await ensureHostId(local);
  const rawCluster = await openClusterStore({
    url: config.store, local: rawLocal, consulToken: config.consulToken, etcdTls: config.etcdTls,
    // Starting without the store beats not starting: calls that need no store are served, the rest fail clearly until it answers.
    onUnreachable: (err) => log.error('the cluster store is unreachable at start; knit starts anyway and uses it once it answers', { error: err.message }),
  });
  // One object when the store is the embedded one: the rest of the daemon tells them apart by identity.
  const cluster = rawCluster === rawLocal ? local : kit && exported ? kit.observedStore(rawCluster, exported) : rawCluster;
  exported?.setInfo({ hostId, store: cluster.kind });
  const kernel = new Kernel({ log: log.isDebugEnabled() ? (line) => log.debug('kernel', line) : undefined, observer: exported });
  await checkForwarding(kernel, log);
  const ul = config.advertise ? await underlay(kernel, config.advertise) : undefined;
  // With a cluster store every host keeps a liveness key under its lease, overlays or not; the overlay needs KNIT_ADVERTISE.
  // Overlay endpoints' name records live under it too (with the embedded store, whose leases end with the process, as well).
  const lease = cluster !== local || ul ? new HostLease({ cluster, hostId, vtep: ul?.vtep, log, ttlSeconds: LEASE_TTL_SECONDS }) : undefined;
  const watch = lease ? new HostRecordWatch({ cluster, hostId, lease, log }) : undefined;
  const live = watch && cluster !== local ? new LiveHosts(hostId) : undefined;
  if (live) {
    watch?.add(live);
    live.onChange(() => watch?.refresh());
  }
  const tunnel = ul && lease && watch
    ? new Tunnel({
        cluster, local, hostId, kernel, log, lease, watch, underlay: { vtep: ul.vtep, mtu: ul.underlayMtu },
        stateDir: config.stateDir, port: config.wireguard.port, subnet: parseCidr(config.wireguard.subnet, 'KNIT_WG_SUBNET'),
      })
    : undefined;
  const overlay = ul && lease && watch && tunnel ? new Overlay({ cluster, hostId, underlay: { vtep: ul.vtep, mtu: ul.underlayMtu }, kernel, log, lease, watch, live, tunnel }) : undefined;
  const segments = overlay?.segments ?? new Segments({ cluster, hostId, log });
  const hints = engineHints(log);
  const namesSettings = config.dnsAddress ? { address: config.dnsAddress, dockerSocket: config.dockerSocket, resolvConf: config.resolvConf, endpointName: hints.endpointName } : undefined;
  // The other hosts' names come with their overlay endpoints, through the same watches.
  const madeNames = namesSettings && makeNames(namesSettings, { local, hostId, sink: overlay && lease, log });
  if (madeNames && overlay) watch?.add(madeNames.remote);
  const firewall = new IptablesFirewall(kernel, log);
  let sweepSoon = (): void => undefined;
  // Addresses on knit's own links (bridge gateways) are IPAM's already, and go with their networks.
  const ownAddresses = async () => (await kernel.links()).filter((l) => !l.alias?.startsWith('knit:')).flatMap((l) => l.addrs.map((c) => c.split('/')[0]));
  const hostAddrs = new HostAddresses({ store: cluster, hostId, own: ownAddresses, alike: config.dnsAddress ? [config.dnsAddress] : [], log, shared: cluster !== local });
  const refreshHostAddrs = () => hostAddrs.refresh().catch((err) => log.warn('could not publish or read the knit hosts\' addresses', { error: describe(err) }));
  const ipam = new Ipam({
    hostAddresses: () => hostAddrs.all(),
    onPoolReleased: () => sweepSoon(),
    store: cluster,
    // With a cluster store, addresses come from blocks and this host's ledger of them stays in its own store.
    local: cluster !== local ? local : undefined,
    hostId,
    defaultPools: config.defaultPools,
    reservedNetworks: async () => (await kernel.onLinkRoutes()).map((r) => parseCidr(r, 'route', false)),
    log,
  });
  const driver = new NetworkDriver({
    store: local, kernel, firewall, log, boundPorts,
    overlay,
    poolRange: (subnet) => poolRange(cluster, subnet),
    dnsResolver: config.dnsAddress,
  });
  let names: RunningNames | undefined;
  // Listen first: dockerd gives a plugin seconds to answer, and Activate/GetCapabilities need no state.
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const doctor = async () => ({
    ...(await reconcile({ driver, kernel, firewall, log, initial: false })),
    ...(await sweep({ driver, ipam, kernel, log })),
    ...(names ? { names: names.names.findings() } : {}),
    ...(tunnel ? { tunnelRepaired: await tunnel.repair() } : {}),
  });
  const calls = new CallMetrics();
  let served: RunningMetrics | undefined;
  const status = async () => ({
    ...(await statusDocument({
      hostId, cluster, local, networks: () => driver.networks(), endpoints: () => driver.endpoints(),
      calls: () => calls.snapshot(), spawned: () => spawnCounts(),
    })),
    ...(names ? { names: { ...names.names.status(), answers: names.resolver?.stats() ?? 'resolver not running' } } : {}),
    ...(served ? { metrics: served.status() } : {}),
    ...(tunnel ? { wireguard: await tunnel.status() } : {}),
  });
  const rotateKey = async () => {
    if (!tunnel) throw badRequest('this knit runs without KNIT_ADVERTISE, so it has no encrypted overlay and no WireGuard key');
    return tunnel.rotate();
  };
  const observer = exported ? { record: (...a: Parameters<CallMetrics['record']>) => (calls.record(...a), exported.record(...a)) } : calls;
  const app = createApp({ routes: routeTable({ network: driver, ipam, doctor, status, rotateKey, hints }), log, ready, metrics: observer });
  const server: Server = await listen(app, config.socket);
  // Encrypted overlays' rules and tunnel before their VXLAN devices are reconciled: nothing may leave in clear.
  await tunnel?.boot((await driver.networks()).some((n) => n.encrypted));
  await reconcile({ driver, kernel, firewall, log, initial: true });
  await refreshHostAddrs();
  overlay?.load(await driver.networks(), await driver.endpoints());
  await lease?.start();
  markReady();
  if (kit && exported && config.metrics) {
    // The scrape's own reads go to the unwrapped store: they are not knit's store traffic.
    served = await kit.serveMetrics({ address: config.metrics, metrics: exported, log, sources: {
      spawned: spawnCounts, lease: lease && (() => lease.stats()), segments: overlay && (() => overlay.segmentStats()),
      ipam: () => readUsage(rawCluster, hostId, rawLocal), dns: () => names?.resolver?.stats(),
    } });
  }
  // Names across hosts (issue 13), after the socket answers: the engine may be waiting for knit at its own start.
  if (madeNames && namesSettings) {
    // Names are an addition: if they cannot start, the networks must still work, and the log says why.
    names = await startNames(madeNames, namesSettings, { kernel, log }).catch((err) => (log.error('names across hosts could not start; networks work without them', { error: describe(err) }), undefined));
  } else {
    // Turned off: the address knit put on lo earlier goes (only one carrying knit's label).
    await ensureDnsAddress({ kernel }).catch((err) => log.warn('could not remove knit\'s resolver address', { error: describe(err) }));
  }
  // What a crash interrupted (a network dockerd gave up on, an address never used) goes at once.
  await sweep({ driver, ipam, kernel, log }).catch((err) => log.warn('sweep failed', { error: describe(err) }));
  const runSweep = () => {
    void sweep({ driver, ipam, kernel, log }).catch((err) => log.warn('sweep failed', { error: describe(err) }));
    void refreshHostAddrs();
    void tunnel?.repair().catch((err) => log.error('WireGuard tunnel repair failed; encrypted overlays drop their traffic until it works', { error: describe(err) }));
  };
  const timer = setInterval(runSweep, SWEEP_INTERVAL_MS);
  timer.unref();
  // Quarantine and reclaim of hosts whose lease lapsed (cluster stores only), led by one host.
  const liveness = lease && live && cluster !== local
    ? startLiveness({ lease, live, ipam, segments, tunnel, hostAddrs, log, afterMs: config.reclaimAfterSeconds * 1000 }, LIVENESS_INTERVAL_MS)
    : undefined;
  const rotation = tunnel && config.wireguard.rotateSeconds ? setInterval(() => {
    if (tunnel.active) void tunnel.rotate().catch((err) => log.warn('scheduled WireGuard key rotation failed', { error: describe(err) }));
  }, config.wireguard.rotateSeconds * 1000) : undefined;
  rotation?.unref();
  let pending: NodeJS.Timeout | undefined;
  // A released pool is normally followed at once by DeleteNetwork; if not, dockerd gave up on the network.
  sweepSoon = () => {
    clearTimeout(pending);
    pending = setTimeout(runSweep, ORPHAN_CHECK_DELAY_MS);
    pending.unref();
  };
  log.info('knit ready', { socket: config.socket, stateDir: config.stateDir, store: config.store.kind, host: hostId, vtep: ul?.vtep });
  return {
    hostId,
    async stop() {
      clearInterval(timer);
      liveness?.stop();
      clearInterval(rotation);
      clearTimeout(pending);
      await served?.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await driver.settled();
      await names?.stop();
      hostAddrs.stop();
      watch?.close();
      await lease?.stop();
      if (cluster !== local) await cluster.close();
      await local.close();
      kernel.close();
    },
  };
}
