// A seeded pseudo-random source for the in-memory file system's crash and fault choices.
// The simulator passes its own PRNG (one seed drives every choice, DESIGN §7); tests use
// `createPrng(seed)`. Nothing in storage calls Math.random.

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

/** sfc32 seeded through splitmix32: small, fast, and good enough for fault injection. */
export function createPrng(seed: number): Prng {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return {
    nextU32(): number {
      const t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = ((c << 21) | (c >>> 11)) >>> 0;
      c = (c + t) >>> 0;
      return t;
    },
  };
}
