// Sees the overlay entries knit programs on every simulated host at once: one `ip monitor all-nsid neigh` in the
// root namespace receives the kernel's own notifications of new and deleted neighbour and VXLAN forwarding
// entries in each namespace that has an ID here (given with `ip netns set NAME auto`), stamped by ip as it reads
// them. A remote endpoint counts as programmed on a host once both its FDB entry (its MAC towards the
// publisher's VTEP) and its neighbour entry (its IP to its MAC) are there; removed once both are gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, within } from '../spec/support/proc.js';

/**
 * `[2026-12-02T23:56:00.510097] [nsid 0]198.18.9.9 dev ifb0 lladdr 02:… NOARP PERMANENT` (an FDB entry: its VTEP
 * and MAC), `…]10.77.0.5 dev ifb0 lladdr 02:… PERMANENT` (a neighbour), `…]Deleted 198.18.9.9 dev ifb0 lladdr 02:…`,
 * `…]Deleted 10.77.0.5 dev ifb0 FAILED` (a deleted neighbour has no lladdr). The device name is resolved in the root
 * namespace and so meaningless; addresses and MACs identify the entry.
 */
const LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\d*\] \[nsid (\d+)\](Deleted )?(\S+) dev \S+(?: lladdr ([0-9a-f:]{17}))?/;

/** What must appear (or go) on each host: the endpoint's MAC towards `vtep` and `ip` to that MAC. */
export interface Expected {
  mac: string;
  ip: string;
  vtep: string;
  /** Namespace IDs (of the root namespace's `ip netns list`) of the hosts that must program it. */
  hosts: number[];
  deleted: boolean;
}

interface Pending extends Expected {
  /** History keys of its FDB and its neighbour entry: by MAC, except a deleted neighbour's (by IP). */
  keys: [string, string];
  want: Set<number>;
  done: Set<number>;
  finish: () => void;
}

const keyOf = (mac: string, deleted: boolean): string => `${deleted ? '-' : '+'}${mac}`;
const goneIp = (ip: string): string => `-ip ${ip}`;

export class KernelWatch {
  /** Per MAC and direction, per namespace ID: the first time each address was seen with it (kept until forget). */
  private readonly history = new Map<string, Map<number, Map<string, number>>>();
  /** By MAC and direction: a burst of thousands of lines must not scan every waiter. */
  private readonly waiting = new Map<string, Set<Pending>>();
  private buffer = '';
  /** Entry notifications parsed, and what ip said on stderr (a receive buffer overrun would show there). */
  lines = 0;
  errors = '';

  /** Where ip writes, and how far it has been read. */
  private offset = 0;
  private readonly poller: NodeJS.Timeout;

  private constructor(private readonly proc: ChildProcess, readonly exited: Promise<void>, private readonly out: { dir: string; file: FileHandle }) {
    this.poller = setInterval(() => void this.drain(), 50);
  }

  /** Gives each namespace an ID here (harmless: it goes with the namespace) and returns them by name. */
  static async nsids(names: string[]): Promise<Map<string, number>> {
    for (const n of names) await run(['ip', 'netns', 'set', n, 'auto'], { reject: false });
    const listed = (await run(['ip', 'netns', 'list'])).stdout;
    const wanted = new Set(names);
    const ids = new Map<string, number>();
    for (const m of listed.matchAll(/^(\S+) \(id: (\d+)\)$/gm)) if (wanted.has(m[1])) ids.set(m[1], Number(m[2]));
    const missing = names.filter((n) => !ids.has(n));
    if (missing.length) throw new Error(`no namespace ID for ${missing.slice(0, 5).join(', ')} (ip netns set … auto failed)`);
    return ids;
  }

  /**
   * A burst of tens of thousands of notifications (100 hosts programming a fill) must not be lost: ip gets a large
   * receive buffer, runs at nice -10 (it stands for an observer outside the hosts, as the store does), and writes
   * to a file, so that it never waits for this process, which shares the CPUs with every knit, to read a pipe.
   */
  static async start(): Promise<KernelWatch> {
    const dir = await mkdtemp(join(tmpdir(), 'knit-kernel-watch-'));
    const file = await open(join(dir, 'monitor.log'), 'w+');
    const proc = spawn('ip', ['-ts', '-rcvbuf', String(32 * 2 ** 20), 'monitor', 'all-nsid', 'neigh'], { stdio: ['ignore', file.fd, 'pipe'] });
    if (proc.pid) setPriority(proc.pid, -10);
    const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    const watch = new KernelWatch(proc, exited, { dir, file });
    proc.stderr?.setEncoding('utf8').on('data', (text: string) => (watch.errors = (watch.errors + text).slice(-2_000)));
    return watch;
  }

  private draining = false;
  /** One read buffer for every drain (it runs every 50 ms). */
  private readonly chunk = Buffer.alloc(1 << 20);

  /** Reads what ip wrote since the last time. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      const chunk = this.chunk;
      for (;;) {
        const { bytesRead } = await this.out.file.read(chunk, 0, chunk.length, this.offset);
        if (!bytesRead) break;
        this.offset += bytesRead;
        this.feed(chunk.subarray(0, bytesRead).toString('utf8'));
      }
    } finally {
      this.draining = false;
    }
  }

  running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<void> {
    if (this.running()) this.proc.kill('SIGTERM');
    await within(this.exited, 5_000);
    clearInterval(this.poller);
    await this.out.file.close();
    await rm(this.out.dir, { recursive: true, force: true });
  }

  /** Drops what was seen of an endpoint (both directions). */
  forget(mac: string, ip: string): void {
    for (const key of [keyOf(mac, false), keyOf(mac, true), goneIp(ip)]) this.history.delete(key);
  }

  /**
   * Resolves with, per host, the wall-clock ms (Date.now() scale) at which the endpoint was complete (or gone) there,
   * counting what was seen before the call too; rejects after `timeoutMs` naming how many hosts were still missing.
   */
  expect(e: Expected, timeoutMs: number): Promise<Map<number, number>> {
    return new Promise((resolve, reject) => {
      const keys: [string, string] = [keyOf(e.mac, e.deleted), e.deleted ? goneIp(e.ip) : keyOf(e.mac, false)];
      const p: Pending = { ...e, keys, want: new Set(e.hosts), done: new Set(), finish: () => undefined };
      const unregister = () => {
        for (const key of keys) {
          const set = this.waiting.get(key);
          set?.delete(p);
          if (set?.size === 0) this.waiting.delete(key);
        }
      };
      const timer = setTimeout(() => {
        unregister();
        const missing = e.hosts.filter((h) => !p.done.has(h));
        reject(Object.assign(new Error(`${e.deleted ? 'removal' : 'entries'} of ${e.mac} (${e.ip}) not seen on ${missing.length} of ${e.hosts.length} hosts within ${timeoutMs} ms`), { missing }));
      }, timeoutMs);
      p.finish = () => {
        clearTimeout(timer);
        unregister();
        const at = (key: string, h: number, addr: string) => this.history.get(key)!.get(h)!.get(addr)!;
        resolve(new Map(e.hosts.map((h) => [h, Math.max(at(keys[0], h, e.vtep), at(keys[1], h, e.ip))])));
      };
      for (const key of new Set(keys)) {
        if (!this.waiting.has(key)) this.waiting.set(key, new Set());
        this.waiting.get(key)!.add(p);
      }
      for (const h of e.hosts) this.check(p, h);
      if (e.hosts.length === 0) p.finish();
    });
  }

  private check(p: Pending, nsid: number): void {
    if (p.done.has(nsid)) return;
    const seen = (key: string, addr: string) => this.history.get(key)?.get(nsid)?.has(addr);
    if (seen(p.keys[0], p.vtep) && seen(p.keys[1], p.ip)) {
      p.done.add(nsid);
      if (p.done.size === p.want.size) p.finish();
    }
  }

  private feed(text: string): void {
    this.buffer += text;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop() ?? '';
    for (const line of lines) {
      const m = LINE.exec(line);
      if (!m) continue;
      this.lines++;
      const [, stamp, nsid, deleted, addr, mac] = m;
      // A neighbour going FAILED on its way out has no lladdr either; only its deletion counts.
      const key = mac ? keyOf(mac, !!deleted) : deleted ? goneIp(addr) : undefined;
      if (key) this.note(Date.parse(stamp), Number(nsid), key, addr);
    }
  }

  private note(at: number, nsid: number, key: string, addr: string): void {
    let byHost = this.history.get(key);
    if (!byHost) this.history.set(key, (byHost = new Map()));
    let addrs = byHost.get(nsid);
    if (!addrs) byHost.set(nsid, (addrs = new Map()));
    if (!addrs.has(addr)) addrs.set(addr, at);
    for (const p of [...(this.waiting.get(key) ?? [])]) if (p.want.has(nsid)) this.check(p, nsid);
  }
}
