// Turns one answer of a Consul blocking query into watch events: the facts this process knows of (its own commits,
// exact) in the answer's window, then whatever the answer's state shows beyond them.
import type { Fact } from './consul-journal.js';
import type { WatchEvent } from './types.js';

/** The last thing a watch reported for a key. */
export interface Reported {
  revision: number;
  deleted: boolean;
}

export interface Answer {
  /** X-Consul-Index of the answer: everything up to it is in `state`. */
  index: number;
  /** The entries below the prefix, by key. */
  state: Map<string, { value: string; revision: number }>;
}

/**
 * Events for the window (since, answer.index]. `reported` (updated here) holds what was last reported per key; for
 * a watch's `first` answer, what this process knew at `since` stands in, so a key it knew of and that is now gone is
 * reported deleted (perhaps again: a delete the caller already had is harmless, a missed one is not).
 */
export function merge(input: {
  answer: Answer;
  since: number;
  first: boolean;
  reported: Map<string, Reported>;
  facts: Map<string, Fact[]>;
}): WatchEvent[] {
  const { answer, since, first, reported, facts } = input;
  const events: WatchEvent[] = [];
  for (const key of new Set([...reported.keys(), ...answer.state.keys(), ...facts.keys()])) {
    const known = facts.get(key) ?? [];
    let last = reported.get(key) ?? (first ? asReported(known.filter((f) => f.revision <= since).pop()) : undefined);
    for (const f of known) {
      if (f.revision <= since || f.revision > answer.index || (last && f.revision <= last.revision)) continue;
      if (f.value === null && (!last || last.deleted)) continue;
      events.push(f.value === null ? { type: 'delete', key, revision: f.revision } : { type: 'put', key, value: f.value, revision: f.revision });
      last = asReported(f);
    }
    const now = answer.state.get(key);
    if (now) {
      const shown = last && !last.deleted && last.revision === now.revision;
      if (!shown && (last !== undefined || now.revision > since)) {
        events.push({ type: 'put', key, value: now.value, revision: now.revision });
        last = { revision: now.revision, deleted: false };
      }
    } else if (last && !last.deleted) {
      // Gone by this answer; when exactly, Consul does not say (its tombstones are not exposed).
      events.push({ type: 'delete', key, revision: answer.index });
      last = { revision: answer.index, deleted: true };
    }
    // A deleted key is remembered while the journal still knows it, so a late fact about it is not news.
    if (last && (!last.deleted || facts.has(key))) reported.set(key, last);
    else reported.delete(key);
  }
  // Within one revision a key is either deleted or written, never both; deletes go first, as a txn would list them.
  return events.sort((a, b) => a.revision - b.revision || (a.type === b.type ? (a.key < b.key ? -1 : 1) : a.type === 'delete' ? -1 : 1));
}

const asReported = (f: Fact | undefined): Reported | undefined => (f ? { revision: f.revision, deleted: f.value === null } : undefined);
