// One packet in, at most one reply out: rate limit, plan, forward, count. Shared by the UDP and TCP servers.
import type { Logger } from '../log.js';
import type { Forwarder } from './forward.js';
import type { RateLimiter } from './limit.js';
import type { NameSource, ResolverStats } from './names.js';
import { plan } from './plan.js';
import { canonicalIp } from './reverse.js';
import { RCODE, rcodeOf } from './wire.js';

export interface HandlerOptions {
  names: NameSource;
  trusted: (ip: string) => boolean;
  ttl: number;
  forwarder: Forwarder;
  /** Per source. */
  limiter: RateLimiter;
  /** For REFUSED replies of all sources together: spoofed floods get little back, and never more bytes than sent. */
  refusals: RateLimiter;
  log: Logger;
}

export type Reply = Buffer | undefined;

/** A packet that makes the handler throw (a bug) is dropped: an exception in a socket's event would end the process. */
export function safely(handle: () => Reply | Promise<Reply>): Reply | Promise<Reply> {
  try {
    return handle();
  } catch {
    return undefined;
  }
}

/** Errors of the name source are logged at most this often (a broken source would otherwise log per query). */
const ERROR_LOG_MS = 10_000;

export class Handler {
  readonly counts: Omit<ResolverStats, 'inflight' | 'tcpConnections'> = {
    queries: 0, answered: 0, forwarded: 0, refused: 0, dropped: 0, servfail: 0, formerr: 0, notimp: 0,
  };
  private loggedAt = -Infinity;

  constructor(private readonly o: HandlerOptions) {}

  /** The reply to send (at once, or when the upstream answers), or undefined to send nothing. */
  handle(packet: Buffer, source: string, transport: 'udp' | 'tcp'): Reply | Promise<Reply> {
    this.counts.queries++;
    const querier = canonicalIp(source) ?? source;
    if (!this.o.limiter.allow(querier)) return this.drop();
    let decision;
    try {
      decision = plan({ packet, querier, names: this.o.names, trusted: this.o.trusted, transport, ttl: this.o.ttl });
    } catch (err) {
      this.logError(err);
      return this.drop();
    }
    switch (decision.kind) {
      case 'drop':
        return this.drop();
      case 'reply':
        if (decision.outcome === 'refused' && !this.o.refusals.allow('all')) return this.drop();
        this.counts[decision.outcome]++;
        return decision.reply;
      case 'forward': {
        const pending = this.o.forwarder.forward(packet, decision.query, transport);
        if (!pending) return this.drop();
        this.counts.forwarded++;
        return pending.then((reply) => {
          if (reply && rcodeOf(reply) === RCODE.SERVFAIL) this.counts.servfail++;
          return reply;
        });
      }
    }
  }

  private drop(): undefined {
    this.counts.dropped++;
    return undefined;
  }

  private logError(err: unknown): void {
    const now = Date.now();
    if (now - this.loggedAt < ERROR_LOG_MS) return;
    this.loggedAt = now;
    this.o.log.error('dns name source failed; query dropped', { error: err instanceof Error ? err.message : String(err) });
  }
}
