// What this process knows happened to each key: Consul keeps no history and a blocking query returns only the
// latest state, so a watch learns from here of changes that Consul's answers merge (a put soon deleted) or that
// came before its first read (a delete before a watch started from an earlier revision).

/** One fact: at `revision` the key held `value`, or was deleted (null). */
export interface Fact {
  revision: number;
  value: string | null;
}

/** Enough for a burst of changes to one key between two answers of a watch. */
const FACTS_PER_KEY = 16;
/** Consul's TombstoneTTL: a key deleted longer ago is forgotten by Consul's own index bookkeeping too. */
const FORGET_DELETED_MS = 15 * 60_000;

interface KeyFacts {
  facts: Fact[];
  at: number;
}

export class Journal {
  private readonly keys = new Map<string, KeyFacts>();

  /** Commits and reads finish out of order; facts are kept sorted by revision, each revision once. */
  record(key: string, revision: number, value: string | null): void {
    const known = this.keys.get(key) ?? { facts: [], at: 0 };
    if (known.facts.some((f) => f.revision === revision)) return;
    known.facts.push({ revision, value });
    known.facts.sort((a, b) => a.revision - b.revision);
    known.facts.splice(0, Math.max(0, known.facts.length - FACTS_PER_KEY));
    known.at = Date.now();
    this.keys.set(key, known);
  }

  /** After a snapshot restore or a new cluster, the old revisions mean nothing any more. */
  clear(): void {
    this.keys.clear();
  }

  /** Keys below `prefix` with what is known of them. */
  under(prefix: string): Map<string, Fact[]> {
    const now = Date.now();
    const out = new Map<string, Fact[]>();
    for (const [key, known] of this.keys) {
      const last = known.facts[known.facts.length - 1];
      if (last.value === null && now - known.at > FORGET_DELETED_MS) this.keys.delete(key);
      else if (key.startsWith(prefix)) out.set(key, known.facts);
    }
    return out;
  }
}
