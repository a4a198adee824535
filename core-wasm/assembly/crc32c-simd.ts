// CRC32C of whole 4 KiB superblocks with SIMD: 16 independent streams, one per lane.
//
// A superblock is 16 chunks of CHUNK_BYTES; lane i runs the byte-at-a-time CRC over chunk
// i. The byte-at-a-time step is  reg' = (reg >> 8) ^ T[(reg ^ byte) & 0xff]  and T is
// linear, so T[x] = T[x & 0x0f] ^ T[x & 0xf0]: with each lane's register held as four
// byte vectors (b0 = low byte … b3), ">> 8" is a renaming and T becomes eight 16-entry
// tables, one i8x16.swizzle each (byte j of T[low nibble], byte j of T[high nibble << 4]).
// Loading 16 bytes from each chunk and transposing the 16×16 byte matrix (four rounds
// of interleaving rows i and i+8) gives, per step, one vector holding byte k of every
// chunk. At the end the 16 chunk CRCs are combined: crc(A ++ B) = Z(crc(A)) ^ crc(B, 0),
// where Z advances a register over CHUNK_BYTES zero bytes (a linear map, as 4 tables).

import { crcTable } from './crc32c';

export const CHUNK_BYTES: usize = 256;
export const SUPERBLOCK_BYTES: usize = CHUNK_BYTES * 16;

// Eight 16-byte tables: TL0..TL3 (byte j of T[v]) then TH0..TH3 (byte j of T[v << 4]).
const NIBBLE_TABLES: usize = memory.data(8 * 16, 16);
// Z as four byte tables of 256 u32: Z(x) = Z0[x & 255] ^ Z1[(x >> 8) & 255] ^ …
const ZEROS_TABLES: usize = memory.data(4 * 256 * 4, 64);

export function initCrc32cSimd(): void {
  for (let j: usize = 0; j < 4; j++) {
    for (let v: u32 = 0; v < 16; v++) {
      store<u8>(NIBBLE_TABLES + j * 16 + <usize>v, <u8>(crcTable(v) >>> (<u32>j * 8)));
      store<u8>(NIBBLE_TABLES + 64 + j * 16 + <usize>v, <u8>(crcTable(v << 4) >>> (<u32>j * 8)));
    }
  }
  // Z on each single-bit register, then every byte value by linearity.
  const basis = memory.data(32 * 4, 4);
  for (let bit: u32 = 0; bit < 32; bit++) {
    let reg: u32 = 1 << bit;
    for (let n: usize = 0; n < CHUNK_BYTES; n++) reg = (reg >>> 8) ^ crcTable(reg & 0xff);
    store<u32>(basis + ((<usize>bit) << 2), reg);
  }
  for (let j: u32 = 0; j < 4; j++) {
    for (let v: u32 = 0; v < 256; v++) {
      let z: u32 = 0;
      for (let b: u32 = 0; b < 8; b++) if (v & (1 << b)) z ^= load<u32>(basis + ((<usize>(j * 8 + b)) << 2));
      store<u32>(ZEROS_TABLES + ((<usize>(j * 256 + v)) << 2), z);
    }
  }
}

function zeros(x: u32): u32 {
  return (
    load<u32>(ZEROS_TABLES + ((<usize>x & 255) << 2)) ^
    load<u32>(ZEROS_TABLES + 1024 + ((<usize>(x >>> 8) & 255) << 2)) ^
    load<u32>(ZEROS_TABLES + 2048 + ((<usize>(x >>> 16) & 255) << 2)) ^
    load<u32>(ZEROS_TABLES + 3072 + ((<usize>(x >>> 24)) << 2))
  );
}

function lo8(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}

function hi8(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}

// The four state vectors, spilled so lanes can be read with a variable index.
const LANES_SPILL: usize = memory.data(64, 16);

/** Lane i's register from the spilled byte vectors. */
function laneRegister(i: usize): u32 {
  const p = LANES_SPILL + i;
  return (
    <u32>load<u8>(p) |
    ((<u32>load<u8>(p, 16)) << 8) |
    ((<u32>load<u8>(p, 32)) << 16) |
    ((<u32>load<u8>(p, 48)) << 24)
  );
}

/**
 * Advances the CRC register `reg` (not inverted) over `count` superblocks at ptr.
 */
export function crcSuperblocks(ptr: usize, count: usize, reg: u32): u32 {
  const tl0 = v128.load(NIBBLE_TABLES, 0);
  const tl1 = v128.load(NIBBLE_TABLES, 16);
  const tl2 = v128.load(NIBBLE_TABLES, 32);
  const tl3 = v128.load(NIBBLE_TABLES, 48);
  const th0 = v128.load(NIBBLE_TABLES, 64);
  const th1 = v128.load(NIBBLE_TABLES, 80);
  const th2 = v128.load(NIBBLE_TABLES, 96);
  const th3 = v128.load(NIBBLE_TABLES, 112);
  const low = i8x16.splat(0x0f);
  for (let s: usize = 0; s < count; s++) {
    const base = ptr + s * SUPERBLOCK_BYTES;
    // Lane 0 continues the running register; lanes 1..15 start from 0 (combined below).
    const zero = i8x16.splat(0);
    let b0 = i8x16.replace_lane(zero, 0, <i8>reg);
    let b1 = i8x16.replace_lane(zero, 0, <i8>(reg >>> 8));
    let b2 = i8x16.replace_lane(zero, 0, <i8>(reg >>> 16));
    let b3 = i8x16.replace_lane(zero, 0, <i8>(reg >>> 24));
    for (let k: usize = 0; k < CHUNK_BYTES; k += 16) {
      const p = base + k;

      const v0 = v128.load(p + 0 * CHUNK_BYTES);
      const v1 = v128.load(p + 1 * CHUNK_BYTES);
      const v2 = v128.load(p + 2 * CHUNK_BYTES);
      const v3 = v128.load(p + 3 * CHUNK_BYTES);
      const v4 = v128.load(p + 4 * CHUNK_BYTES);
      const v5 = v128.load(p + 5 * CHUNK_BYTES);
      const v6 = v128.load(p + 6 * CHUNK_BYTES);
      const v7 = v128.load(p + 7 * CHUNK_BYTES);
      const v8 = v128.load(p + 8 * CHUNK_BYTES);
      const v9 = v128.load(p + 9 * CHUNK_BYTES);
      const v10 = v128.load(p + 10 * CHUNK_BYTES);
      const v11 = v128.load(p + 11 * CHUNK_BYTES);
      const v12 = v128.load(p + 12 * CHUNK_BYTES);
      const v13 = v128.load(p + 13 * CHUNK_BYTES);
      const v14 = v128.load(p + 14 * CHUNK_BYTES);
      const v15 = v128.load(p + 15 * CHUNK_BYTES);
      // transpose, round 1 of 4
      const r0_0 = lo8(v0, v8);
      const r0_1 = hi8(v0, v8);
      const r0_2 = lo8(v1, v9);
      const r0_3 = hi8(v1, v9);
      const r0_4 = lo8(v2, v10);
      const r0_5 = hi8(v2, v10);
      const r0_6 = lo8(v3, v11);
      const r0_7 = hi8(v3, v11);
      const r0_8 = lo8(v4, v12);
      const r0_9 = hi8(v4, v12);
      const r0_10 = lo8(v5, v13);
      const r0_11 = hi8(v5, v13);
      const r0_12 = lo8(v6, v14);
      const r0_13 = hi8(v6, v14);
      const r0_14 = lo8(v7, v15);
      const r0_15 = hi8(v7, v15);
      // transpose, round 2 of 4
      const r1_0 = lo8(r0_0, r0_8);
      const r1_1 = hi8(r0_0, r0_8);
      const r1_2 = lo8(r0_1, r0_9);
      const r1_3 = hi8(r0_1, r0_9);
      const r1_4 = lo8(r0_2, r0_10);
      const r1_5 = hi8(r0_2, r0_10);
      const r1_6 = lo8(r0_3, r0_11);
      const r1_7 = hi8(r0_3, r0_11);
      const r1_8 = lo8(r0_4, r0_12);
      const r1_9 = hi8(r0_4, r0_12);
      const r1_10 = lo8(r0_5, r0_13);
      const r1_11 = hi8(r0_5, r0_13);
      const r1_12 = lo8(r0_6, r0_14);
      const r1_13 = hi8(r0_6, r0_14);
      const r1_14 = lo8(r0_7, r0_15);
      const r1_15 = hi8(r0_7, r0_15);
      // transpose, round 3 of 4
      const r2_0 = lo8(r1_0, r1_8);
      const r2_1 = hi8(r1_0, r1_8);
      const r2_2 = lo8(r1_1, r1_9);
      const r2_3 = hi8(r1_1, r1_9);
      const r2_4 = lo8(r1_2, r1_10);
      const r2_5 = hi8(r1_2, r1_10);
      const r2_6 = lo8(r1_3, r1_11);
      const r2_7 = hi8(r1_3, r1_11);
      const r2_8 = lo8(r1_4, r1_12);
      const r2_9 = hi8(r1_4, r1_12);
      const r2_10 = lo8(r1_5, r1_13);
      const r2_11 = hi8(r1_5, r1_13);
      const r2_12 = lo8(r1_6, r1_14);
      const r2_13 = hi8(r1_6, r1_14);
      const r2_14 = lo8(r1_7, r1_15);
      const r2_15 = hi8(r1_7, r1_15);
      // transpose, round 4 of 4
      const r3_0 = lo8(r2_0, r2_8);
      const r3_1 = hi8(r2_0, r2_8);
      const r3_2 = lo8(r2_1, r2_9);
      const r3_3 = hi8(r2_1, r2_9);
      const r3_4 = lo8(r2_2, r2_10);
      const r3_5 = hi8(r2_2, r2_10);
      const r3_6 = lo8(r2_3, r2_11);
      const r3_7 = hi8(r2_3, r2_11);
      const r3_8 = lo8(r2_4, r2_12);
      const r3_9 = hi8(r2_4, r2_12);
      const r3_10 = lo8(r2_5, r2_13);
      const r3_11 = hi8(r2_5, r2_13);
      const r3_12 = lo8(r2_6, r2_14);
      const r3_13 = hi8(r2_6, r2_14);
      const r3_14 = lo8(r2_7, r2_15);
      const r3_15 = hi8(r2_7, r2_15);
      // 16 steps: row k holds byte k of every chunk.
      {
        const x = v128.xor(b0, r3_0);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_1);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_2);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_3);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_4);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_5);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_6);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_7);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_8);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_9);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_10);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_11);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_12);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_13);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_14);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
      {
        const x = v128.xor(b0, r3_15);
        const lo = v128.and(x, low);
        const hi = i8x16.shr_u(x, 4);
        const n0 = v128.xor(b1, v128.xor(i8x16.swizzle(tl0, lo), i8x16.swizzle(th0, hi)));
        const n1 = v128.xor(b2, v128.xor(i8x16.swizzle(tl1, lo), i8x16.swizzle(th1, hi)));
        const n2 = v128.xor(b3, v128.xor(i8x16.swizzle(tl2, lo), i8x16.swizzle(th2, hi)));
        b3 = v128.xor(i8x16.swizzle(tl3, lo), i8x16.swizzle(th3, hi));
        b0 = n0;
        b1 = n1;
        b2 = n2;
      }
    }
    // Combine: reg = lane 0, then for each next chunk, advance over it and add its CRC.
    v128.store(LANES_SPILL, b0);
    v128.store(LANES_SPILL, b1, 16);
    v128.store(LANES_SPILL, b2, 32);
    v128.store(LANES_SPILL, b3, 48);
    reg = laneRegister(0);
    for (let i: usize = 1; i < 16; i++) reg = zeros(reg) ^ laneRegister(i);
  }
  return reg;
}
