// The term of every entry in the Raft log, as runs: from index `starts[j]` on (until the
// next run), entries have term `terms[j]`. Terms never decrease along a Raft log, so
// there is one run per leader change, and term(i) is a binary search.
export class TermRuns {
  private starts: number[] = [];
  private terms: number[] = [];

  /** Records entry `index` with `term`. Precondition: index is the log's next index, term ≥ the last term. */
  append(index: number, term: number): void {
    const n = this.terms.length;
    if (n > 0 && term < this.terms[n - 1]!)
      throw new Error(`term runs: term ${term} after ${this.terms[n - 1]}`);
    if (n === 0 || this.terms[n - 1] !== term) {
      this.starts.push(index);
      this.terms.push(term);
    }
  }

  /** The term of entry `index`, or undefined before the first run. The caller bounds index by lastIndex. */
  termAt(index: number): number | undefined {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    // Invariant: starts ascend; find the last run starting at or before index.
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= index) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : this.terms[found];
  }

  lastTerm(): number | undefined {
    return this.terms[this.terms.length - 1];
  }

  /** Forgets entries from `index` on (a suffix truncation). */
  truncateFrom(index: number): void {
    while (this.starts.length > 0 && this.starts[this.starts.length - 1]! >= index) {
      this.starts.pop();
      this.terms.pop();
    }
  }

  /** Forgets entries before `index` (the log start moved), keeping the run that covers it. */
  dropBefore(index: number): void {
    let keepFrom = 0;
    while (keepFrom + 1 < this.starts.length && this.starts[keepFrom + 1]! <= index) keepFrom++;
    if (keepFrom > 0) {
      this.starts.splice(0, keepFrom);
      this.terms.splice(0, keepFrom);
    }
    if (this.starts.length > 0 && this.starts[0]! < index) this.starts[0] = index;
  }

  clear(): void {
    this.starts = [];
    this.terms = [];
  }
}
