// The Clock seam on virtual time, one per incarnation, with the node's skew: its
// monotonic and wall clocks run at `rate` and start at their offsets, and its timers fire
// after delay / rate of true time. `defer` is an event due now: it runs after the current
// event and whatever is already due at this instant (as setImmediate runs after I/O).
import type { CancelTimer, Clock } from '../../node/src/seams/clock.js';
import { cancelEvent } from './event-queue.js';
import type { ClockSkew, Incarnation } from './incarnation.js';
import type { Scheduler } from './scheduler.js';
import { EventKind } from './trace.js';

/** The wall clock's origin in a run: 2030-01-01T00:00:00Z, so timestamps look real. */
export const WALL_EPOCH_MS = 1_893_456_000_000;

export class SimClock implements Clock {
  constructor(
    private readonly sched: Scheduler,
    private readonly inc: Incarnation,
    private readonly skew: ClockSkew,
  ) {}

  now(): number {
    return this.skew.offsetMs + (this.sched.nowUs / 1000) * this.skew.rate;
  }

  wallMs(): number {
    return Math.floor(WALL_EPOCH_MS + this.skew.wallOffsetMs + (this.sched.nowUs / 1000) * this.skew.rate);
  }

  setTimer(delayMs: number, fn: () => void): CancelTimer {
    const us = Math.max(0, delayMs) * (1000 / this.skew.rate);
    const ev = this.sched.after(us, fn, this.inc, EventKind.timer, Math.round(delayMs));
    return () => cancelEvent(ev);
  }

  defer(fn: () => void): void {
    this.sched.after(0, fn, this.inc, EventKind.defer);
  }
}
