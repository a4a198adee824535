// Virtual time. The scheduler owns the event queue and the clock every simulated thing
// reads: time jumps straight to the next event, so a run of minutes of cluster time takes
// as long as its work does. After each event the promise jobs it started run to the end
// (one trip through the real setImmediate: nothing else is pending in a run), so an event
// and everything it sets off happen before the next event — in the same order every time.
import { type EventOwner, EventQueue, type SimEvent } from './event-queue.js';
import { realSetImmediate } from './sandbox.js';
import { EventKind, Trace } from './trace.js';

const drained = (resolve: () => void) => realSetImmediate(resolve);
/** Lets every promise job queued so far (and the jobs they queue) run. */
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
  async run(endUs: number, afterEvent: (ev: SimEvent) => void, until?: () => boolean): Promise<void> {
    const q = this.queue;
    const trace = this.trace;
    while (this.stop === null) {
      if (until?.()) return;
      const ev = q.peek();
      if (ev === undefined || ev.at > endUs) {
        this.nowUs = Math.max(this.nowUs, endUs);
        return;
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
      this.eventsRun++;
      trace.record(ev.at, ev.kind, o === null ? 0 : o.nodeId, ev.detail);
      try {
        ev.run();
      } catch (err) {
        // For a node's event this is an uncaught exception: the process would die.
        this.fail(
          'uncaught-exception',
          `${o === null ? 'the simulator' : `node ${o.nodeId}`} threw: ${(err as Error)?.stack ?? err}`,
        );
      }
      await drainJobs();
      afterEvent(ev);
    }
  }

  /** Records a phase change in the trace (an event of its own, so it is hashed in order). */
  phase(name: string): void {
    this.trace.record(this.nowUs, EventKind.phase, 0, 0);
    this.trace.note(name);
  }
}
