// Seeded randomness. Raft's randomized election timeouts and the transport's reconnect
// jitter draw from a `Random` passed in; the simulator passes one derived from its seed, a
// real node one seeded from the operating system. Node logic never calls Math.random.
import { randomBytes } from 'node:crypto';
import { createPrng } from '../../../raft/src/index.js';

export interface Random {
  /** A uniformly distributed float in [0, 1). */
  next(): number;
  /** A uniformly distributed integer in [lo, hi). Precondition: lo < hi, both safe integers. */
  int(lo: number, hi: number): number;
}

/** The Raft core's generator (xoshiro128**: the same sequence on every platform for a seed). */
export function seededRandom(seed: number): Random {
  const prng = createPrng(seed);
  return {
    next: prng.next,
    int(lo, hi) {
      if (!(lo < hi)) throw new RangeError(`Random.int: empty range [${lo}, ${hi})`);
      return lo + Math.floor(prng.next() * (hi - lo));
    },
  };
}

/** A Random seeded from the operating system, for a real node. */
export function systemRandom(): Random {
  return seededRandom(randomBytes(4).readUInt32LE(0));
}
