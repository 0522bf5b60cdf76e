// The contract between knit's resolver (src/dns) and the module that knows knit's names: types only.
import type { Logger } from '../log.js';

/** Where the resolver gets knit's names from; implemented by the names module, in memory and synchronous. */
export interface NameSource {
  /** The knit networks (opaque keys) of the container that has this source address; undefined if the address is not a knit container's. */
  networksOf(querier: string): string[] | undefined;
  /** The addresses of a name (container name, alias, hostname, short id; lower-case, no trailing dot) in any of these networks; undefined = no such name there. */
  lookup(name: string, networks: string[]): { v4: string[]; v6: string[] } | undefined;
  /** The name of a knit address, when it is in one of these networks. */
  reverse(ip: string, networks: string[]): string | undefined;
  /**
   * Optional: the key of the network among these whose Docker network name is `name` (lower-case), so that
   * `demo2.mynet` is answered as Docker's embedded resolver does. Without it such names are forwarded.
   */
  networkNamed?(name: string, networks: string[]): string | undefined;
  /**
   * Optional: whether names outside knit are forwarded for this knit container; false when every knit network
   * it is on is internal (`--internal`: "resolves names and nothing external"), and such queries are REFUSED.
   * Absent, or for addresses that are not knit containers': forwarded.
   */
  external?(querier: string): boolean;
}

export interface ResolverOptions {
  /** The one address to listen on, UDP and TCP (never the wildcard): KNIT_DNS_ADDRESS, 169.254.53.53 by default. */
  address: string;
  /** 53 unless a test says otherwise. */
  port?: number;
  names: NameSource;
  /**
   * Sources that may use the resolver although they are not knit containers (they get forwarding only).
   * Default: localSources() (the host's own addresses and the subnets of Docker's own bridges).
   */
  trusted?: (ip: string) => boolean;
  /** The upstream resolvers (addresses). Default: read from `resolvConf` as dockerd reads the host's, re-read when it changes. */
  upstreams?: () => string[];
  /** Default /etc/resolv.conf (and /run/systemd/resolve/resolv.conf when it lists only 127.0.0.53). */
  resolvConf?: string;
  /** The upstreams' port, 53 unless a test says otherwise. */
  upstreamPort?: number;
  log: Logger;
  /** TTL of knit's own answers, 5 s by default. */
  ttlSeconds?: number;
}

export interface ResolverStats {
  queries: number;
  answered: number;
  forwarded: number;
  refused: number;
  dropped: number;
  servfail: number;
  formerr: number;
  notimp: number;
  /** Forwards waiting for an upstream now. */
  inflight: number;
  tcpConnections: number;
}

export interface Resolver {
  close(): Promise<void>;
  stats(): ResolverStats;
}

// startResolver(o: ResolverOptions, tuning?): Promise<Resolver> is exported by src/dns/resolver.ts (tuning: tests and benchmarks).
