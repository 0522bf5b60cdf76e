// knit's resolver: UDP and TCP servers on one address, answering knit's names and forwarding the rest.
import type dgram from 'node:dgram';
import ipaddr from 'ipaddr.js';
import { badRequest, KnitError } from '../errors.js';
import { Forwarder } from './forward.js';
import { Handler } from './handler.js';
import { RateLimiter } from './limit.js';
import type { Resolver, ResolverOptions } from './names.js';
import { canonicalIp } from './reverse.js';
import { localSources } from './sources.js';
import { startTcp, TCP_LIMITS, type TcpLimits, type TcpServer } from './tcp.js';
import { startUdp } from './udp.js';
import { resolvConfUpstreams } from './upstreams.js';

export type { NameSource, Resolver, ResolverOptions, ResolverStats } from './names.js';

/**
 * Tuning, all with defaults; tests shorten the times. The forward budget stays under Docker's own 4 s per
 * server, so a dead upstream gives the client SERVFAIL (Docker then tries its next server) rather than a timeout.
 */
export interface ResolverTuning {
  forwardTimeoutMs: number;
  forwardRetryMs: number;
  maxInflight: number;
  /** Per source: queries per second sustained, and at once. */
  rate: number;
  burst: number;
  maxSources: number;
  /** REFUSED replies per second, all sources together. */
  refusalsPerSecond: number;
  tcp: TcpLimits;
}

export const DEFAULT_TUNING: ResolverTuning = {
  forwardTimeoutMs: 3500, forwardRetryMs: 1000, maxInflight: 1024, rate: 10_000, burst: 10_000, maxSources: 4096, refusalsPerSecond: 1000, tcp: TCP_LIMITS,
};

/** The address to listen on: one unicast address, never the wildcard (other resolvers hold :53 on other addresses). */
function listenAddress(address: string): string {
  const ip = canonicalIp(address);
  if (ip === undefined) throw badRequest(`KNIT_DNS_ADDRESS ${JSON.stringify(address)} is not an IP address; give one address such as 169.254.53.53, or leave it empty to turn the resolver off`);
  const range = ipaddr.parse(ip).range();
  if (range === 'unspecified' || range === 'multicast' || range === 'broadcast') {
    throw badRequest(`KNIT_DNS_ADDRESS ${ip} is a ${range} address; the resolver listens on one unicast address such as 169.254.53.53`);
  }
  return ip;
}

function bindError(err: unknown, address: string, port: number): KnitError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EADDRNOTAVAIL' ? 'the address is not on any interface of this host (knit puts it on lo first)'
    : code === 'EADDRINUSE' ? 'another program already listens there' : (err as Error).message;
  return new KnitError('internal', `cannot start the DNS resolver on ${address} port ${port}: ${why}`, { cause: err });
}

export async function startResolver(o: ResolverOptions, tuning: Partial<Omit<ResolverTuning, 'tcp'>> & { tcp?: Partial<TcpLimits> } = {}): Promise<Resolver> {
  const t = { ...DEFAULT_TUNING, ...tuning, tcp: { ...TCP_LIMITS, ...tuning.tcp } };
  const address = listenAddress(o.address);
  const port = o.port ?? 53;
  const upstreams = o.upstreams ?? resolvConfUpstreams({ path: o.resolvConf, exclude: address, log: o.log });
  const forwarder = new Forwarder({ upstreams, port: o.upstreamPort ?? 53, timeoutMs: t.forwardTimeoutMs, retryMs: t.forwardRetryMs, maxInflight: t.maxInflight });
  const handler = new Handler({
    names: o.names, trusted: o.trusted ?? localSources(), ttl: o.ttlSeconds ?? 5, forwarder, log: o.log,
    limiter: new RateLimiter({ rate: t.rate, burst: t.burst, maxSources: t.maxSources }),
    refusals: new RateLimiter({ rate: t.refusalsPerSecond, burst: t.refusalsPerSecond, maxSources: 1 }),
  });
  let udp: dgram.Socket | undefined;
  let tcp: TcpServer | undefined;
  try {
    udp = await startUdp({ address, port, handler });
    tcp = await startTcp({ address, port, handler, limits: t.tcp });
  } catch (err) {
    udp?.close();
    forwarder.close();
    throw bindError(err, address, port);
  }
  const server = tcp;
  const socket = udp;
  o.log.info('dns resolver started', { address, port, upstreams: upstreams() });
  return {
    stats: () => ({ ...handler.counts, inflight: forwarder.inflight, tcpConnections: server.connections() }),
    close: async () => {
      forwarder.close();
      socket.close();
      await server.close();
    },
  };
}
