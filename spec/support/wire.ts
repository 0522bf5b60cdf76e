// What crosses the wire between simulated hosts: captures on the underlay bridge (tcpdump, read back as text and
// raw bytes), and hand-made VXLAN datagrams sent into a host from the underlay namespace.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UNDERLAY_BRIDGE, UNDERLAY_NETNS } from './layout.js';
import { run, spawnLogged } from './proc.js';

export interface Capture {
  /** tcpdump's one-line decoding of every packet (-nn -v: VXLAN on 4789 and what it carries are shown). */
  lines: string[];
  /** The raw capture file's bytes, to look for a marker sent in clear. */
  raw: Buffer;
  /** Packets that match a tcpdump filter, counted by tcpdump itself. */
  count(filter: string): Promise<number>;
  /** The same packets, one line each (what a failed assertion shows). */
  list(filter: string): Promise<string[]>;
}

/**
 * Captures on the underlay bridge while `traffic` runs (tcpdump starts first and stops `settleMs` after it).
 * Bounded: tcpdump runs at most `maxMs`.
 */
export async function captureUnderlay(traffic: () => Promise<unknown>, opts: { maxMs?: number; settleMs?: number } = {}): Promise<Capture> {
  const dir = await mkdtemp(join(tmpdir(), 'knit-capture-'));
  const file = join(dir, 'underlay.pcap');
  const seconds = Math.ceil((opts.maxMs ?? 30_000) / 1000);
  // --immediate-mode: without it libpcap hands packets over a block at a time (up to 1 s late), and the last ones
  // captured before tcpdump is stopped would never reach the file. -U writes each one out as it comes.
  const dump = spawnLogged(['ip', 'netns', 'exec', UNDERLAY_NETNS, 'timeout', '-s', 'INT', String(seconds),
    'tcpdump', '-i', UNDERLAY_BRIDGE, '-nn', '--immediate-mode', '-U', '-s', '0', '-w', file], { logFile: join(dir, 'tcpdump.log') });
  await sleep(1_000);
  try {
    await traffic();
    await sleep(opts.settleMs ?? 1_000);
  } finally {
    await dump.stop(5_000);
  }
  const raw = await readFile(file);
  const lines = (await run(['tcpdump', '-r', file, '-nn', '-v'], { reject: false })).stdout.split('\n').filter(Boolean);
  const list = async (filter: string) => (await run(['tcpdump', '-r', file, '-nn', filter], { reject: false })).stdout.split('\n').filter(Boolean);
  const capture = { lines, raw, list, count: async (filter: string) => (await list(filter)).length };
  // The file is read; the directory goes once the counts are taken (the caller awaits them before the next test).
  setTimeout(() => void rm(dir, { recursive: true, force: true }), 60_000).unref();
  return capture;
}

/** An Ethernet broadcast from a MAC no host uses, with a marker payload: easy to find on the receiving bridge. */
export const INJECTED_MAC = '02:99:99:99:99:99';

/** Sends `count` VXLAN datagrams (VNI `vni`, UDP `port`) from the underlay namespace to `dst`. */
export async function injectVxlan(a: { dst: string; vni: number; port: number; count?: number }): Promise<void> {
  const script = [
    "const s = require('dgram').createSocket('udp4');",
    'const [vni, port, dst, n] = process.argv.slice(1).map((v, i) => (i === 2 ? v : Number(v)));',
    'const h = Buffer.alloc(8); h[0] = 0x08; h.writeUIntBE(vni, 4, 3);',
    `const eth = Buffer.concat([Buffer.from('ffffffffffff029999999999' + '88b5', 'hex'), Buffer.from('KNIT-INJECTED'.padEnd(46, '.'))]);`,
    'let left = n; const next = () => (left-- > 0 ? s.send(Buffer.concat([h, eth]), port, dst, () => setTimeout(next, 100)) : s.close()); next();',
  ].join('\n');
  await run(['ip', 'netns', 'exec', UNDERLAY_NETNS, process.execPath, '-e', script, String(a.vni), String(a.port), a.dst, String(a.count ?? 5)]);
}
