// WireGuard devices: the kernel's (`ip link add ... type wireguard`) where it has the module, else wireguard-go
// (userspace, over TUN); keys, port and peers through `wg`. Every key, port, address and endpoint is validated
// before it reaches a command line; the private key only ever travels as a file path.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { badRequest, KnitError } from '../errors.js';
import { run } from './exec.js';
import { validateCidr, validateIfName, validateIp, validatePort } from './names.js';

export type WgBackend = 'kernel' | 'wireguard-go';

/** A Curve25519 key as `wg` prints it: 32 bytes in base64 (the last character carries 4 bits, so only some fit). */
const KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function validateWgKey(value: unknown, what = 'WireGuard public key'): string {
  if (typeof value !== 'string' || !KEY.test(value)) throw badRequest(`${what} ${JSON.stringify(value)?.slice(0, 80)} is not 32 bytes in base64`);
  return value;
}

/** "IPv4:port" or "[IPv6]:port", returned in canonical form. */
export function validateEndpoint(value: unknown): string {
  const m = typeof value === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(value) : null;
  if (!m) throw badRequest(`WireGuard endpoint ${JSON.stringify(value)?.slice(0, 80)} is not ADDRESS:PORT`);
  const ip = validateIp(m[1] ?? m[2], 'WireGuard endpoint address');
  const port = validatePort(Number(m[3]));
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export interface WgPeerSpec {
  publicKey: string;
  remove?: boolean;
  endpoint?: string;
  /** Replaces the peer's list; an address moves from whichever peer had it. */
  allowedIps?: string[];
}

export interface WgSettings {
  privateKeyFile?: string;
  listenPort?: number;
  peers?: WgPeerSpec[];
}

/** The arguments of one `wg set` (pure). */
export function renderWgSet(dev: string, s: WgSettings): string[] {
  const args = ['set', validateIfName(dev)];
  if (s.listenPort !== undefined) args.push('listen-port', String(validatePort(s.listenPort)));
  if (s.privateKeyFile !== undefined) {
    if (!/^\/[A-Za-z0-9_./-]{1,1000}$/.test(s.privateKeyFile) || s.privateKeyFile.includes('..')) throw badRequest(`key file path ${JSON.stringify(s.privateKeyFile)} is not a plain absolute path`);
    args.push('private-key', s.privateKeyFile);
  }
  for (const p of s.peers ?? []) {
    args.push('peer', validateWgKey(p.publicKey));
    if (p.remove) {
      args.push('remove');
      continue;
    }
    if (p.endpoint !== undefined) args.push('endpoint', validateEndpoint(p.endpoint));
    if (p.allowedIps !== undefined) args.push('allowed-ips', p.allowedIps.map((c) => validateCidr(c, 'allowed IP')).join(','));
  }
  return args;
}

export interface WgPeerState {
  publicKey: string;
  endpoint?: string;
  allowedIps: string[];
  /** Seconds since the epoch; 0 for never. */
  latestHandshake: number;
  rx: number;
  tx: number;
}

export interface WgState {
  publicKey: string;
  listenPort: number;
  peers: WgPeerState[];
}

/** Reads `wg show DEV dump`; the private key on its first line is dropped at once (pure). */
export function parseWgDump(text: string): WgState {
  const [head, ...rest] = text.split('\n').filter((l) => l.trim() !== '');
  const h = head?.split('\t') ?? [];
  if (h.length < 3) throw new KnitError('internal', 'wg show dump printed no interface line');
  const none = (v: string | undefined) => (v === undefined || v === '(none)' ? undefined : v);
  const peers = rest.map((line) => {
    const f = line.split('\t');
    return {
      publicKey: f[0],
      ...(none(f[2]) ? { endpoint: f[2] } : {}),
      allowedIps: none(f[3])?.split(',') ?? [],
      latestHandshake: Number(f[4]) || 0,
      rx: Number(f[5]) || 0,
      tx: Number(f[6]) || 0,
    };
  });
  return { publicKey: h[1], listenPort: Number(h[2]) || 0, peers };
}

/** wireguard-go's control sockets; it removes its own when it exits, after it has let go of its UDP port. */
const UAPI_DIR = '/var/run/wireguard';
const EXIT_WAIT_MS = 3_000;

const NO_KERNEL_WG = /Unknown device type|Operation not supported|not supported/i;
/** Debian's wireguard-go refuses to start on kernels that could have the module unless told otherwise. */
const USERSPACE_ENV = { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: '' };

export class WireGuard {
  private backend?: WgBackend;

  /** Which backend `create` uses: known after the first device was made. */
  get chosen(): WgBackend | undefined {
    return this.backend;
  }

  /**
   * Makes the device: the kernel's when `ip link add type wireguard` works, else a wireguard-go process, which
   * runs on by itself (it outlives knit, so a restart keeps the tunnel) and exits when its link is deleted.
   */
  async create(dev: string): Promise<WgBackend> {
    const name = validateIfName(dev);
    if (this.backend !== 'wireguard-go') {
      const r = await run({ tool: 'ip', args: ['link', 'add', name, 'type', 'wireguard'] });
      if (r.exitCode === 0) return (this.backend = 'kernel');
      if (!NO_KERNEL_WG.test(r.stderr)) throw new KnitError('internal', `creating WireGuard device ${name} failed: ${r.stderr.trim()}`);
    }
    const r = await run({ tool: 'wireguard-go', args: [name], env: USERSPACE_ENV });
    if (r.exitCode !== 0) throw new KnitError('internal', `the kernel has no WireGuard and wireguard-go could not start ${name}: ${(r.stderr || r.stdout).trim().slice(-500)}`);
    return (this.backend = 'wireguard-go');
  }

  /** Remembers the backend of a device found at start (made by an earlier knit). */
  adopt(kind: string): void {
    this.backend = kind === 'wireguard' ? 'kernel' : 'wireguard-go';
  }

  /**
   * Deletes the device. A wireguard-go process exits on that, but not at once: until its control socket is gone it
   * may still hold the UDP port, and a new device made meanwhile would fail to bind it. So wait (bounded) for that.
   */
  async remove(dev: string): Promise<void> {
    const name = validateIfName(dev);
    const r = await run({ tool: 'ip', args: ['link', 'del', name] });
    if (r.exitCode !== 0 && !/Cannot find device/.test(r.stderr)) throw new KnitError('internal', `deleting WireGuard device ${name} failed: ${r.stderr.trim()}`);
    const sock = `${UAPI_DIR}/${name}.sock`;
    for (const until = Date.now() + EXIT_WAIT_MS; existsSync(sock) && Date.now() < until;) await sleep(20);
  }

  async set(dev: string, s: WgSettings): Promise<void> {
    const r = await run({ tool: 'wg', args: renderWgSet(dev, s) });
    if (r.exitCode !== 0) throw new KnitError('internal', `wg set ${dev} failed: ${r.stderr.trim()}`);
  }

  /** The device's key, port and peers; undefined when there is no such device. */
  async show(dev: string): Promise<WgState | undefined> {
    const r = await run({ tool: 'wg', args: ['show', validateIfName(dev), 'dump'] });
    if (r.exitCode !== 0) {
      if (/No such device|Unable to access interface|does not exist/i.test(r.stderr)) return undefined;
      throw new KnitError('internal', `wg show ${dev} failed: ${r.stderr.trim()}`);
    }
    return parseWgDump(r.stdout);
  }
}
