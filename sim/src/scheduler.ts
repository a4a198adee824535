// Virtual time. The scheduler owns the event queue and the clock every simulated thing
// reads: time jumps straight to the next event, so a run of minutes of cluster time takes
// as long as its work does. After each event the promise jobs it started run to the end,
// so an event and everything it sets off happen before the next event — in the same order
// every time.
//
// How the jobs drain: the events run inside a real macrotask (a setImmediate callback), and
// after each one the scheduler calls Node's own end-of-callback step, `process._tickCallback`
// (what Node runs between two immediates: every promise job and process.nextTick callback
// to the end, then the unhandled-rejection report). That is the same boundary a real
// process has between two macrotasks, at well under a microsecond instead of a trip through
// the event loop per event. Every SLICE_EVENTS events the scheduler gives the event loop
// one real turn (nothing of the run is pending then, so it changes nothing in the run).
import { type EventOwner, EventQueue, type SimEvent } from './event-queue.js';
import { realSetImmediate } from './sandbox.js';
import { EventKind, Trace } from './trace.js';

/** Events run in one real macrotask before the event loop gets a turn (I/O, signals, output). */
export const SLICE_EVENTS = 4096;

/**
 * Node's end-of-callback step: runs the microtask queue, the nextTick queue and the
 * unhandled-rejection report until all are empty. Undocumented (process._tickCallback,
 * DEP0134 is documentation-only) but present in every Node the project supports (≥ 20);
 * without it the scheduler falls back to one real setImmediate trip per event.
 */
const tickCallback = (process as unknown as { _tickCallback?: () => void })._tickCallback;
const runJobs: (() => void) | null = typeof tickCallback === 'function' ? tickCallback.bind(process) : null;

const drained = (resolve: () => void) => realSetImmediate(resolve);
/** Lets every promise job queued so far (and the jobs they queue) run: one real event-loop trip. */
export const drainJobs = (): Promise<void> => new Promise<void>(drained);

/** Something went wrong that the run must stop for (a violation, or the simulated code threw). */
export interface Stop {
  property: string;
  message: string;
}

export class Scheduler {
  /** Virtual time, in integer microseconds since the run started. */
  nowUs = 0;
  readonly queue = new EventQueue();
  readonly trace = new Trace();
  /** Set to stop the run at the end of the current event. */
  stop: Stop | null = null;
  eventsRun = 0;
  /** Set by a job queued before a drain: it ran (see runSlice). */
  private sentinelRan = false;
  private readonly sentinel = () => {
    this.sentinelRan = true;
  };

  /** Runs `run` after `delayUs` (≥ 0, rounded up to whole µs). */
  after(delayUs: number, run: () => void, owner: EventOwner | null, kind: number, detail = 0): SimEvent {
    const d = delayUs > 0 ? Math.ceil(delayUs) : 0;
    return this.queue.push(this.nowUs + d, run, owner, kind, detail);
  }

  /** Puts a resumed owner's held events back, due now, in the order they came due. */
  release(owner: EventOwner): void {
    const held = owner.held;
    owner.held = [];
    for (const ev of held) this.queue.requeue(ev, this.nowUs);
  }

  fail(property: string, message: string): void {
    if (this.stop === null) {
      this.stop = { property, message };
      this.trace.note(`VIOLATION ${property}: ${message}`);
    }
  }

  /**
   * Runs events until virtual time `endUs`, the queue empties, `until()` holds, or a stop
   * is raised. `afterEvent` runs after each event (and its promise jobs): the checks.
   */
  run(endUs: number, afterEvent: (ev: SimEvent) => void, until?: () => boolean): Promise<void> {
    if (runJobs === null) return this.runTrips(endUs, afterEvent, until);
    return new Promise<void>((resolve, reject) => {
      const slice = () => {
        try {
          if (this.runSlice(runJobs, endUs, afterEvent, until)) resolve();
          else realSetImmediate(slice);
        } catch (err) {
          reject(err);
        }
      };
      // From a macrotask: inside a promise job the microtask queue cannot be run again.
      realSetImmediate(slice);
    });
  }

  /** Up to SLICE_EVENTS events, each followed by its jobs; true when the run is over. */
  private runSlice(
    jobs: () => void,
    endUs: number,
    afterEvent: (ev: SimEvent) => void,
    until: (() => boolean) | undefined,
  ): boolean {
    // Whatever the caller left queued runs first, as it would before the first trip. The
    // pair assertion of the drain, once per slice (every event of it drains the same way):
    // a job queued before it has run after it.
    this.sentinelRan = false;
    queueMicrotask(this.sentinel);
    jobs();
    if (!this.sentinelRan) throw new Error('scheduler: promise jobs do not drain from here');
    for (let n = 0; n < SLICE_EVENTS; n++) {
      if (this.stop !== null || until?.()) return true;
      const ev = this.next(endUs);
      if (ev === undefined) return true;
      this.execute(ev);
      this.drain(jobs, ev);
      afterEvent(ev);
    }
    return false;
  }

  /** Runs the jobs `ev` set off to the end. */
  private drain(jobs: () => void, ev: SimEvent): void {
    for (;;) {
      try {
        jobs();
        return;
      } catch (err) {
        // A process.nextTick callback threw: in a process, an uncaught exception. The rest
        // of the queue is still there; the next call goes on with it.
        this.fail('uncaught-exception', `${this.who(ev)} threw: ${(err as Error)?.stack ?? err}`);
      }
    }
  }

  private who(ev: SimEvent): string {
    return ev.owner === null ? 'the simulator' : `node ${ev.owner.nodeId}`;
  }

  /** The same loop with one real setImmediate trip per event (a Node without _tickCallback). */
  private async runTrips(endUs: number, afterEvent: (ev: SimEvent) => void, until?: () => boolean) {
    while (this.stop === null) {
      if (until?.()) return;
      const ev = this.next(endUs);
      if (ev === undefined) return;
      this.execute(ev);
      await drainJobs();
      afterEvent(ev);
    }
  }

  /**
   * The next event to run, with the clock moved to it; undefined (and the clock at `endUs`)
   * when none is due by then. Skips cancelled events and dead owners'; holds paused owners'.
   */
  private next(endUs: number): SimEvent | undefined {
    const q = this.queue;
    for (;;) {
      const ev = q.peek();
      if (ev === undefined || ev.at > endUs) {
        this.nowUs = Math.max(this.nowUs, endUs);
        return undefined;
      }
      q.pop();
      if (ev.cancelled) continue;
      const o = ev.owner;
      if (o !== null) {
        if (!o.alive) continue;
        if (o.paused) {
          o.held.push(ev);
          continue;
        }
      }
      this.nowUs = ev.at;
      return ev;
    }
  }

  private execute(ev: SimEvent): void {
    const o = ev.owner;
    this.eventsRun++;
    this.trace.record(ev.at, ev.kind, o === null ? 0 : o.nodeId, ev.detail);
    try {
      ev.run();
    } catch (err) {
      // For a node's event this is an uncaught exception: the process would die.
      this.fail('uncaught-exception', `${this.who(ev)} threw: ${(err as Error)?.stack ?? err}`);
    }
  }

  /** Records a phase change in the trace (an event of its own, so it is hashed in order). */
  phase(name: string): void {
    this.trace.record(this.nowUs, EventKind.phase, 0, 0);
    this.trace.note(name);
  }
}
