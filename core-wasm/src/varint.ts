// Kafka's zigzag varints on the host side, for encoding batches (and reading header
// fields the wasm walk has already validated). Numbers, not BigInt: callers keep values
// within ±2^52, so the zigzag form (≤ 2^53) is exact.

/** Bytes of the zigzag varint/varlong encoding of n (|n| ≤ 2^52). */
export function zigzagSize(n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    size++;
  }
  return size;
}

/** Writes the zigzag encoding of n (|n| ≤ 2^52) at p; returns the position after it. */
export function writeZigzag(u8: Uint8Array, p: number, n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  while (z >= 128) {
    u8[p++] = (z % 128) | 128;
    z = Math.floor(z / 128);
  }
  u8[p++] = z;
  return p;
}

/** Reads a zigzag varint known to be well formed (validated by the wasm walk). */
export function readZigzag(u8: Uint8Array, p: number): { value: number; next: number } {
  let z = 0;
  let scale = 1;
  for (;;) {
    const b = u8[p++]!;
    z += (b & 0x7f) * scale;
    if (b < 128) break;
    scale *= 128;
  }
  return { value: z % 2 === 0 ? z / 2 : -(z + 1) / 2, next: p };
}
