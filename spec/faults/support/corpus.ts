// A seeded, generated corpus of malformed and adversarial plugin requests, each with the reply it must get.
import { INVALID_UTF8, nested } from './mutations.js';
import type { RawRequest } from './raw-http.js';
import { type Field, type Fixture, setAt, type Template, templates, UNKNOWN_PATHS } from './templates.js';

export interface Hostile extends RawRequest {
  /** The mutation class, for the tally and for failure messages. */
  kind: string;
  /** 404 for paths knit does not serve, 500 for everything else; ignored for a client that hangs up mid-body. */
  expect: 404 | 500;
}

/** mulberry32: small, fast and deterministic, so a failing corpus can be regenerated from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)];
const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const text = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const MARK = '@@knit-fault-mark@@';

/** The body with one strict field replaced by raw JSON text (or bytes) that JSON.stringify cannot produce. */
function splice(t: Template, field: Field, raw: Buffer | string): Buffer {
  const [before, after] = JSON.stringify(setAt(t.body, field.path, MARK)).split(`"${MARK}"`);
  return Buffer.concat([Buffer.from(before), Buffer.isBuffer(raw) ? raw : Buffer.from(raw), Buffer.from(after)]);
}

const strictFields = (t: Template): Field[] => t.fields.filter((f) => f.strict);
const withStrict = (r: Rand, all: Template[]): [Template, Field] => {
  const t = pick(r, all.filter((x) => strictFields(x).length));
  return [t, pick(r, strictFields(t))];
};

/** Generators by class; each returns one request that knit must refuse. */
const classes: Record<string, (r: Rand, all: Template[]) => Omit<Hostile, 'kind'>> = {
  'bad field': (r, all) => {
    const t = pick(r, all);
    let body = t.body;
    // One to three fields broken at once: every one of them alone makes the request malformed.
    for (let n = int(r, 1, 3), i = 0; i < n; i++) {
      const f = pick(r, t.fields);
      body = setAt(body, f.path, pick(r, f.bad));
    }
    return { path: t.path, body: text(body), expect: 500 };
  },
  'missing field': (r, all) => {
    const t = pick(r, all.filter((x) => x.fields.some((f) => f.required)));
    return { path: t.path, body: text(setAt(t.body, pick(r, t.fields.filter((f) => f.required)).path, undefined)), expect: 500 };
  },
  'not an object': (r, all) => {
    const t = pick(r, all);
    return { path: t.path, body: Buffer.from(pick(r, ['[]', '"x"', '42', 'null', 'true', '-0', '1e400', `[${JSON.stringify(t.body)}]`])), expect: 500 };
  },
  'not JSON': (r, all) => {
    const t = pick(r, all);
    const j = JSON.stringify(t.body);
    const variants = [
      j.slice(0, int(r, 1, j.length - 1)), `${j.slice(0, -1)},}`, j.replace(/"/g, "'"), `/*c*/${j}`, `\uFEFF${j}`, `${j} x`, `${j}${j}`,
      j.replace(':', '='), `{${j.slice(1).replace(/"(\w+)":/, '$1:')}`, 'NaN', 'undefined', '{', '}', '{"', String.fromCharCode(...Array.from({ length: int(r, 1, 64) }, () => int(r, 33, 122))).replace(/^[{\s]+/, 'x'),
    ];
    return { path: t.path, body: Buffer.from(pick(r, variants)), expect: 500 };
  },
  'duplicate key, bad last': (r, all) => {
    const t = pick(r, all.filter((x) => x.fields.some((f) => f.path.length === 1)));
    const f = pick(r, t.fields.filter((x) => x.path.length === 1));
    const j = JSON.stringify(t.body);
    return { path: t.path, body: Buffer.from(`${j.slice(0, -1)},${JSON.stringify(f.path[0])}:${JSON.stringify(pick(r, f.bad) ?? null)}}`), expect: 500 };
  },
  'invalid UTF-8': (r, all) => {
    const [t, f] = withStrict(r, all);
    return { path: t.path, body: splice(t, f, Buffer.concat([Buffer.from('"ab'), pick(r, INVALID_UTF8), Buffer.from('cd"')])), expect: 500 };
  },
  'deep nesting': (r, all) => {
    const [t, f] = withStrict(r, all);
    const depth = pick(r, [10, 100, 1_000, 10_000, 100_000]);
    const kind = pick(r, ['array', 'object'] as const);
    if (r() < 0.3) return { path: t.path, body: Buffer.from(nested(depth, kind)), expect: 500 };
    return { path: t.path, body: splice(t, f, nested(depth, kind)), expect: 500 };
  },
  'huge value': (r, all) => {
    const [t, f] = withStrict(r, all);
    const raw = pick(r, [`"${'a'.repeat(int(r, 1_000, 900_000))}"`, '1e400', '-1e400', '123456789012345678901234567890', '9007199254740993', '-0', '0.0000000001']);
    return { path: t.path, body: splice(t, f, raw), expect: 500 };
  },
  'unknown path': (r, all) => {
    const t = pick(r, all);
    return { path: pick(r, UNKNOWN_PATHS), body: text(t.body), expect: 404 };
  },
  'wrong method': (r, all) => {
    const t = pick(r, all);
    return { method: pick(r, ['GET', 'PUT', 'DELETE', 'PATCH']), path: t.path, body: text(t.body), expect: 404 };
  },
  'query string': (r, all) => {
    const t = pick(r, all);
    const f = pick(r, t.fields);
    return { path: `${t.path}?${pick(r, ['x=1', 'NetworkID=../..', '$(id)', '%00'])}`, body: text(setAt(t.body, f.path, pick(r, f.bad))), expect: 500 };
  },
  'content encoding': (r, all) => {
    const t = pick(r, all);
    return { path: t.path, body: Buffer.from(pick(r, ['garbage', '\u001f\u008b\u0008junk', JSON.stringify(t.body)])), headers: { 'Content-Encoding': pick(r, ['gzip', 'deflate', 'br', 'zstd', 'x-evil']) }, expect: 500 };
  },
};

/** Weights of the classes in the corpus (large bodies and slow clients are added on top, see buildCorpus). */
const WEIGHTS: Record<string, number> = {
  'bad field': 55, 'missing field': 6, 'not an object': 4, 'not JSON': 8, 'duplicate key, bad last': 3, 'invalid UTF-8': 5,
  'deep nesting': 3, 'huge value': 2, 'unknown path': 7, 'wrong method': 3, 'query string': 2, 'content encoding': 2,
};

/** Bodies of several MB, cut from shared buffers: a giant field, valid JSON padded with spaces, random bytes. */
function bigBodies(r: Rand, all: Template[]): (r: Rand) => Omit<Hostile, 'kind'> {
  const max = 6_000_000;
  const noise = Buffer.alloc(max);
  for (let i = 0; i < max; i++) noise[i] = Math.floor(r() * 256);
  const shared = [
    Buffer.from(`{"NetworkID":"${'a'.repeat(max)}"}`),
    Buffer.concat([text(all[0].body), Buffer.alloc(max, ' ')]),
    noise,
  ];
  return (rr) => {
    const t = pick(rr, all);
    // Some without Content-Length: knit must stop reading at its limit rather than trust the header.
    return { path: t.path, body: pick(rr, shared).subarray(0, int(rr, 1_500_000, max)), chunked: rr() < 0.4, expect: 500 };
  };
}

export interface CorpusOptions {
  seed: number;
  size: number;
  /** How many of `size` are bodies of several MB. */
  bigBodies: number;
  /** How many are sent by a slow client, a few bytes at a time. */
  slow: number;
  /** How many clients hang up halfway through their body. */
  cut: number;
}

export function buildCorpus(fixture: Fixture, o: CorpusOptions): Hostile[] {
  const r = prng(o.seed);
  const all = templates(fixture);
  const names = Object.keys(WEIGHTS);
  const total = names.reduce((acc, n) => acc + WEIGHTS[n], 0);
  const weighted = (): string => {
    let x = r() * total;
    for (const n of names) if ((x -= WEIGHTS[n]) < 0) return n;
    return names[0];
  };
  const out: Hostile[] = [];
  const big = bigBodies(r, all);
  for (let i = 0; i < o.bigBodies; i++) out.push({ kind: 'body of several MB', ...big(r) });
  while (out.length < o.size) {
    const kind = weighted();
    out.push({ kind, ...classes[kind](r, all) });
  }
  // Slow and hanging-up clients are drawn from small bodies, so that a trickle stays within seconds, and not from
  // requests refused on their headers alone (an unknown encoding): knit answers and closes before the body matters.
  const small = out.map((h, i) => [h, i] as const).filter(([h]) => h.body.length >= 16 && h.body.length < 400 && !h.headers);
  for (let i = 0; i < o.slow && i < small.length; i++) {
    const [h, at] = small[i * 3 % small.length];
    // A few bytes every few tens of ms, bounded to about 3 s per request.
    const everyMs = int(r, 10, 60);
    const bytes = Math.max(int(r, 1, 8), Math.ceil((h.body.length * everyMs) / 3_000));
    out[at] = { ...h, kind: `${h.kind} (slow client)`, trickle: { bytes, everyMs } };
  }
  for (let i = 0; i < o.cut && i < small.length; i++) {
    const [h, at] = small[(i * 3 + 1) % small.length];
    out[at] = { ...h, kind: `${h.kind} (hung up mid-body)`, cutAfter: int(r, 1, h.body.length - 1) };
  }
  return out;
}
