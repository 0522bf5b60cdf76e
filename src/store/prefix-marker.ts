// Where a watch reads its whole prefix again at every change (Consul), an empty prefix also wakes it at every write
// anywhere in the store (docs/store.md). A key equal to the prefix itself, written once and never deleted, keeps
// the prefix from being empty. It names no record: readers of the prefix skip it.
import type { Store } from './types.js';

const MARKER = '{"v":1}';

/** Writes the prefix's marker if the store needs one and it is missing; best effort (a watch works without it). */
export async function markPrefix(store: Store, prefix: string): Promise<void> {
  if (!store.watchRereadsPrefix) return;
  await store.commit([{ key: prefix, value: MARKER, expect: 0 }]).catch(() => undefined);
}
