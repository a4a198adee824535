// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of Kafka record
// batches v2 and of Cairn's storage files.
//
// WebAssembly has no carry-less multiply. Whole 4 KiB superblocks go to the SIMD kernel
// (crc32c-simd.ts: 16 streams in the lanes of a vector, nibble tables via swizzle, about
// 2× the table method here); the rest is table slicing: 16 tables of 256 entries (16 KiB,
// fits in L1), where table k maps a byte to the CRC contribution of that byte followed by
// k zero bytes. One step consumes 16 input bytes with 16 independent lookups XORed
// together, so the only serial dependency is one step's result feeding the next step's
// first four bytes.

import { crcSuperblocks, initCrc32cSimd, SUPERBLOCK_BYTES } from './crc32c-simd';

const POLY: u32 = 0x82f63b78;
const TABLES: usize = memory.data(16 * 256 * 4, 64);

/** Table k, entry b: address of the u32. */
function entry(k: usize, b: usize): usize {
  return TABLES + (k << 10) + (b << 2);
}

export function initCrc32c(): void {
  for (let b: u32 = 0; b < 256; b++) {
    let c = b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    store<u32>(entry(0, b), c);
  }
  // table k = table k-1 advanced over one more zero byte.
  for (let k: usize = 1; k < 16; k++) {
    for (let b: usize = 0; b < 256; b++) {
      const prev = load<u32>(entry(k - 1, b));
      store<u32>(entry(k, b), (prev >>> 8) ^ load<u32>(entry(0, prev & 0xff)));
    }
  }
  initCrc32cSimd();
}

/** The byte-at-a-time table (table 0). */
export function crcTable(b: u32): u32 {
  return load<u32>(TABLES + ((<usize>b) << 2));
}

function t(k: usize, b: u32): u32 {
  return load<u32>(TABLES + (k << 10) + ((<usize>b) << 2));
}

/** One slicing-by-16 step: the register after the 16 bytes at ptr. */
export function step16(ptr: usize, crc: u32): u32 {
  const a = load<u32>(ptr) ^ crc;
  const b = load<u32>(ptr, 4);
  const c = load<u32>(ptr, 8);
  const d = load<u32>(ptr, 12);
  // Byte i of the 16 (little-endian order) is followed by 15-i bytes: table 15-i.
  return (
    t(15, a & 0xff) ^
    t(14, (a >>> 8) & 0xff) ^
    t(13, (a >>> 16) & 0xff) ^
    t(12, a >>> 24) ^
    t(11, b & 0xff) ^
    t(10, (b >>> 8) & 0xff) ^
    t(9, (b >>> 16) & 0xff) ^
    t(8, b >>> 24) ^
    t(7, c & 0xff) ^
    t(6, (c >>> 8) & 0xff) ^
    t(5, (c >>> 16) & 0xff) ^
    t(4, c >>> 24) ^
    t(3, d & 0xff) ^
    t(2, (d >>> 8) & 0xff) ^
    t(1, (d >>> 16) & 0xff) ^
    t(0, d >>> 24)
  );
}

/**
 * Continues a CRC32C over [ptr, ptr+len). `seed` is a previous result (0 to start), so
 * crc32c(b, crc32c(a)) === crc32c(a ++ b).
 */
export function crc32c(ptr: usize, len: usize, seed: u32): u32 {
  let crc = ~seed;
  // Whole superblocks with SIMD (crc32c-simd.ts), the rest by table slicing.
  if (len >= SUPERBLOCK_BYTES) {
    const count = len / SUPERBLOCK_BYTES;
    crc = crcSuperblocks(ptr, count, crc);
    ptr += count * SUPERBLOCK_BYTES;
    len -= count * SUPERBLOCK_BYTES;
  }
  const end = ptr + len;
  // Bytes one at a time until the pointer is 8-aligned (loads below are then aligned).
  while (ptr < end && (ptr & 7) !== 0) {
    crc = t(0, (crc ^ load<u8>(ptr)) & 0xff) ^ (crc >>> 8);
    ptr++;
  }
  // Invariant: ptr is 8-aligned; 16 bytes per step while at least 16 remain.
  while (end - ptr >= 16) {
    crc = step16(ptr, crc);
    ptr += 16;
  }
  while (ptr < end) {
    crc = t(0, (crc ^ load<u8>(ptr)) & 0xff) ^ (crc >>> 8);
    ptr++;
  }
  return ~crc;
}
