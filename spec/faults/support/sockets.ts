// The internet sockets a process holds, matched by inode between /proc/PID/fd and its namespace's /proc/PID/net tables.
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface InetSocket {
  table: string;
  local: string;
  /** The kernel's state code: 0A is a listening TCP socket, 07 an unconnected UDP one. */
  state: string;
  inode: string;
}

const TABLES = ['tcp', 'tcp6', 'udp', 'udp6', 'udplite', 'udplite6', 'raw', 'raw6'];

/** Every row of the TCP/UDP/raw tables of the process's network namespace. */
export async function namespaceSockets(pid: number): Promise<InetSocket[]> {
  const rows: InetSocket[] = [];
  for (const table of TABLES) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9) rows.push({ table, local: cols[1], state: cols[3], inode: cols[9] });
    }
  }
  return rows;
}

/** The rows of namespaceSockets that are open in the process itself (a kernel socket, e.g. VXLAN's, is nobody's fd). */
export async function socketsOf(pid: number): Promise<InetSocket[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]);
  }
  return (await namespaceSockets(pid)).filter((s) => inodes.has(s.inode));
}

/** Sockets that accept traffic from others: listening TCP, and any UDP or raw socket. */
export const listening = (s: InetSocket): boolean => (s.table.startsWith('tcp') ? s.state === '0A' : true);

/**
 * knit's resolver (UDP and listening TCP on 169.254.53.53:53, KNIT_DNS_ADDRESS's default) is the one listener a
 * setting asks for; /proc shows an IPv4 address as little-endian hex and the port as big-endian hex.
 */
export const RESOLVER_LOCAL = '3535FEA9:0035';
export const isResolver = (s: { table: string; local: string }): boolean => s.local === RESOLVER_LOCAL && (s.table === 'udp' || s.table === 'tcp');
