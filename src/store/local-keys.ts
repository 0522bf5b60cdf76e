// Keys of the embedded store as LMDB holds them: validated UTF-8 bytes, and the byte range of a prefix.
import { KnitError } from '../errors.js';

const MAX_KEY_BYTES = 1000;

/** A key as LMDB stores it: UTF-8 bytes, so keys sort by code point as in etcd and Consul. */
export function keyBytes(key: string, limit = true): Buffer {
  if (typeof key !== 'string' || key === '') throw new KnitError('internal', 'a store key must be a non-empty string');
  const bytes = Buffer.from(key, 'utf8');
  // A lone surrogate has no UTF-8 form; Buffer.from would quietly turn it into U+FFFD.
  if (bytes.toString('utf8') !== key) throw new KnitError('internal', `store key ${JSON.stringify(key)} is not valid Unicode`);
  if (limit && bytes.length > MAX_KEY_BYTES) {
    throw new KnitError('internal', `store key ${key.slice(0, 60)}... is ${bytes.length} bytes long; keys are limited to ${MAX_KEY_BYTES}`);
  }
  return bytes;
}

export function validateExpect(key: string, expect: number): void {
  if (!Number.isSafeInteger(expect) || expect < 0) {
    throw new KnitError('internal', `the expected revision for ${key} must be a whole number >= 0, got ${expect}`);
  }
}

/** LMDB range bounds covering every key that starts with `prefix` (byte-wise). */
export function prefixRange(prefix: string): { start?: Buffer; end?: Buffer } {
  if (prefix === '') return {};
  const start = Buffer.from(prefix, 'utf8');
  // The first key past the prefix: drop trailing 0xff bytes, then bump the last one.
  let length = start.length;
  while (length > 0 && start[length - 1] === 0xff) length--;
  if (length === 0) return { start };
  const end = Buffer.from(start.subarray(0, length));
  end[length - 1]++;
  return { start, end };
}
