// The Clock seam (DESIGN §1). Everything in node/ that needs time asks a Clock, so the
// simulator can run the same code on virtual time. Only `realClock` below touches the
// real timers; node logic never calls Date.now, setTimeout or setImmediate itself.

/** Cancels a timer; calling it after the timer fired, or twice, does nothing. */
export type CancelTimer = () => void;

export interface Clock {
  /** Monotonic milliseconds (arbitrary origin): durations, timeouts, latencies. */
  now(): number;
  /** Milliseconds since the Unix epoch: record timestamps, retention by age. */
  wallMs(): number;
  /** Runs `fn` once, after at least `delayMs`. */
  setTimer(delayMs: number, fn: () => void): CancelTimer;
  /**
   * Runs `fn` at the end of the current turn, after the work already queued in it (for
   * real: setImmediate, i.e. after pending I/O callbacks). The group driver gathers a
   * turn's proposals and messages and flushes them in one deferred step: one write, one
   * fsync, one frame per peer.
   */
  defer(fn: () => void): void;
}

/** The Clock over Node's real timers. */
export function realClock(): Clock {
  return {
    now: () => performance.now(),
    wallMs: () => Date.now(),
    setTimer(delayMs, fn) {
      const t = setTimeout(fn, Math.max(0, delayMs));
      return () => clearTimeout(t);
    },
    defer(fn) {
      setImmediate(fn);
    },
  };
}
