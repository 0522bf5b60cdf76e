// Pure: reading a DNS query off the wire (with dns-packet, never trusting a field) and building replies.
import dnsPacket, { type Answer, type DecodedPacket, type Question } from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const BADVERS = 16;
const HEADER = 12;
/** The smallest resource record: a root name, type, class, TTL and a zero length. */
const MIN_RECORD = 11;
const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
/** A UDP reply to a query without EDNS may not exceed 512 bytes (RFC 1035 4.2.1). */
export const CLASSIC_UDP = 512;
/** The most we send over UDP whatever a client offers: 1232 avoids IP fragmentation on any usual path (DNS flag day 2020). */
export const MAX_UDP = 1232;

/** A query that decoded: exactly one question, opcode QUERY, QR clear. */
export interface Query {
  id: number;
  rd: boolean;
  question: Question;
  /** The question's bytes as received, for replies that must not grow beyond the query. */
  rawQuestion: Buffer;
  /** Whether the question re-encodes to the same bytes (false for labels holding a dot or a pointer). */
  plainName: boolean;
  /** The client's EDNS buffer size, or undefined without an OPT record. */
  edns?: number;
  ednsVersion?: number;
}

export type Parsed =
  | { ok: true; query: Query }
  /** `reply` is the error to send (header only, never longer than the query), or undefined to drop. */
  | { ok: false; why: string; reply?: Buffer };

/** The length of the first question's name and fixed fields at HEADER, or undefined when it runs past the end. */
function questionLength(buf: Buffer): number | undefined {
  let at = HEADER;
  // 128 labels is the most a 255-byte name can have: a bound that holds whatever the bytes say.
  for (let labels = 0; labels < 128 && at < buf.length; labels++) {
    const len = buf[at];
    if (len === 0) return at + 1 + 4 <= buf.length ? at + 1 + 4 - HEADER : undefined;
    if ((len & 0xc0) === 0xc0) return at + 2 + 4 <= buf.length ? at + 2 + 4 - HEADER : undefined;
    at += 1 + len;
  }
  return undefined;
}

/** A reply of only a header (and the query's own question bytes when given): never longer than the query. */
export function headerReply(query: Buffer, rcode: number, rawQuestion?: Buffer): Buffer {
  const out = Buffer.alloc(HEADER + (rawQuestion?.length ?? 0));
  query.copy(out, 0, 0, 4);
  const flags = query.readUInt16BE(2);
  out.writeUInt16BE(QR | (flags & (0x7800 | RD)) | RA | (rcode & 0xf), 2);
  out.writeUInt16BE(rawQuestion ? 1 : 0, 4);
  rawQuestion?.copy(out, HEADER);
  return out;
}

function decode(buf: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(buf);
  } catch {
    return undefined;
  }
}

/** Whether the question re-encodes to its own bytes: not for a label holding a dot, a pointer or bytes that are not UTF-8. */
function reencodes(question: Question, raw: Buffer): boolean {
  try {
    return dnsPacket.encode({ questions: [question] }).subarray(HEADER).equals(raw);
  } catch {
    return false;
  }
}

/** Reads a query; anything that is not one plain question gets the error the RFCs give it, or nothing. */
export function parseQuery(buf: Buffer): Parsed {
  if (buf.length < HEADER) return { ok: false, why: 'shorter than a DNS header' };
  const flags = buf.readUInt16BE(2);
  // Never answer a response: two resolvers (or a spoofed source) would bounce packets forever.
  if (flags & QR) return { ok: false, why: 'a response, not a query' };
  const qlen = questionLength(buf);
  const rawQuestion = qlen === undefined ? undefined : buf.subarray(HEADER, HEADER + qlen);
  if ((flags >> 11) & 0xf) return { ok: false, why: 'opcode other than QUERY', reply: headerReply(buf, RCODE.NOTIMP) };
  if (buf.readUInt16BE(4) !== 1) return { ok: false, why: 'not exactly one question', reply: headerReply(buf, RCODE.FORMERR) };
  // dns-packet sizes its record arrays from the header's counts: counts that the bytes cannot hold are refused first.
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  if (rawQuestion && records * MIN_RECORD > buf.length - HEADER - rawQuestion.length) {
    return { ok: false, why: 'record counts larger than the packet', reply: headerReply(buf, RCODE.FORMERR) };
  }
  const packet = rawQuestion && decode(buf);
  const question = packet?.questions?.[0];
  if (!packet || !question || !rawQuestion) return { ok: false, why: 'malformed', reply: headerReply(buf, RCODE.FORMERR) };
  const opts = (packet.additionals ?? []).filter((a) => a.type === 'OPT');
  if (opts.length > 1) return { ok: false, why: 'more than one OPT record', reply: headerReply(buf, RCODE.FORMERR) };
  const opt = opts[0] as dnsPacket.OptAnswer | undefined;
  const plainName = reencodes(question, rawQuestion);
  const query: Query = { id: buf.readUInt16BE(0), rd: (flags & RD) !== 0, question, rawQuestion, plainName };
  if (opt) {
    query.edns = opt.udpPayloadSize;
    query.ednsVersion = opt.ednsVersion;
  }
  return { ok: true, query };
}

/** The most a UDP reply to this query may carry. */
export function udpLimit(query: Query): number {
  if (query.edns === undefined) return CLASSIC_UDP;
  return Math.min(Math.max(query.edns, CLASSIC_UDP), MAX_UDP);
}

function opt(rcode: number): dnsPacket.OptAnswer {
  return { type: 'OPT', name: '.', udpPayloadSize: MAX_UDP, extendedRcode: rcode >> 4, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

function encodeReply(a: { query: Query; rcode: number; answers: Answer[]; truncated: boolean }): Buffer {
  const { query } = a;
  const flags = AA | RA | (query.rd ? RD : 0) | (a.truncated ? TC : 0) | (a.rcode & 0xf);
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags,
    questions: [query.question],
    answers: a.truncated ? [] : a.answers,
    additionals: query.edns === undefined ? [] : [opt(a.rcode)],
  });
}

/** A full reply with these records; over `limit` bytes, the records are left out and TC tells the client to ask over TCP. */
export function answerReply(a: { query: Query; answers: Answer[]; limit: number; rcode?: number }): Buffer {
  const rcode = a.rcode ?? RCODE.NOERROR;
  const full = encodeReply({ query: a.query, rcode, answers: a.answers, truncated: false });
  return full.length <= a.limit ? full : encodeReply({ query: a.query, rcode, answers: a.answers, truncated: true });
}

/** EDNS versions above 0 get BADVERS (RFC 6891 6.1.3). */
export const badVersReply = (query: Query): Buffer => answerReply({ query, answers: [], limit: CLASSIC_UDP, rcode: BADVERS });

/** The rcode of a reply (only the header's four bits: enough to tell SERVFAIL and REFUSED). */
export const rcodeOf = (reply: Buffer): number => reply.readUInt16BE(2) & 0xf;
