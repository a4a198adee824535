// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of Kafka record
// batches v2 and of Cairn's storage files.
//
// WebAssembly has no carry-less multiply, so this is table slicing: 16 tables of 256
// entries (16 KiB, fits in L1), where table k maps a byte to the CRC contribution of that
// byte followed by k zero bytes. One step consumes 16 input bytes with 16 independent
// lookups XORed together, so the only serial dependency is one step's result feeding the
// next step's first four bytes.

const POLY: u32 = 0x82f63b78;
const TABLES: usize = memory.data(16 * 256 * 4, 64);

/** Table k, entry b: address of the u32. */
// @ts-expect-error: decorator
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
}

// @ts-expect-error: decorator
function t(k: usize, b: u32): u32 {
  return load<u32>(TABLES + (k << 10) + ((<usize>b) << 2));
}

/**
 * Continues a CRC32C over [ptr, ptr+len). `seed` is a previous result (0 to start), so
 * crc32c(b, crc32c(a)) === crc32c(a ++ b).
 */
export function crc32c(ptr: usize, len: usize, seed: u32): u32 {
  let crc = ~seed;
  const end = ptr + len;
  // Bytes one at a time until the pointer is 8-aligned (loads below are then aligned).
  while (ptr < end && (ptr & 7) !== 0) {
    crc = t(0, (crc ^ load<u8>(ptr)) & 0xff) ^ (crc >>> 8);
    ptr++;
  }
  // Invariant: ptr is 8-aligned; 16 bytes per step while at least 16 remain.
  while (end - ptr >= 16) {
    const a = load<u32>(ptr) ^ crc;
    const b = load<u32>(ptr, 4);
    const c = load<u32>(ptr, 8);
    const d = load<u32>(ptr, 12);
    // Byte i of the 16 (little-endian order) is followed by 15-i bytes: table 15-i.
    crc =
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
      t(0, d >>> 24);
    ptr += 16;
  }
  while (ptr < end) {
    crc = t(0, (crc ^ load<u8>(ptr)) & 0xff) ^ (crc >>> 8);
    ptr++;
  }
  return ~crc;
}
