// One lifetime of a simulated node process: from start to crash (or stop). Every event a
// process causes — its timers, its deferred turns, its disk completions, frames and
// requests arriving at it — belongs to its incarnation: when the process dies they are
// dropped, so the dead process's code never runs again (its pending promises simply never
// settle), and while it is paused they wait.
import type { EventOwner, SimEvent } from './event-queue.js';

export class Incarnation implements EventOwner {
  alive = true;
  paused = false;
  held: SimEvent[] = [];

  constructor(
    readonly nodeId: number,
    /** 1 for the node's first process, then one more per restart. */
    readonly generation: number,
  ) {}

  kill(): void {
    this.alive = false;
    this.held = [];
  }
}

/** How a node's clock differs from true (virtual) time. */
export interface ClockSkew {
  /** Added to the node's monotonic clock, in ms. */
  offsetMs: number;
  /** The node's clock runs at `rate` × true time (1 = exact); timers stretch by 1/rate. */
  rate: number;
  /** Added to the node's wall clock, in ms. */
  wallOffsetMs: number;
}

export const NO_SKEW: Readonly<ClockSkew> = Object.freeze({ offsetMs: 0, rate: 1, wallOffsetMs: 0 });
