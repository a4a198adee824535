// LZ4 frame format (the LZ4 Frame Format Description, v1.6.x):
//
//   frame   = magic 0x184D2204 (LE) · descriptor · block* · endMark (u32 0) · [content xxh32]
//   descr.  = FLG · BD · [content size u64] · [dictionary ID u32] · HC
//             FLG: version (bits 7-6 = 01), block independence (5), block checksum (4),
//                  content size (3), content checksum (2), reserved (1) = 0, dict ID (0)
//             BD:  block maximum size id in bits 6-4 (4: 64 KiB, 5: 256 KiB, 6: 1 MiB,
//                  7: 4 MiB); other bits reserved = 0
//             HC:  second byte of xxh32(FLG .. last descriptor field, seed 0)
//   block   = size u32 (LE; high bit set: stored uncompressed) · data · [xxh32(data)]
//   skippable frame = magic 0x184D2A5X · size u32 · size bytes (ignored)
//
// Decompression is resumable so the host can grow the output region without this code
// allocating: when the next block might not fit, it returns -NEED_OUTPUT with its state
// kept in globals, and the host calls again with resume = 1 and a larger capacity (the
// output region only grows at its end, so earlier output stays where linked blocks
// expect it). Every iteration consumes input, so hostile input cannot loop forever.

import { Code, clearError, fail, Reason } from './errors';
import { compressBlock, decompressBlock } from './lz4-block';
import { R_LZ4_IN_POS, R_LZ4_OUT_POS, R_LZ4_SIZE_HINT, RESULT } from './result';
import { xxhash32 } from './xxhash32';

const MAGIC: u32 = 0x184d2204;
const SKIPPABLE_MASK: u32 = 0xfffffff0;
const SKIPPABLE_MAGIC: u32 = 0x184d2a50;
const UNCOMPRESSED_BIT: u32 = 0x80000000;

// FLG bits
const FLG_INDEPENDENT: u32 = 0x20;
const FLG_BLOCK_CHECKSUM: u32 = 0x10;
const FLG_CONTENT_SIZE: u32 = 0x08;
const FLG_CONTENT_CHECKSUM: u32 = 0x04;
const FLG_DICT_ID: u32 = 0x01;

// Compression flags from the host
export const WANT_BLOCK_CHECKSUM: u32 = 1;
export const WANT_CONTENT_CHECKSUM: u32 = 2;
export const WANT_CONTENT_SIZE: u32 = 4;

export function blockMaxBytes(id: u32): usize {
  return (<usize>1) << (8 + 2 * id); // 4 → 64 KiB … 7 → 4 MiB
}

/** Bytes a frame of `len` input bytes may take, for the host to size the output. */
export function lz4FrameBound(len: usize, blockSizeId: u32): usize {
  const blockMax = blockMaxBytes(blockSizeId);
  const blocks: usize = len === 0 ? 0 : (len + blockMax - 1) / blockMax;
  // header ≤ 19 (magic 4, FLG, BD, size 8, HC); per block: size 4, checksum 4 and the
  // compressed bound; endMark 4, content checksum 4.
  return 19 + blocks * (8 + 16 + blockMax / 255) + len + 8;
}

/**
 * Compresses [src, src+len) into one frame with independent blocks of blockMaxBytes(id)
 * bytes (stored uncompressed when compression does not make them smaller). `dst` must
 * hold lz4FrameBound(len, id) bytes. Returns the frame's size.
 */
export function lz4FrameCompress(
  src: usize,
  len: usize,
  dst: usize,
  blockSizeId: u32,
  flags: u32,
  acceleration: u32,
): i32 {
  assert(blockSizeId >= 4 && blockSizeId <= 7 && acceleration >= 1);
  let op = dst;
  store<u32>(op, MAGIC);
  op += 4;
  const descriptor = op;
  let flg: u32 = 0x40 | FLG_INDEPENDENT;
  if (flags & WANT_BLOCK_CHECKSUM) flg |= FLG_BLOCK_CHECKSUM;
  if (flags & WANT_CONTENT_SIZE) flg |= FLG_CONTENT_SIZE;
  if (flags & WANT_CONTENT_CHECKSUM) flg |= FLG_CONTENT_CHECKSUM;
  store<u8>(op++, <u8>flg);
  store<u8>(op++, <u8>(blockSizeId << 4));
  if (flags & WANT_CONTENT_SIZE) {
    store<u64>(op, <u64>len);
    op += 8;
  }
  store<u8>(op, <u8>(xxhash32(descriptor, op - descriptor, 0) >>> 8));
  op++;
  const blockMax = blockMaxBytes(blockSizeId);
  let ip = src;
  const end = src + len;
  while (ip < end) {
    const n = min(blockMax, end - ip);
    const sizeField = op;
    const data = op + 4;
    // Invariant: the bound leaves room for lz4CompressBound(n) at data.
    let size = compressBlock(ip, n, data, acceleration);
    if (size >= n) {
      memory.copy(data, ip, n);
      size = n;
      store<u32>(sizeField, <u32>n | UNCOMPRESSED_BIT);
    } else {
      store<u32>(sizeField, <u32>size);
    }
    op = data + size;
    if (flags & WANT_BLOCK_CHECKSUM) {
      store<u32>(op, xxhash32(data, size, 0));
      op += 4;
    }
    ip += n;
  }
  store<u32>(op, 0); // end mark
  op += 4;
  if (flags & WANT_CONTENT_CHECKSUM) {
    store<u32>(op, xxhash32(src, len, 0));
    op += 4;
  }
  assert(op - dst <= lz4FrameBound(len, blockSizeId));
  return <i32>(op - dst);
}

// Decompression state, kept across a NEED_OUTPUT return.
let inPos: usize = 0; // input consumed (a block is consumed only once it is fully decoded)
let outPos: usize = 0; // output produced
let inFrame = false; // between a frame header and its end mark
let sawFrame = false;
let frameFlags: u32 = 0;
let frameBlockMax: usize = 0;
let frameOutStart: usize = 0; // output position where the current frame's content starts
let frameContentSize: u64 = 0;

function needOutput(remainingHint: f64): i32 {
  store<i32>(RESULT + R_LZ4_IN_POS, <i32>inPos);
  store<i32>(RESULT + R_LZ4_OUT_POS, <i32>outPos);
  store<f64>(RESULT + R_LZ4_SIZE_HINT, remainingHint);
  return -(<i32>Code.NEED_OUTPUT);
}

/** Parses a frame header at src+inPos; returns 0 or -code. */
function readFrameHeader(src: usize, len: usize): i32 {
  const p = src + inPos;
  const left = len - inPos;
  if (left < 7) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, p);
  const flg = <u32>load<u8>(p + 4);
  const bd = <u32>load<u8>(p + 5);
  if (flg >>> 6 !== 1) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_VERSION, p + 4);
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0)
    return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_RESERVED, p + 4);
  const id = bd >>> 4;
  if (id < 4) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_BLOCK_SIZE, p + 5);
  const headerLen: usize = 7 + (flg & FLG_CONTENT_SIZE ? 8 : 0) + (flg & FLG_DICT_ID ? 4 : 0);
  if (left < headerLen) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, p);
  const hc = <u32>load<u8>(p + headerLen - 1);
  if (((xxhash32(p + 4, headerLen - 5, 0) >>> 8) & 0xff) !== hc) {
    return fail(Code.LZ4_CHECKSUM, Reason.LZ4_FRAME_HEADER_CHECKSUM, p + headerLen - 1);
  }
  if (flg & FLG_DICT_ID) return fail(Code.UNSUPPORTED, Reason.LZ4_DICT_ID, p + 4);
  frameFlags = flg;
  frameBlockMax = blockMaxBytes(id);
  frameContentSize = flg & FLG_CONTENT_SIZE ? load<u64>(p + 6) : 0;
  frameOutStart = outPos;
  inPos += headerLen;
  inFrame = true;
  sawFrame = true;
  return 0;
}

/**
 * Decompresses every frame in [src, src+len) (LZ4 frames and skippable frames, back to
 * back) into dst, which holds `cap` bytes. resume = 0 starts; 1 continues after a
 * NEED_OUTPUT return with the same src and dst and a larger cap. Returns 0 when done
 * (the size in the result block's R_LZ4_OUT_POS), -NEED_OUTPUT, or -code.
 */
export function lz4FrameDecompress(src: usize, len: usize, dst: usize, cap: usize, resume: i32): i32 {
  clearError();
  if (!resume) {
    inPos = 0;
    outPos = 0;
    inFrame = false;
    sawFrame = false;
  }
  while (true) {
    if (!inFrame) {
      if (inPos === len) {
        if (!sawFrame) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, src);
        store<i32>(RESULT + R_LZ4_IN_POS, <i32>inPos);
        store<i32>(RESULT + R_LZ4_OUT_POS, <i32>outPos);
        return 0;
      }
      if (len - inPos < 4) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, src + inPos);
      const magic = load<u32>(src + inPos);
      if ((magic & SKIPPABLE_MASK) === SKIPPABLE_MAGIC) {
        if (len - inPos < 8) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, src + inPos);
        const skip = <usize>load<u32>(src + inPos + 4);
        if (skip > len - inPos - 8) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, src + inPos);
        inPos += 8 + skip;
        sawFrame = true;
        continue;
      }
      if (magic !== MAGIC) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_MAGIC, src + inPos);
      const r = readFrameHeader(src, len);
      if (r < 0) return r;
      continue;
    }
    // A block, or the end mark.
    const at = src + inPos;
    if (len - inPos < 4) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, at);
    const field = load<u32>(at);
    const produced = outPos - frameOutStart;
    if (field === 0) {
      let used: usize = 4;
      if (frameFlags & FLG_CONTENT_CHECKSUM) {
        if (len - inPos < 8) return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, at);
        if (xxhash32(dst + frameOutStart, produced, 0) !== load<u32>(at + 4)) {
          return fail(Code.LZ4_CHECKSUM, Reason.LZ4_CONTENT_CHECKSUM, at + 4);
        }
        used = 8;
      }
      if (frameFlags & FLG_CONTENT_SIZE && <u64>produced !== frameContentSize) {
        return fail(Code.LZ4_MALFORMED, Reason.LZ4_CONTENT_SIZE, at);
      }
      inPos += used;
      inFrame = false;
      continue;
    }
    const stored = (field & UNCOMPRESSED_BIT) !== 0;
    const size = <usize>(field & ~UNCOMPRESSED_BIT);
    if (size > frameBlockMax) return fail(Code.LZ4_MALFORMED, Reason.LZ4_BLOCK_TOO_BIG, at);
    const checksumBytes: usize = frameFlags & FLG_BLOCK_CHECKSUM ? 4 : 0;
    if (size + checksumBytes > len - inPos - 4)
      return fail(Code.LZ4_MALFORMED, Reason.LZ4_FRAME_TRUNCATED, at);
    const data = at + 4;
    if (checksumBytes && xxhash32(data, size, 0) !== load<u32>(data + size)) {
      return fail(Code.LZ4_CHECKSUM, Reason.LZ4_BLOCK_CHECKSUM, data + size);
    }
    if (frameFlags & FLG_CONTENT_SIZE && <u64>produced > frameContentSize) {
      return fail(Code.LZ4_MALFORMED, Reason.LZ4_CONTENT_SIZE, at);
    }
    // What is left of the frame, when the header says: lets the host size the output.
    const hint: f64 = frameFlags & FLG_CONTENT_SIZE ? <f64>(frameContentSize - <u64>produced) : -1;
    const room = cap - outPos;
    if (stored) {
      if (size > room) return needOutput(hint);
      memory.copy(dst + outPos, data, size);
      outPos += size;
    } else {
      const prefix = frameFlags & FLG_INDEPENDENT ? dst + outPos : dst + frameOutStart;
      const n = decompressBlock(data, size, dst + outPos, min(room, frameBlockMax), prefix);
      if (n === -(<i32>Code.LZ4_LIMIT)) {
        // Did not fit: the output region may be too small, or the block breaks the
        // frame's block maximum size.
        if (room < frameBlockMax) return needOutput(hint);
        return fail(Code.LZ4_MALFORMED, Reason.LZ4_BLOCK_TOO_BIG, at);
      }
      if (n < 0) return n;
      outPos += <usize>n;
    }
    inPos += 4 + size + checksumBytes;
  }
}
