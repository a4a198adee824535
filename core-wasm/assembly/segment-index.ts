// Sparse segment index entries (DESIGN §3): walking a buffer of whole batches, an entry
// (baseOffset - segmentBaseOffset, file position, batch ordinal) is written for a batch
// when at least `intervalBytes` of log were written since the previous entry. Searching
// the entries is a binary search the host does in place on its Uint32Array (copying the
// array into wasm memory would cost O(n) for an O(log n) search).

import { be32, be64, HEADER_BYTES, LOG_OVERHEAD } from './batch';
import { Code, clearError, fail, Reason } from './errors';
import { R_INDEX_BYTES_SINCE, RESULT } from './result';

const U32_MAX: i64 = 0xffffffff;

/**
 * Index entries for the batches in [ptr, ptr+len), written to three u32 arrays of
 * `capacity` slots each (the caller sizes them: a batch takes at least 61 bytes, so
 * len / 61 + 1 is enough). Only headers are read (lengths must be whole; CRCs are the
 * scan's business). `segmentBase` is the segment's base offset. Returns the number of
 * entries, or -code; the bytes written since the last entry go to the result block.
 */
export function buildIndex(
  ptr: usize,
  len: usize,
  segmentBase: f64,
  startPosition: f64,
  bytesSinceLastEntry: f64,
  intervalBytes: f64,
  relOffsets: usize,
  positions: usize,
  ordinals: usize,
  capacity: i32,
): i32 {
  clearError();
  const end = ptr + len;
  let p = ptr;
  let count: i32 = 0;
  let ordinal: i32 = 0;
  let since = bytesSinceLastEntry;
  const base = <i64>segmentBase;
  while (p < end) {
    if (end - p < HEADER_BYTES) return fail(Code.TRUNCATED, Reason.HEADER_TRUNCATED, p);
    const batchLength = be32(p + 8);
    if (batchLength < <i32>(HEADER_BYTES - LOG_OVERHEAD)) {
      return fail(Code.CORRUPT_BATCH, Reason.BATCH_LENGTH_SHORT, p);
    }
    const size = <u64>batchLength + <u64>LOG_OVERHEAD;
    if (size > <u64>(end - p)) return fail(Code.TRUNCATED, Reason.BATCH_TRUNCATED, p);
    if (since >= intervalBytes) {
      const rel = be64(p) - base;
      if (rel < 0 || rel > U32_MAX) return fail(Code.CORRUPT_BATCH, Reason.INDEX_OFFSET_RANGE, p);
      const position = startPosition + <f64>(p - ptr);
      if (position > <f64>U32_MAX) return fail(Code.TOO_LARGE, Reason.INDEX_POSITION_RANGE, p);
      assert(count < capacity);
      store<u32>(relOffsets + ((<usize>count) << 2), <u32>rel);
      store<u32>(positions + ((<usize>count) << 2), <u32>position);
      store<u32>(ordinals + ((<usize>count) << 2), <u32>ordinal);
      count++;
      since = 0;
    }
    since += <f64>size;
    ordinal++;
    p += <usize>size;
  }
  store<f64>(RESULT + R_INDEX_BYTES_SINCE, since);
  return count;
}
