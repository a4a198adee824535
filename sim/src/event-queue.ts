// The simulator's event queue: a binary min-heap of events ordered by (time, sequence).
// The sequence number is the order events were scheduled in, so two events due at the
// same virtual microsecond run in the order they were created — on every run and machine.

/** One scheduled piece of work. */
export interface SimEvent {
  /** Virtual time it is due, in integer microseconds. */
  at: number;
  /** Tie-breaker: scheduling order. Invariant: unique, increasing. */
  seq: number;
  run: () => void;
  /** Set by a cancelled timer: the event is skipped when it comes up (lazy deletion). */
  cancelled: boolean;
  /** Who it belongs to (a node's incarnation), or null for the world itself (clients, faults). */
  owner: EventOwner | null;
  /** A small code naming what it is, for the trace (see trace.ts). */
  kind: number;
  /** A number the trace hashes with the event (a node id, a frame hash…). */
  detail: number;
}

/**
 * What an event may belong to: a node's incarnation (a process lifetime). A dead owner's
 * events are dropped; a paused owner's events are held until it resumes.
 */
export interface EventOwner {
  readonly alive: boolean;
  readonly paused: boolean;
  /** Events that came due while paused, oldest first. */
  held: SimEvent[];
  readonly nodeId: number;
}

const NOTHING = () => {};

/**
 * Cancels a scheduled event: it is skipped when it comes up (lazy deletion), and what it
 * would have run is let go at once — a cancelled timer's closure can hold a request's whole
 * state, which would otherwise live (and be copied by every young-generation GC) until the
 * timer's time comes.
 */
export function cancelEvent(ev: SimEvent): void {
  ev.cancelled = true;
  ev.run = NOTHING;
}

const before = (a: SimEvent, b: SimEvent): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

export class EventQueue {
  private heap: SimEvent[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Schedules `run` at virtual time `at` (µs). Precondition: `at` is a safe integer. */
  push(at: number, run: () => void, owner: EventOwner | null, kind: number, detail: number): SimEvent {
    const ev: SimEvent = { at, seq: this.nextSeq++, run, cancelled: false, owner, kind, detail };
    this.insert(ev);
    return ev;
  }

  /** Puts an existing event back with a new time and sequence (a paused node's held events). */
  requeue(ev: SimEvent, at: number): void {
    ev.at = at;
    ev.seq = this.nextSeq++;
    this.insert(ev);
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private insert(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(ev, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = ev;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    const ev = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[c]!, ev)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = ev;
  }
}
