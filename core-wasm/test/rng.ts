// A small seeded PRNG (xorshift32 and helpers) so test data is the same on every run.
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed * 2654435761) >>> 0 || 1;
  }
  u32(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s;
  }
  /** 0 ≤ n < bound. */
  int(bound: number): number {
    return Math.floor((this.u32() / 4294967296) * bound);
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = this.u32();
      out[i] = v;
      out[i + 1] = v >>> 8;
      out[i + 2] = v >>> 16;
      out[i + 3] = v >>> 24;
    }
    for (; i < n; i++) out[i] = this.u32();
    return out;
  }
}
