// The /v1/session and /v1/status endpoints of the Consul test server, after agent/session_endpoint.go and
// agent/consul/session_endpoint.go.
import { formatGoDuration, parseGoDuration } from './consul-duration.js';
import { blockingQuery, field, json, meta, text, type Call, type Env, type Reply } from './consul-http.js';
import type { Session } from './consul-state.js';

const SESSION_TTL_MAX_NS = 24 * 3600e9;
const DEFAULT_LOCK_DELAY_NS = 15e9;
/** A lock delay below this many nanoseconds was surely meant as seconds (lockDelayMinThreshold). */
const LOCK_DELAY_MIN_THRESHOLD = 1000;
/** The address a one-server cluster reports as its Raft leader. */
const LEADER = '127.0.0.1:8300';

const sessionJson = (s: Session): Record<string, unknown> => ({
  ID: s.id,
  Name: s.name,
  Node: s.node,
  LockDelay: s.lockDelayNs,
  Behavior: s.behavior,
  TTL: s.ttl,
  NodeChecks: s.nodeChecks,
  ServiceChecks: null,
  CreateIndex: s.createIndex,
  ModifyIndex: s.modifyIndex,
});

export function sessionRoute(env: Env, call: Call): Reply | Promise<Reply> {
  const [op, ...tail] = call.path.slice('/v1/session/'.length).split('/');
  const id = tail.join('/');
  const method = op === 'create' || op === 'renew' || op === 'destroy' ? 'PUT' : 'GET';
  if (!['create', 'renew', 'destroy', 'info', 'list', 'node'].includes(op)) return text(404, '404 page not found');
  if (call.method !== method) return { status: 405, headers: { Allow: method } };
  if (op === 'create') return create(env, call);
  if (op === 'list') return listing(env, call, () => [...env.state.sessions.values()]);
  if (!id) return text(400, op === 'node' ? 'Missing node name' : 'Missing session');
  if (op === 'node') return listing(env, call, () => [...env.state.sessions.values()].filter((s) => s.node === id));
  if (op === 'info') return listing(env, call, () => [env.state.sessions.get(id)].filter((s): s is Session => !!s));
  if (op === 'destroy') {
    env.state.destroySession(id);
    return json(200, true);
  }
  const session = env.state.renewSession(id);
  return session ? json(200, [sessionJson(session)]) : text(404, `Session id '${id}' not found`);
}

function listing(env: Env, call: Call, select: () => Session[]): Reply | Promise<Reply> {
  return blockingQuery({
    env,
    call,
    interest: () => ({ sessions: true }),
    run: () => ({ index: env.state.sessionsIndex, reply: json(200, select().map(sessionJson), meta(env.state.sessionsIndex, call.query)) }),
  });
}

function create(env: Env, call: Call): Reply {
  let body: Record<string, unknown> = {};
  if (call.body.length) {
    try {
      const parsed: unknown = JSON.parse(call.body.toString());
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object');
      body = parsed as Record<string, unknown>;
    } catch (err) {
      return text(400, `Request decode failed: ${(err as Error).message}`);
    }
  }
  const lockDelayNs = lockDelay(field(body, 'LockDelay'));
  if (lockDelayNs === undefined) return text(400, `Request decode failed: time: invalid duration ${JSON.stringify(field(body, 'LockDelay'))}`);
  const node = String(field(body, 'Node') ?? env.settings.nodeName);
  if (node !== env.settings.nodeName) return text(500, 'Missing node registration');
  // Giving Checks or NodeChecks, even empty, replaces the default serfHealth check (FixupChecks).
  const listed = field(body, 'NodeChecks') ?? field(body, 'Checks');
  const checks = Array.isArray(listed) ? listed.map(String) : ['serfHealth'];
  const unknown = checks.find((c) => c !== 'serfHealth');
  if (unknown !== undefined) return text(500, `Missing check '${unknown}' registration`);
  const behavior = String(field(body, 'Behavior') ?? '') || 'release';
  if (behavior !== 'release' && behavior !== 'delete') return text(500, `Invalid Behavior setting '${behavior}'`);
  const ttl = String(field(body, 'TTL') ?? '');
  const ttlNs = ttl === '' ? 0 : parseGoDuration(ttl);
  if (ttlNs === undefined) return text(500, `Session TTL '${ttl}' invalid: time: invalid duration ${JSON.stringify(ttl)}`);
  const min = env.settings.sessionTtlMinNs;
  if (ttlNs !== 0 && (ttlNs < min || ttlNs > SESSION_TTL_MAX_NS)) {
    return text(500, `Invalid Session TTL '${ttlNs}', must be between [${formatGoDuration(min)}=${formatGoDuration(SESSION_TTL_MAX_NS)}]`);
  }
  const name = String(field(body, 'Name') ?? '');
  const id = env.state.createSession({ name, node, lockDelayNs, behavior, ttl, ttlNs, nodeChecks: checks.length ? checks : null });
  return json(200, { ID: id });
}

/** FixupLockDelay: a duration string or a number of nanoseconds, either taken as seconds below 1000. */
function lockDelay(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return DEFAULT_LOCK_DELAY_NS;
  const ns = typeof raw === 'string' ? parseGoDuration(raw) : typeof raw === 'number' ? raw : undefined;
  if (ns === undefined) return undefined;
  return ns < LOCK_DELAY_MIN_THRESHOLD ? ns * 1e9 : ns;
}

export function statusRoute(call: Call): Reply {
  const rest = call.path.slice('/v1/status/'.length);
  if (rest !== 'leader' && rest !== 'peers') return text(404, '404 page not found');
  if (call.method !== 'GET') return { status: 405, headers: { Allow: 'GET' } };
  return json(200, rest === 'leader' ? LEADER : [LEADER]);
}
