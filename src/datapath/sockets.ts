// Which TCP/UDP ports sockets on this host hold, read from /proc/net (no process spawned).
import { readFile } from 'node:fs/promises';

const FILES = { tcp: ['/proc/net/tcp', '/proc/net/tcp6'], udp: ['/proc/net/udp', '/proc/net/udp6'], sctp: [] as string[] };
const TCP_LISTEN = '0A';

/** Local ports held by listening TCP sockets or bound UDP sockets, per protocol. */
export async function boundPorts(): Promise<{ tcp: Set<number>; udp: Set<number>; sctp: Set<number> }> {
  const result = { tcp: new Set<number>(), udp: new Set<number>(), sctp: new Set<number>() };
  for (const proto of ['tcp', 'udp'] as const) {
    for (const file of FILES[proto]) {
      const text = await readFile(file, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 4) continue;
        if (proto === 'tcp' && cols[3] !== TCP_LISTEN) continue;
        result[proto].add(parseInt(cols[1].split(':').pop()!, 16));
      }
    }
  }
  return result;
}
