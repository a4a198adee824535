// A seeded pseudo-random source for the in-memory file system's crash and fault choices.
// The simulator passes its own PRNG (one seed drives every choice, DESIGN §7); tests use
// `createPrng(seed)`. Nothing in storage calls Math.random.
import { createPrng as createRaftPrng } from '../../../raft/src/index.js';

export interface Prng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number;
}

/** An integer in [0, n), n ≥ 1 (tiny modulo bias is irrelevant for fault choices). */
export function randomInt(prng: Prng, n: number): number {
  if (!(n >= 1)) throw new RangeError(`randomInt: n must be ≥ 1, got ${n}`);
  return prng.nextU32() % n;
}

/** True with probability `p`. */
export function chance(prng: Prng, p: number): boolean {
  return prng.nextU32() / 0x1_0000_0000 < p;
}

/** The Raft core's seeded generator (xoshiro128**), one implementation for the project. */
export function createPrng(seed: number): Prng {
  return createRaftPrng(seed);
}
