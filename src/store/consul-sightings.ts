// What this process last saw of each key: Consul keeps no history, so a watch started from a revision learns of
// deletes made before its first read only from here.

export interface Sighting {
  /** ModifyIndex when seen present; when deleted, the index of the read or commit that showed it gone. */
  revision: number;
  deleted: boolean;
  at: number;
}

/** Consul's TombstoneTTL: a delete older than this is also gone from Consul's own index bookkeeping. */
const FORGET_DELETES_MS = 15 * 60_000;

export class Sightings {
  private readonly keys = new Map<string, Sighting>();

  /** Concurrent reads and commits finish out of order; an older observation never overrides a newer one. */
  private record(key: string, revision: number, deleted: boolean): void {
    const known = this.keys.get(key);
    if (known && known.revision > revision) return;
    if (deleted && !known) return;
    this.keys.set(key, { revision, deleted, at: Date.now() });
  }

  present(key: string, revision: number): void {
    this.record(key, revision, false);
  }

  gone(key: string, revision: number): void {
    this.record(key, revision, true);
  }

  get(key: string): Sighting | undefined {
    return this.keys.get(key);
  }

  /** A complete read of `prefix` at `index`: what it lacks is gone by `index`. */
  snapshot(prefix: string, present: Map<string, number>, index: number): void {
    for (const [key, revision] of present) this.present(key, revision);
    for (const [key, s] of this.keys) if (key.startsWith(prefix) && !s.deleted && !present.has(key)) this.gone(key, index);
  }

  under(prefix: string): [string, Sighting][] {
    const now = Date.now();
    for (const [key, s] of this.keys) if (s.deleted && now - s.at > FORGET_DELETES_MS) this.keys.delete(key);
    return [...this.keys].filter(([key]) => key.startsWith(prefix));
  }
}
