// The core's view of the log: the driver's stored log (LogReader) plus the entries and
// truncation produced since the driver last took a Ready. Also the log's marks:
// committed, persisted (durable locally), applying (handed out) and applied.
//
//   storage (LogReader)            | pending write (this.unstable)
//   firstIndex ........ storageLast | unstableStart ....... lastIndex
//
// Invariant: unstableStart === storageLast() + 1, and unstable[k].index === unstableStart + k.
// When the pending write truncates, storage entries at truncateFrom and beyond are hidden
// (truncateFrom === unstableStart). When a snapshot is pending install, storage is hidden
// entirely and the log starts after the snapshot point.

import { RaftError } from './errors.js';
import type { Entry, LogReader } from './types.js';

export interface SnapshotPoint {
  index: number;
  term: number;
}

export class RaftLog {
  readonly storage: LogReader;
  private unstable: Entry[] = [];
  private unstableStart: number;
  private truncateFrom: number | undefined = undefined;
  private pendingSnapshot: SnapshotPoint | undefined = undefined;

  /** Highest index known committed. Invariant: applied ≤ applying ≤ committed ≤ lastIndex(). */
  committed: number;
  /** Highest index durable locally (persisted() from the driver). Invariant: persisted ≤ lastIndex(). */
  persisted: number;
  /** Highest index handed to the driver to apply. */
  applying: number;
  /** Highest index the driver confirmed applied. */
  applied: number;

  constructor(storage: LogReader, committed: number, applied: number) {
    this.storage = storage;
    this.unstableStart = storage.lastIndex() + 1;
    this.committed = committed;
    // Everything in storage at start has survived a restart: it is durable.
    this.persisted = storage.lastIndex();
    this.applying = applied;
    this.applied = applied;
  }

  firstIndex(): number {
    return this.pendingSnapshot ? this.pendingSnapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstableStart + this.unstable.length - 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex())!;
  }

  /** Term at `index` for firstIndex() - 1 ≤ index ≤ lastIndex(); undefined outside. */
  term(index: number): number | undefined {
    if (index >= this.unstableStart) return this.unstable[index - this.unstableStart]?.term;
    if (this.pendingSnapshot)
      return index === this.pendingSnapshot.index ? this.pendingSnapshot.term : undefined;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ours = this.lastTerm();
    return lastTerm > ours || (lastTerm === ours && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi), firstIndex() ≤ lo ≤ hi ≤ lastIndex() + 1, at least one if lo < hi, within maxBytes otherwise. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1) {
      throw new RaftError(
        'invariant',
        `entries [${lo}, ${hi}) outside the log [${this.firstIndex()}, ${this.lastIndex()}]`,
      );
    }
    let out: Entry[];
    if (lo < this.unstableStart) {
      out = this.storage.entries(lo, Math.min(hi, this.unstableStart), maxBytes);
      if (out.length === 0 || out[0]!.index !== lo) {
        throw new RaftError(
          'invariant',
          `storage returned ${out.length} entries from ${out[0]?.index} for [${lo}, ${hi})`,
        );
      }
      // Storage stopped early (byte limit) or the range ends in storage: done.
      if (hi <= this.unstableStart || out[out.length - 1]!.index < this.unstableStart - 1) return out;
      let bytes = 0;
      for (const e of out) bytes += e.data.byteLength;
      for (let i = this.unstableStart; i < hi; i++) {
        const e = this.unstable[i - this.unstableStart]!;
        bytes += e.data.byteLength;
        if (bytes > maxBytes) break;
        out.push(e);
      }
      return out;
    }
    // Wholly in the pending write: unstable[k] has index unstableStart + k.
    const start = lo - this.unstableStart;
    const end = hi - this.unstableStart;
    let stop = start;
    let bytes = 0;
    while (stop < end) {
      bytes += this.unstable[stop]!.data.byteLength;
      if (bytes > maxBytes && stop > start) break;
      stop++;
    }
    return this.unstable.slice(start, stop);
  }

  /** Leader path: entries continue the log exactly (entries[0].index === lastIndex() + 1). */
  append(entries: readonly Entry[]): void {
    for (const e of entries) this.unstable.push(e);
  }

  /**
   * Follower path: entries that may overlap the log's tail. Returns the index from which the
   * log was cut (entries there and beyond replaced), or undefined if it only grew.
   * Precondition: entries[0].index ≤ lastIndex() + 1 and entries[0].index > committed.
   */
  truncateAndAppend(entries: readonly Entry[]): number | undefined {
    const first = entries[0]!.index;
    let cut: number | undefined;
    if (first === this.lastIndex() + 1) {
      // plain append
    } else if (first >= this.unstableStart) {
      this.unstable.length = first - this.unstableStart;
      cut = first;
    } else {
      // The cut reaches into storage: the pending write now starts with a truncation there.
      this.unstable = [];
      this.unstableStart = first;
      this.truncateFrom = first;
      cut = first;
    }
    if (cut !== undefined && this.persisted >= cut) this.persisted = cut - 1;
    for (const e of entries) this.unstable.push(e);
    return cut;
  }

  /**
   * The first index among `entries` whose term differs from ours or that is beyond our log,
   * or 0 if we hold them all (Raft §5.3: "if an existing entry conflicts with a new one…").
   */
  findConflict(entries: readonly Entry[]): number {
    const last = this.lastIndex();
    for (const e of entries) {
      if (e.index > last || this.term(e.index) !== e.term) return e.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term` (firstIndex() - 1 at the least): the
   * last place where a log whose entry at `index` has `term` may still agree with ours.
   * Used on both sides of a rejected append to skip a whole term per round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    const floor = this.firstIndex() - 1;
    let i = Math.min(index, this.lastIndex());
    for (; i > floor; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) break;
    }
    return { index: i, term: this.term(i) ?? 0 };
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex())
      throw new RaftError('invariant', `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /** Highest index that may be handed out for applying: committed and durable here. */
  applyLimit(): number {
    return Math.min(this.committed, this.persisted);
  }

  hasPendingWrite(): boolean {
    return this.unstable.length > 0 || this.truncateFrom !== undefined;
  }

  /** The pending write, if any, handed to the driver; afterwards storage reflects it. */
  takeWrite(): { truncateFrom: number | undefined; entries: Entry[] } | undefined {
    if (this.unstable.length === 0 && this.truncateFrom === undefined) return undefined;
    const w = { truncateFrom: this.truncateFrom, entries: this.unstable };
    this.unstable = [];
    // Storage now ends where the pending write ended.
    this.unstableStart += w.entries.length;
    this.truncateFrom = undefined;
    return w;
  }

  /** The snapshot install the driver must do before the pending write, if any. */
  takeSnapshot(): SnapshotPoint | undefined {
    const s = this.pendingSnapshot;
    this.pendingSnapshot = undefined;
    return s;
  }

  /** The log becomes the snapshot point alone (Raft §7: discard the entire log). */
  restore(point: SnapshotPoint): void {
    this.pendingSnapshot = { index: point.index, term: point.term };
    this.unstable = [];
    this.unstableStart = point.index + 1;
    this.truncateFrom = undefined;
    this.committed = point.index;
    this.applying = point.index;
    // Nothing of the new log is durable until the driver confirms the install.
    this.persisted = 0;
  }

  /** The driver confirmed the install of the snapshot at `index`: durable and applied. */
  snapshotInstalled(index: number): void {
    if (this.persisted < index) this.persisted = index;
    if (this.applied < index) this.applied = index;
    if (this.applying < index) this.applying = index;
  }
}
