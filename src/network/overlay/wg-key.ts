// This host's WireGuard key pair: X25519, made on first use; the private key stays in KNIT_STATE_DIR (0600) and is
// handed to `wg` only as that file's path. Only the public key ever leaves the host (in its store record).
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KnitError } from '../../errors.js';

/** PKCS#8 DER of an X25519 private key is this header and the 32 raw bytes. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface KeyFiles {
  /** The key in use. */
  current: string;
  /** A new key while a rotation runs; it replaces `current` by rename, so a crash leaves one or the other. */
  next: string;
}

export const keyFiles = (stateDir: string): KeyFiles => ({ current: join(stateDir, 'wireguard.key'), next: join(stateDir, 'wireguard.key.next') });

/** A new private key, base64 as `wg genkey` prints it. */
export function generatePrivateKey(): string {
  const der = generateKeyPairSync('x25519').privateKey.export({ format: 'der', type: 'pkcs8' });
  return der.subarray(der.length - 32).toString('base64');
}

export function publicKeyOf(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64');
  if (raw.length !== 32) throw new KnitError('internal', 'the WireGuard private key file does not hold 32 bytes in base64');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32).toString('base64');
}

/** Writes a key file readable by root only (mode set on creation, and again in case it existed). */
export async function writeKey(path: string, privateKey: string): Promise<void> {
  await writeFile(path, `${privateKey}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}

/** The key in use, made on first use; a `next` file left by a rotation a crash interrupted is dropped. */
export async function loadOrCreateKey(files: KeyFiles): Promise<string> {
  await rm(files.next, { force: true });
  const text = await readFile(files.current, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new KnitError('internal', `cannot read the WireGuard key ${files.current}: ${err.message}`);
  });
  if (text !== undefined) {
    await chmod(files.current, 0o600);
    return publicKeyOf(text.trim());
  }
  const privateKey = generatePrivateKey();
  await writeKey(files.next, privateKey);
  await rename(files.next, files.current);
  return publicKeyOf(privateKey);
}
