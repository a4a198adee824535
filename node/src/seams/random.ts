// Seeded randomness. Raft's randomized election timeouts and the transport's reconnect
// jitter draw from a `Random` passed in; the simulator passes one derived from its seed, a
// real node one seeded from the operating system. Node logic never calls Math.random.
import { randomBytes } from 'node:crypto';

export interface Random {
  /** A uniformly distributed float in [0, 1). */
  next(): number;
  /** A uniformly distributed integer in [lo, hi). Precondition: lo < hi, both safe integers. */
  int(lo: number, hi: number): number;
}

/**
 * xoshiro128** (Blackman & Vigna): small state, good statistical quality, and the same
 * sequence on every platform for the same seed, which is what replaying a run needs.
 */
export function seededRandom(seed: number): Random {
  // splitmix32 spreads the seed over the four state words (an all-zero state would stick).
  let x = seed >>> 0;
  const splitmix = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const nextU32 = () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const next = () => nextU32() / 0x1_0000_0000;
  return {
    next,
    int(lo, hi) {
      if (!(lo < hi)) throw new RangeError(`Random.int: empty range [${lo}, ${hi})`);
      return lo + Math.floor(next() * (hi - lo));
    },
  };
}

function rotl(v: number, k: number): number {
  return ((v << k) | (v >>> (32 - k))) >>> 0;
}

/** A Random seeded from the operating system, for a real node. */
export function systemRandom(): Random {
  return seededRandom(randomBytes(4).readUInt32LE(0));
}
