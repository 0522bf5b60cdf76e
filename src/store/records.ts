// JSON records in the store: one schema version for every record, checked when read.
import { KnitError } from '../errors.js';
import type { Entry } from './types.js';

export const SCHEMA_VERSION = 1;

export const encode = (record: object): string => JSON.stringify({ v: SCHEMA_VERSION, ...record });

export function decode<T>(entry: Entry): T & { v: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.value);
  } catch (err) {
    throw new KnitError('internal', `record ${entry.key} is not valid JSON`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { v?: unknown }).v !== SCHEMA_VERSION) {
    throw new KnitError('internal', `record ${entry.key} has an unknown schema version`);
  }
  return parsed as T & { v: number };
}
