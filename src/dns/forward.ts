// Forwarding to the upstream resolvers from knit's own namespace: IDs mapped, bounded in time and in number.
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { queryTcp } from './tcp-client.js';
import { headerReply, type Query, RCODE, rcodeOf } from './wire.js';

export interface ForwarderOptions {
  upstreams: () => string[];
  port: number;
  /** The whole budget of one query: its client gets SERVFAIL then. Below Docker's own 4 s wait per server. */
  timeoutMs: number;
  /** When the next upstream (or the same one again, when there is one) is tried if no answer came. */
  retryMs: number;
  /** Forwards under way at once; more are dropped (the client retries). */
  maxInflight: number;
}

/** Each query is sent at most this many times (Docker's embedded resolver tries up to three servers). */
const MAX_SENDS = 3;

interface Pending {
  /** The query with our ID, for sending again. */
  packet: Buffer;
  rawQuestion: Buffer;
  /** Where it was sent (address, port): replies from anywhere else are ignored. */
  sentTo: Set<string>;
  sends: number;
  failures: number;
  done: boolean;
  timer?: NodeJS.Timeout;
  finish: (reply?: Buffer) => void;
}

/** Whether a datagram is the reply to this pending query: QR set, the same question bytes, from where it went. */
function matches(p: Pending, msg: Buffer, from: string): boolean {
  if (!p.sentTo.has(from) || msg.length < 12 + p.rawQuestion.length || !(msg[2] & 0x80)) return false;
  return msg.subarray(12, 12 + p.rawQuestion.length).equals(p.rawQuestion);
}

export class Forwarder {
  private readonly pending = new Map<number, Pending>();
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  private tcpInflight = 0;
  private closed = false;

  constructor(private readonly o: ForwarderOptions) {}

  get inflight(): number {
    return this.pending.size + this.tcpInflight;
  }

  /**
   * The upstream's reply with the client's ID, SERVFAIL when no upstream gave a usable one in time, or
   * undefined when too many forwards are under way (dropped: the client asks again).
   */
  forward(packet: Buffer, query: Query, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> | undefined {
    if (this.closed || this.inflight >= this.o.maxInflight) return undefined;
    const upstreams = this.o.upstreams();
    if (!upstreams.length) return Promise.resolve(headerReply(packet, RCODE.SERVFAIL, query.rawQuestion));
    return transport === 'tcp' ? this.forwardTcp(packet, query, upstreams) : this.forwardUdp(packet, query, upstreams);
  }

  private forwardUdp(packet: Buffer, query: Query, upstreams: string[]): Promise<Buffer> {
    const id = this.freeId();
    const ours = Buffer.from(packet);
    ours.writeUInt16BE(id, 0);
    return new Promise<Buffer>((resolve) => {
      const deadline = setTimeout(() => p.finish(), this.o.timeoutMs);
      const p: Pending = {
        packet: ours, rawQuestion: query.rawQuestion, sentTo: new Set(), sends: 0, failures: 0, done: false,
        finish: (reply) => {
          p.done = true;
          clearTimeout(deadline);
          clearTimeout(p.timer);
          this.pending.delete(id);
          if (!reply) return resolve(headerReply(packet, RCODE.SERVFAIL, query.rawQuestion));
          const out = Buffer.from(reply);
          out.writeUInt16BE(query.id, 0);
          resolve(out);
        },
      };
      this.pending.set(id, p);
      this.send(p, upstreams);
    });
  }

  /**
   * Sends to the next upstream and schedules the one after. After a failed answer the next send goes to an
   * upstream not tried yet; on a timeout, with one upstream, the same one is asked again (a datagram may be lost).
   */
  private send(p: Pending, upstreams: string[]): void {
    clearTimeout(p.timer);
    if (p.done || p.sends >= MAX_SENDS) return;
    const host = upstreams.find((u) => !p.sentTo.has(this.key(u))) ?? upstreams[p.sends % upstreams.length];
    p.sends++;
    p.sentTo.add(this.key(host));
    const socket = this.socketFor(isIPv6(host.split('%')[0]) ? 6 : 4);
    socket.send(p.packet, this.o.port, host, (err) => err && this.failed(p, upstreams));
    if (p.sends < MAX_SENDS) p.timer = setTimeout(() => this.send(p, upstreams), this.o.retryMs);
  }

  private key(host: string): string {
    return `${host}#${this.o.port}`;
  }

  /** SERVFAIL, REFUSED or a send error: an upstream not tried yet at once (as Docker does); SERVFAIL when every one sent to failed. */
  private failed(p: Pending, upstreams: string[]): void {
    if (p.done) return;
    p.failures++;
    const untried = upstreams.some((u) => !p.sentTo.has(this.key(u)));
    if (untried && p.sends < MAX_SENDS) this.send(p, upstreams);
    else if (p.failures >= p.sends) p.finish();
  }

  private onReply(msg: Buffer, from: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p || !matches(p, msg, `${from.address}#${from.port}`)) return;
    const rcode = rcodeOf(msg);
    if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) this.failed(p, this.o.upstreams());
    else p.finish(msg);
  }

  /** A random ID not in use (not a counter: a blind spoofer must guess it). */
  private freeId(): number {
    for (;;) {
      const id = randomInt(0, 0x10000);
      if (!this.pending.has(id)) return id;
    }
  }

  private socketFor(family: 4 | 6): dgram.Socket {
    const known = this.sockets.get(family);
    if (known) return known;
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    socket.on('message', (msg, from) => this.onReply(msg, from));
    // An ICMP error on a send surfaces here on some kernels; the per-query timers still settle every query.
    socket.on('error', () => undefined);
    socket.unref();
    this.sockets.set(family, socket);
    return socket;
  }

  private async forwardTcp(packet: Buffer, query: Query, upstreams: string[]): Promise<Buffer> {
    this.tcpInflight++;
    const started = Date.now();
    try {
      for (let i = 0; i < Math.min(MAX_SENDS, upstreams.length); i++) {
        const left = this.o.timeoutMs - (Date.now() - started);
        if (left <= 0) break;
        const reply = await queryTcp({ host: upstreams[i], port: this.o.port, packet, timeoutMs: Math.min(left, this.o.retryMs * 2) });
        if (reply && reply.length >= 12 && reply.readUInt16BE(0) === query.id && ![RCODE.SERVFAIL, RCODE.REFUSED].includes(rcodeOf(reply) as 2 | 5)) return reply;
      }
      return headerReply(packet, RCODE.SERVFAIL, query.rawQuestion);
    } finally {
      this.tcpInflight--;
    }
  }

  close(): void {
    this.closed = true;
    for (const p of [...this.pending.values()]) p.finish();
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}
