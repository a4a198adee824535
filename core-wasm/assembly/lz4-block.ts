// LZ4 block format: greedy compression (LZ4's fast mode) and bounds-checked decompression.
//
// A block is a series of sequences: a token byte (high nibble: literal count, low nibble:
// match length - 4; 15 means "more length bytes follow", each adding up to 255), the
// literals, a 2-byte little-endian offset back into the output, and the match length's
// extra bytes. The last sequence has literals only. Encoders keep the last 5 bytes as
// literals and start no match in the last 12, which is what lets decoders copy in
// 16-byte strides; this decoder does not rely on it for hostile input (every copy is
// checked against the real bounds, and the wide copies run only with room to spare).

import { Code, fail, Reason } from './errors';

const MIN_MATCH: usize = 4;
const LAST_LITERALS: usize = 5; // the block's last 5 bytes are always literals
const MF_LIMIT: usize = 12; // no match starts in the last 12 bytes
const MAX_DISTANCE: usize = 65535;
const SKIP_TRIGGER: u32 = 6; // search step grows by 1 every 2^6 misses (times acceleration)

/** Hash table: 8192 u32 positions (relative to the block start), 32 KiB of static data. */
const HASH_LOG_SMALL: u32 = 13; // blocks ≤ 64 KiB: 4-byte hash, 8192 slots
const HASH_LOG_LARGE: u32 = 12; // larger blocks: 5-byte hash, 4096 slots (as LZ4 does)
const HASH_TABLE: usize = memory.data(<i32>(4 << HASH_LOG_SMALL), 64);
const SMALL_INPUT: usize = 65536 + MF_LIMIT - 1;

/** Largest compressed size of `len` input bytes (LZ4's bound: literals cost 1/255 extra). */
export function lz4CompressBound(len: usize): usize {
  return len + len / 255 + 16;
}

function hash4(seq: u32): usize {
  return <usize>((seq * 2654435761) >>> (32 - HASH_LOG_SMALL));
}

function hash5(seq: u64): usize {
  return <usize>(((seq << 24) * 889523592379) >>> (64 - HASH_LOG_LARGE));
}

/** Number of equal bytes at a and b, not looking at or past `limit` (on a's side). */
function countMatch(a: usize, b: usize, limit: usize): usize {
  const start = a;
  while (a + 8 <= limit) {
    const diff = load<u64>(a) ^ load<u64>(b);
    if (diff !== 0) return a - start + <usize>(ctz<u64>(diff) >>> 3);
    a += 8;
    b += 8;
  }
  while (a < limit && load<u8>(a) === load<u8>(b)) {
    a++;
    b++;
  }
  return a - start;
}

/** Writes a length's continuation bytes (the token holds the first 15). */
function writeLength(op: usize, rest: usize): usize {
  while (rest >= 255) {
    store<u8>(op++, 255);
    rest -= 255;
  }
  store<u8>(op++, <u8>rest);
  return op;
}

/** Copies literals; wide when there is room after both ends, exact otherwise. */
function copyLiterals(op: usize, ip: usize, n: usize, ipEnd: usize, opEnd: usize): void {
  if (n <= 16 && ip + 16 <= ipEnd && op + 16 <= opEnd) {
    v128.store(op, v128.load(ip));
  } else {
    memory.copy(op, ip, n);
  }
}

/** The last sequence: literals only. */
function lastLiterals(op: usize, anchor: usize, end: usize): usize {
  const n = end - anchor;
  if (n >= 15) {
    store<u8>(op++, 0xf0);
    op = writeLength(op, n - 15);
  } else {
    store<u8>(op++, <u8>(n << 4));
  }
  memory.copy(op, anchor, n);
  return op + n;
}

/**
 * Compresses [src, src+len) into dst, which must hold lz4CompressBound(len) bytes.
 * `acceleration` ≥ 1: larger skips ahead faster on incompressible data (less ratio,
 * more speed), as in LZ4's fast mode. Returns the compressed size.
 */
export function compressBlock(src: usize, len: usize, dst: usize, acceleration: u32): usize {
  let op = dst;
  const end = src + len;
  const opEnd = dst + lz4CompressBound(len);
  if (len < MF_LIMIT + 1) return lastLiterals(op, src, end) - dst;
  const small = len <= SMALL_INPUT;
  memory.fill(HASH_TABLE, 0, small ? 4 << HASH_LOG_SMALL : 4 << HASH_LOG_LARGE);
  const mfLimit = end - MF_LIMIT; // last position a match may start
  const matchLimit = end - LAST_LITERALS; // matches stop before the last literals
  let anchor = src; // first byte not yet emitted
  let ip = src + 1;
  // Invariant: every table slot holds a position < ip (0 for never set: src itself).
  while (true) {
    // Search: hash positions ahead, taking bigger steps the longer nothing matches.
    let ref: usize = 0;
    let step: u32 = 1;
    let misses: u32 = acceleration << SKIP_TRIGGER;
    let next = ip;
    while (true) {
      ip = next;
      next = ip + step;
      step = misses++ >>> SKIP_TRIGGER;
      // ip may start a match only if ip ≤ mfLimit; LZ4 tests the next position, as here.
      if (next > mfLimit + 1) return lastLiterals(op, anchor, end) - dst;
      const h = small ? hash4(load<u32>(ip)) : hash5(load<u64>(ip));
      const slot = HASH_TABLE + (h << 2);
      ref = src + <usize>load<u32>(slot);
      store<u32>(slot, <u32>(ip - src));
      if (ip - ref <= MAX_DISTANCE && load<u32>(ref) === load<u32>(ip)) break;
    }
    // Extend the match backwards over literals not yet emitted.
    while (ip > anchor && ref > src && load<u8>(ip - 1) === load<u8>(ref - 1)) {
      ip--;
      ref--;
    }
    // Literals [anchor, ip), then one or more matches in a row.
    const litLen = ip - anchor;
    let token = op++;
    if (litLen >= 15) {
      store<u8>(token, 0xf0);
      op = writeLength(op, litLen - 15);
    } else {
      store<u8>(token, <u8>(litLen << 4));
    }
    copyLiterals(op, anchor, litLen, end, opEnd);
    op += litLen;
    while (true) {
      // Match at ip with ref: offset, then length (at least MIN_MATCH, already verified).
      store<u16>(op, <u16>(ip - ref));
      op += 2;
      const extra = countMatch(ip + MIN_MATCH, ref + MIN_MATCH, matchLimit);
      ip += MIN_MATCH + extra;
      if (extra >= 15) {
        store<u8>(token, load<u8>(token) | 15);
        op = writeLength(op, extra - 15);
      } else {
        store<u8>(token, load<u8>(token) | <u8>extra);
      }
      anchor = ip;
      if (ip > mfLimit) return lastLiterals(op, anchor, end) - dst;
      // Remember ip-2, then try a match right at ip with no literals in between.
      const p2 = ip - 2;
      const h2 = small ? hash4(load<u32>(p2)) : hash5(load<u64>(p2));
      store<u32>(HASH_TABLE + (h2 << 2), <u32>(p2 - src));
      const h = small ? hash4(load<u32>(ip)) : hash5(load<u64>(ip));
      const slot = HASH_TABLE + (h << 2);
      ref = src + <usize>load<u32>(slot);
      store<u32>(slot, <u32>(ip - src));
      if (ip - ref > MAX_DISTANCE || load<u32>(ref) !== load<u32>(ip)) break;
      token = op++;
      store<u8>(token, 0);
    }
    ip++;
  }
}

// The decoder's fast path handles the common sequence (fewer than 15 literals, a match
// of fewer than 19 bytes at offset ≥ 16) with fixed 16- and 32-byte moves and no
// per-byte checks. It runs only while this much input and output is left, so those
// moves cannot leave either region.
const FAST_INPUT_MARGIN: usize = 32; // reads: ≤ 16 literal bytes + 2 offset bytes
const FAST_OUTPUT_MARGIN: usize = 64; // writes: 16 literal bytes, then 32 match bytes after ≤ 14 literals

/**
 * Decompresses the block [src, src+len) to dst, producing at most `cap` bytes. Matches
 * may reach back to `prefixStart` (≤ dst: earlier output of the same frame for linked
 * blocks; dst itself otherwise). Returns the decompressed size, or -code: LZ4_MALFORMED
 * for a bad block, LZ4_LIMIT (reason LZ4_OUTPUT_LIMIT) when the output would exceed cap.
 * Every read stays in [src, src+len) and in [prefixStart, dst+cap); every write in
 * [dst, dst+cap).
 */
export function decompressBlock(src: usize, len: usize, dst: usize, cap: usize, prefixStart: usize): i32 {
  let ip = src;
  const ipEnd = src + len;
  let op = dst;
  const opEnd = dst + cap;
  if (len === 0) return fail(Code.LZ4_MALFORMED, Reason.LZ4_EMPTY_INPUT, ip);
  // The fast path runs while ip < ipFast and op < opFast (never, for tiny regions).
  const ipFast = len > FAST_INPUT_MARGIN ? ipEnd - FAST_INPUT_MARGIN : src;
  const opFast = cap > FAST_OUTPUT_MARGIN ? opEnd - FAST_OUTPUT_MARGIN : dst;
  while (true) {
    if (ip >= ipEnd) return fail(Code.LZ4_MALFORMED, Reason.LZ4_BLOCK_END, ip);
    const token = <usize>load<u8>(ip++);
    let litLen = token >>> 4;
    let matchLen = token & 15;
    let offset: usize = 0;
    if (litLen < 15 && ip < ipFast && op < opFast) {
      // Fast path. ≤ 14 literals: move 16 bytes, keep litLen of them. The sequence cannot
      // be the block's last (more than 18 input bytes follow), so an offset follows.
      assert(ip + 18 <= ipEnd && op + 16 <= opEnd);
      v128.store(op, v128.load(ip));
      ip += litLen;
      op += litLen;
      offset = <usize>load<u16>(ip);
      ip += 2;
      if (offset >= 16 && offset <= op - prefixStart) {
        // Source ≥ 16 behind: 16-byte moves, in order (a move may read what the one
        // before wrote, which is already final). Two cover a short match (≤ 18 bytes).
        let from = op - offset;
        assert(op + 32 <= opEnd);
        v128.store(op, v128.load(from));
        v128.store(op, v128.load(from, 16), 16);
        if (matchLen < 15) {
          op += matchLen + MIN_MATCH;
          continue;
        }
        // A long match: its extra length bytes, then more strides while the output
        // has room for the overshoot; otherwise the general case below finishes it.
        while (true) {
          if (ip >= ipEnd) return fail(Code.LZ4_MALFORMED, Reason.LZ4_LENGTH_PAST_INPUT, ip);
          const b = <usize>load<u8>(ip++);
          matchLen += b;
          if (matchLen > opEnd - op) return fail(Code.LZ4_LIMIT, Reason.LZ4_OUTPUT_LIMIT, ip);
          if (b !== 255) break;
        }
        matchLen += MIN_MATCH;
        if (opEnd - op >= matchLen + 16) {
          const stop = op + matchLen;
          op += 32;
          from += 32;
          while (op < stop) {
            v128.store(op, v128.load(from));
            op += 16;
            from += 16;
          }
          assert(op <= opEnd);
          op = stop;
          continue;
        }
        // Near the end of the output: exact, non-overlapping copies (as in the general
        // case below; repeated here because the length is already read).
        const stop = op + matchLen;
        while (op < stop) {
          const n = min(stop - op, op - from);
          memory.copy(op, from, n);
          op += n;
        }
        continue;
      }
      if (matchLen < 15 && offset <= op - prefixStart) {
        const from = op - offset;
        assert(op + 32 <= opEnd);
        if (offset >= 8) {
          // Source 8..15 behind: three 8-byte moves, in order, for the same reason.
          store<u64>(op, load<u64>(from));
          store<u64>(op, load<u64>(from, 8), 8);
          store<u64>(op, load<u64>(from, 16), 16);
          op += matchLen + MIN_MATCH;
          continue;
        }
      }
    } else {
      // Literal length. Each extra byte is checked against the input left, so the sum
      // stays below len (no overflow, no runaway loop).
      if (litLen === 15) {
        while (true) {
          if (ip >= ipEnd) return fail(Code.LZ4_MALFORMED, Reason.LZ4_LENGTH_PAST_INPUT, ip);
          const b = <usize>load<u8>(ip++);
          litLen += b;
          if (litLen > ipEnd - ip) return fail(Code.LZ4_MALFORMED, Reason.LZ4_LITERALS_PAST_INPUT, ip);
          if (b !== 255) break;
        }
      }
      if (litLen > ipEnd - ip) return fail(Code.LZ4_MALFORMED, Reason.LZ4_LITERALS_PAST_INPUT, ip);
      if (litLen > opEnd - op) return fail(Code.LZ4_LIMIT, Reason.LZ4_OUTPUT_LIMIT, ip);
      // Pair assertion (debug build): the copy below stays inside both regions.
      assert(ip + litLen <= ipEnd && op + litLen <= opEnd);
      if (ipEnd - ip >= litLen + 16 && opEnd - op >= litLen + 16) {
        // Room past both ends: 16-byte strides, the last one overshooting harmlessly.
        let i: usize = 0;
        do {
          v128.store(op + i, v128.load(ip + i));
          i += 16;
        } while (i < litLen);
      } else {
        memory.copy(op, ip, litLen);
      }
      ip += litLen;
      op += litLen;
      if (ip === ipEnd) return <i32>(op - dst); // the last sequence: literals only
      if (ipEnd - ip < 2) return fail(Code.LZ4_MALFORMED, Reason.LZ4_LENGTH_PAST_INPUT, ip);
      offset = <usize>load<u16>(ip);
      ip += 2;
    }
    // Match, general case.
    if (offset === 0) return fail(Code.LZ4_MALFORMED, Reason.LZ4_OFFSET_ZERO, ip - 2);
    if (offset > op - prefixStart) return fail(Code.LZ4_MALFORMED, Reason.LZ4_OFFSET_BEFORE_START, ip - 2);
    if (matchLen === 15) {
      while (true) {
        if (ip >= ipEnd) return fail(Code.LZ4_MALFORMED, Reason.LZ4_LENGTH_PAST_INPUT, ip);
        const b = <usize>load<u8>(ip++);
        matchLen += b;
        // Bounded by the output left, so the sum cannot overflow.
        if (matchLen > opEnd - op) return fail(Code.LZ4_LIMIT, Reason.LZ4_OUTPUT_LIMIT, ip);
        if (b !== 255) break;
      }
    }
    matchLen += MIN_MATCH;
    if (matchLen > opEnd - op) return fail(Code.LZ4_LIMIT, Reason.LZ4_OUTPUT_LIMIT, ip);
    let from = op - offset;
    assert(from >= prefixStart && op + matchLen <= opEnd);
    const stop = op + matchLen;
    if (offset >= 16 && opEnd - op >= matchLen + 16) {
      // Source and destination are ≥ 16 apart, so 16-byte strides read only final bytes;
      // the last stride may write up to 15 bytes past the match, inside the output.
      do {
        v128.store(op, v128.load(from));
        op += 16;
        from += 16;
      } while (op < stop);
      assert(op <= opEnd); // the last stride's overshoot stayed inside the output
    } else if (offset >= 8 && opEnd - op >= matchLen + 8) {
      // The same with 8-byte strides for sources 8..15 behind.
      do {
        store<u64>(op, load<u64>(from));
        op += 8;
        from += 8;
      } while (op < stop);
      assert(op <= opEnd);
    } else if (offset === 1) {
      memory.fill(op, load<u8>(from), matchLen);
    } else {
      // Overlapping: the bytes [from, op) repeat with period `offset`. Copy the longest
      // non-overlapping run each time; the run doubles, so this takes O(log n) copies.
      while (op < stop) {
        const n = min(stop - op, op - from);
        memory.copy(op, from, n);
        op += n;
      }
    }
    op = stop;
  }
}
