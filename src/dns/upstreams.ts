// The host's upstream resolvers, read the way dockerd reads them, and read again when the file changes.
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from '../log.js';
import { canonicalIp } from './reverse.js';

export const RESOLV_CONF = '/etc/resolv.conf';
/** systemd-resolved's list of the real servers, used when resolv.conf names only its stub (as dockerd does). */
export const SYSTEMD_RESOLV_CONF = '/run/systemd/resolve/resolv.conf';
const RESOLVED_STUB = '127.0.0.53';
/** Docker's embedded resolver uses at most three servers (maxExtDNS); so do the resolvers of libc. */
export const MAX_UPSTREAMS = 3;
/** How often the files' metadata is looked at again, at most: a change is seen within this time. */
const RECHECK_MS = 1000;

/** The `nameserver` addresses of a resolv.conf text, in order, each once, in canonical form; anything else is ignored. */
export function parseResolvConf(text: string): string[] {
  const servers: string[] = [];
  for (const line of text.split('\n')) {
    const words = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (words[0] !== 'nameserver' || words.length < 2) continue;
    const zone = words[1].includes('%') ? words[1].slice(words[1].indexOf('%')) : '';
    const ip = canonicalIp(words[1]);
    if (ip !== undefined && !servers.includes(ip + zone)) servers.push(ip + zone);
  }
  return servers;
}

/** The servers to forward to: without knit's own address (a loop), at most three. */
export function chooseUpstreams(a: { main: string[]; systemd?: string[]; exclude: string }): string[] {
  const onlyStub = a.main.length === 1 && a.main[0] === RESOLVED_STUB;
  const servers = onlyStub && a.systemd ? a.systemd : a.main;
  return servers.filter((s) => s !== a.exclude).slice(0, MAX_UPSTREAMS);
}

interface Cached {
  key: string;
  servers: string[];
}

function stamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

function readServers(path: string): string[] | undefined {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * A function that returns the current upstreams. Files are looked at again (stat only) at most once a
 * second and read again only when they changed, so the forwarding path does no I/O most of the time.
 */
export function resolvConfUpstreams(a: { path?: string; systemdPath?: string; exclude: string; log: Logger }): () => string[] {
  const path = a.path ?? RESOLV_CONF;
  const systemdPath = a.systemdPath ?? SYSTEMD_RESOLV_CONF;
  let cached: Cached | undefined;
  let checked = 0;
  return () => {
    const now = Date.now();
    if (cached && now - checked < RECHECK_MS) return cached.servers;
    checked = now;
    const key = `${stamp(path)}/${stamp(systemdPath)}`;
    if (cached?.key === key) return cached.servers;
    const servers = chooseUpstreams({ main: readServers(path) ?? [], systemd: readServers(systemdPath), exclude: a.exclude });
    if (cached?.servers.join() !== servers.join()) a.log.info('dns upstreams', { path, upstreams: servers });
    cached = { key, servers };
    return servers;
  };
}
