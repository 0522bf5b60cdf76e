// Pure: what the resolver does with one packet from one source: answer it, forward it, refuse it or drop it.
import type { Answer } from 'dns-packet';
import type { NameSource } from './names.js';
import { ptrAddress } from './reverse.js';
import { answerReply, badVersReply, headerReply, parseQuery, type Query, RCODE, rcodeOf, udpLimit } from './wire.js';

export type Outcome = 'answered' | 'refused' | 'formerr' | 'notimp';

export type Decision =
  | { kind: 'reply'; reply: Buffer; outcome: Outcome }
  /** Not knit's to answer: the packet goes to the upstream resolvers as it came. */
  | { kind: 'forward'; query: Query }
  | { kind: 'drop'; why: string };

export interface PlanInput {
  packet: Buffer;
  /** The source address, in canonical form. */
  querier: string;
  names: NameSource;
  /** Sources other than knit containers that may use the resolver (the host, Docker's own bridges). */
  trusted: (ip: string) => boolean;
  transport: 'udp' | 'tcp';
  ttl: number;
}

const TCP_LIMIT = 65_535;

/** A parse failure's reply (header only, never longer than the query) goes to known sources only; others get nothing. */
function unparsed(why: string, reply: Buffer | undefined, known: boolean): Decision {
  if (!reply || !known) return { kind: 'drop', why };
  return { kind: 'reply', reply, outcome: rcodeOf(reply) === RCODE.NOTIMP ? 'notimp' : 'formerr' };
}

/**
 * The addresses of a name among the asker's networks: the name itself, or, like Docker's embedded resolver,
 * `name.<network name>` split at each dot (network names may hold dots) when the name source knows network names.
 */
function addressesOf(name: string, networks: string[], names: NameSource): { v4: string[]; v6: string[] } | undefined {
  const found = names.lookup(name, networks);
  if (found || !names.networkNamed) return found;
  for (let dot = name.indexOf('.'); dot > 0; dot = name.indexOf('.', dot + 1)) {
    const network = names.networkNamed(name.slice(dot + 1), networks);
    const inNetwork = network === undefined ? undefined : names.lookup(name.slice(0, dot), [network]);
    if (inNetwork) return inNetwork;
  }
  return undefined;
}

/** Records of the asked type; a known name without one is NOERROR with no records (NODATA), never NXDOMAIN. */
function records(query: Query, found: { v4: string[]; v6: string[] }, ttl: number): Answer[] {
  const { name } = query.question;
  const type: string = query.question.type;
  const a = type === 'A' || type === 'ANY' ? found.v4.map((data): Answer => ({ type: 'A', name, ttl, data })) : [];
  const aaaa = type === 'AAAA' || type === 'ANY' ? found.v6.map((data): Answer => ({ type: 'AAAA', name, ttl, data })) : [];
  return [...a, ...aaaa];
}

/** Knit's own answer to a well-formed IN question from a knit container, or undefined when it is not knit's name. */
function knitAnswer(query: Query, networks: string[], input: PlanInput): Answer[] | undefined {
  const name = query.question.name.toLowerCase();
  if (query.question.type === 'PTR') {
    const ip = ptrAddress(name);
    const host = ip === undefined ? undefined : input.names.reverse(ip, networks);
    return host === undefined ? undefined : [{ type: 'PTR', name: query.question.name, ttl: input.ttl, data: host }];
  }
  const found = addressesOf(name, networks, input.names);
  return found && records(query, found, input.ttl);
}

export function plan(input: PlanInput): Decision {
  const { packet, querier } = input;
  const networks = input.names.networksOf(querier);
  const known = networks !== undefined || input.trusted(querier);
  const parsed = parseQuery(packet);
  if (!parsed.ok) return unparsed(parsed.why, parsed.reply, known);
  const { query } = parsed;
  // Refused sources get the header and their own question back: never more bytes than they sent.
  if (!known) return { kind: 'reply', reply: headerReply(packet, RCODE.REFUSED, query.rawQuestion), outcome: 'refused' };
  if (query.ednsVersion !== undefined && query.ednsVersion > 0) {
    return query.plainName ? { kind: 'reply', reply: badVersReply(query), outcome: 'formerr' } : unparsed('EDNS version', headerReply(packet, RCODE.FORMERR), true);
  }
  if (query.question.class !== 'IN') return { kind: 'reply', reply: headerReply(packet, RCODE.NOTIMP, query.rawQuestion), outcome: 'notimp' };
  const answers = networks?.length && query.plainName ? knitAnswer(query, networks, input) : undefined;
  if (!answers) {
    const internal = networks !== undefined && input.names.external?.(querier) === false;
    return internal ? { kind: 'reply', reply: headerReply(packet, RCODE.REFUSED, query.rawQuestion), outcome: 'refused' } : { kind: 'forward', query };
  }
  const limit = input.transport === 'tcp' ? TCP_LIMIT : udpLimit(query);
  return { kind: 'reply', reply: answerReply({ query, answers, limit }), outcome: 'answered' };
}
