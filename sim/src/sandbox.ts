// The determinism guard. While a simulation runs, simulated code must not reach the real
// clock, real randomness, real timers or the real disk: any of those would make a seed
// replay differently. The guard swaps each of them for a version that throws (and records
// the offence, in case the throw is swallowed by a catch), and puts the originals back
// when the run ends. The simulator itself keeps the one original it needs: setImmediate,
// to run its events inside a real macrotask, where the promise jobs of each event can be
// drained to the end (scheduler.ts; no real I/O happens during a run, so nothing else can
// run in between).
import * as fsModule from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

const require = createRequire(import.meta.url);

/** The real setImmediate, captured when this module loads (before any run can swap it). */
export const realSetImmediate: typeof setImmediate = globalThis.setImmediate;
/** The real monotonic clock, for the simulator's own wall-time statistics (outside runs). */
export const realNow: () => number = performance.now.bind(performance);

export class DeterminismError extends Error {
  override readonly name = 'DeterminismError';
}

interface Patch {
  target: object;
  key: string;
  /** The own property as it was (a value or an accessor), put back by exit(); undefined when inherited. */
  original: PropertyDescriptor | undefined;
}

let active: Sandbox | null = null;

/** One run's guard: `enter()` swaps the globals, `exit()` restores them. Not reentrant. */
export class Sandbox {
  /** Every forbidden call seen during the run (first few kept), even if the caller swallowed the throw. */
  readonly offences: string[] = [];
  private patches: Patch[] = [];

  enter(): void {
    if (active !== null) throw new DeterminismError('a simulation is already running in this process');
    active = this;
    const forbid = (name: string) => {
      const sandbox = this;
      return function forbidden(): never {
        const err = new DeterminismError(`${name} was called inside a simulation`);
        if (sandbox.offences.length < 10) sandbox.offences.push(err.stack ?? err.message);
        throw err;
      };
    };
    const patch = (target: object, key: string, name: string) => {
      const original = Object.getOwnPropertyDescriptor(target, key);
      if (original === undefined) {
        // Inherited (performance.now lives on Performance.prototype): shadow it.
        if (typeof (target as Record<string, unknown>)[key] !== 'function') return;
      } else {
        if (!original.configurable) return;
        if (!('get' in original) && typeof original.value !== 'function') return;
      }
      this.patches.push({ target, key, original });
      Object.defineProperty(target, key, {
        value: forbid(name),
        writable: true,
        configurable: true,
        enumerable: original?.enumerable ?? false,
      });
    };
    try {
      this.patchAll(patch, forbid);
    } catch (err) {
      this.exit();
      throw err;
    }
  }

  private patchAll(
    patch: (target: object, key: string, name: string) => void,
    forbid: (name: string) => () => never,
  ): void {
    const g = globalThis as unknown as Record<string, unknown>;
    patch(Date, 'now', 'Date.now');
    patch(Math, 'random', 'Math.random');
    patch(performance, 'now', 'performance.now');
    patch(process, 'hrtime', 'process.hrtime');
    for (const k of ['setTimeout', 'setInterval', 'setImmediate']) patch(g, k, k);
    // `new Date()` and `Date()` read the clock; a Date built from a value does not.
    const RealDate = Date;
    const original = Object.getOwnPropertyDescriptor(g, 'Date')!;
    const GuardedDate = function (this: unknown, ...args: unknown[]) {
      if (args.length === 0) forbid('new Date()')();
      if (!new.target) forbid('Date()')();
      return Reflect.construct(RealDate, args, new.target);
    } as unknown as DateConstructor;
    Object.setPrototypeOf(GuardedDate, RealDate);
    (GuardedDate as unknown as { prototype: unknown }).prototype = RealDate.prototype;
    this.patches.push({ target: g, key: 'Date', original });
    g['Date'] = GuardedDate;

    const timers = require('node:timers') as Record<string, unknown>;
    for (const k of ['setTimeout', 'setInterval', 'setImmediate']) patch(timers, k, `timers.${k}`);
    const timersPromises = require('node:timers/promises') as Record<string, unknown>;
    for (const k of ['setTimeout', 'setInterval', 'setImmediate'])
      patch(timersPromises, k, `timers/promises.${k}`);
    const crypto = require('node:crypto') as Record<string, unknown>;
    for (const k of [
      'randomBytes',
      'randomFillSync',
      'randomFill',
      'randomInt',
      'randomUUID',
      'getRandomValues',
    ])
      patch(crypto, k, `crypto.${k}`);
    const webCrypto = g['crypto'] as Record<string, unknown> | undefined;
    if (webCrypto !== undefined) {
      for (const k of ['getRandomValues', 'randomUUID']) patch(webCrypto, k, `crypto.${k}`);
    }
    // node:fs and node:fs/promises: every function. Named ESM imports of built-ins are
    // refreshed from the CommonJS objects by syncBuiltinESMExports.
    const fs = (fsModule as unknown as { default: Record<string, unknown> }).default;
    for (const k of Object.keys(fs)) {
      if (typeof fs[k] === 'function' && !/^[A-Z]/.test(k)) patch(fs, k, `fs.${k}`);
    }
    const fsp = fs['promises'] as Record<string, unknown>;
    for (const k of Object.keys(fsp)) {
      if (typeof fsp[k] === 'function') patch(fsp, k, `fs.promises.${k}`);
    }
    syncBuiltinESMExports();
  }

  exit(): void {
    for (let i = this.patches.length - 1; i >= 0; i--) {
      const p = this.patches[i]!;
      if (p.original === undefined) delete (p.target as Record<string, unknown>)[p.key];
      else Object.defineProperty(p.target, p.key, p.original);
    }
    this.patches = [];
    syncBuiltinESMExports();
    if (active === this) active = null;
  }
}
