// An in-memory LogReader with the writes a driver makes: append, truncate, compact and
// snapshot install. Used by the tests, the benchmark and the simulator in place of
// node/storage's segment files.

import { check, isCount } from './errors.js';
import type { Entry, LogReader } from './types.js';

/** What RaftCore asks the driver to write to the log (Ready.logWrite). */
export interface LogWrite {
  /** When set, entries at this index and beyond are removed before `entries` are appended. */
  truncateFrom: number | undefined;
  /** Entries to append; entries[0].index === (truncateFrom ?? lastIndex() + 1), consecutive. */
  entries: Entry[];
}

export class MemoryLog implements LogReader {
  /** Index and term of the entry just before the first held one (the snapshot point). */
  private baseIndex: number;
  private baseTerm: number;
  /** Invariant: held[head + k] has index baseIndex + 1 + k. Slots before head are dropped lazily. */
  private held: Entry[] = [];
  private head = 0;

  constructor(snapshot?: { index: number; term: number }) {
    this.baseIndex = snapshot?.index ?? 0;
    this.baseTerm = snapshot?.term ?? 0;
    check(isCount(this.baseIndex) && isCount(this.baseTerm), 'invalidInput', 'bad snapshot point');
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.held.length - this.head;
  }

  term(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex()) return undefined;
    return this.held[this.head + index - this.baseIndex - 1]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    check(
      lo >= this.firstIndex() && lo <= hi && hi <= this.lastIndex() + 1,
      'invalidInput',
      `entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    const start = this.head + lo - this.baseIndex - 1;
    const end = start + (hi - lo);
    let stop = start;
    let bytes = 0;
    // The first entry always; each next one only while the total stays within maxBytes.
    while (stop < end) {
      bytes += this.held[stop]!.data.byteLength;
      if (bytes > maxBytes && stop > start) break;
      stop++;
    }
    return this.held.slice(start, stop);
  }

  /** Appends consecutive entries that continue the log. */
  append(entries: readonly Entry[]): void {
    const first = this.lastIndex() + 1;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      check(e.index === first + k, 'invalidInput', `append: expected index ${first + k}, got ${e.index}`);
    }
    for (let k = 0; k < entries.length; k++) this.held.push(entries[k]!);
  }

  /** Removes entries at `from` and beyond (firstIndex ≤ from ≤ lastIndex + 1). */
  truncate(from: number): void {
    check(
      from >= this.firstIndex() && from <= this.lastIndex() + 1,
      'invalidInput',
      `truncate ${from} outside [${this.firstIndex()}, ${this.lastIndex() + 1}]`,
    );
    this.held.length = this.head + from - this.baseIndex - 1;
  }

  /** Applies a RaftCore log write: truncation (if any), then the entries. */
  write(w: LogWrite): void {
    if (w.truncateFrom !== undefined) this.truncate(w.truncateFrom);
    this.append(w.entries);
  }

  /** Discards entries up to and including `index` (≤ lastIndex), which a snapshot now covers. */
  compact(index: number): void {
    if (index <= this.baseIndex) return;
    check(
      index <= this.lastIndex(),
      'invalidInput',
      `compact ${index} beyond last index ${this.lastIndex()}`,
    );
    this.baseTerm = this.term(index)!;
    this.head += index - this.baseIndex;
    this.baseIndex = index;
    // Drop the dead prefix once it is at least half the array: amortized O(1) per entry.
    if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held = this.held.slice(this.head);
      this.head = 0;
    }
  }

  /** Replaces the whole log by a snapshot point: empty log, firstIndex = index + 1. */
  installSnapshot(index: number, term: number): void {
    check(isCount(index) && isCount(term), 'invalidInput', 'bad snapshot point');
    this.baseIndex = index;
    this.baseTerm = term;
    this.held = [];
    this.head = 0;
  }

  /** A copy of the held entries (for tests and the simulator's durable images). */
  all(): Entry[] {
    return this.held.slice(this.head);
  }
}
