// Kafka record batch v2 (DESIGN §3): validation of batches back to back and the walk
// over one batch's records.
//
// Header layout, bytes from the start of the batch, all big-endian:
//    0 baseOffset i64        8 batchLength i32      12 partitionLeaderEpoch i32
//   16 magic i8             17 crc u32              21 attributes i16
//   23 lastOffsetDelta i32  27 baseTimestamp i64    35 maxTimestamp i64
//   43 producerId i64       51 producerEpoch i16    53 baseSequence i32
//   57 recordCount i32      61 records...
// The batch occupies 12 + batchLength bytes; the CRC covers bytes 21 .. end.

import { crc32c } from './crc32c';
import { Code, clearError, fail, Reason } from './errors';
import { maxBatchBytes, maxRecordsPerBatch } from './limits';
import {
  R_SCAN_BATCH_COUNT,
  R_SCAN_FIRST_OFFSET,
  R_SCAN_LAST_OFFSET,
  R_SCAN_MAX_TIMESTAMP,
  R_SCAN_RECORD_TOTAL,
  R_SCAN_VALID_BYTES,
  RESULT,
} from './result';
import { readVarint, readVarlong, varintNext } from './varint';

export const HEADER_BYTES: usize = 61;
export const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
const MAX_SAFE: i64 = 9007199254740991; // 2^53 - 1: offsets and timestamps are JS numbers
const COMPRESSION_MASK: i32 = 7;
const HIGHEST_CODEC: i32 = 4; // zstd

// @ts-expect-error: decorator
export function be32(p: usize): i32 {
  return bswap<i32>(load<i32>(p));
}
// @ts-expect-error: decorator
export function be64(p: usize): i64 {
  return bswap<i64>(load<i64>(p));
}
// @ts-expect-error: decorator
function be16(p: usize): i32 {
  return <i32>bswap<i16>(load<i16>(p));
}

// @ts-expect-error: decorator
function safe(v: i64): bool {
  return v >= -MAX_SAFE && v <= MAX_SAFE;
}

/**
 * Validates the batch at `p` with `avail` bytes after it: length, magic, CRC, header
 * fields in range, and for uncompressed batches every record (walkRecords). Returns the
 * batch's size in bytes, or -code.
 */
export function validateBatch(p: usize, avail: usize, walk: bool): i32 {
  if (avail < LOG_OVERHEAD) return fail(Code.TRUNCATED, Reason.HEADER_TRUNCATED, p);
  const batchLength = be32(p + 8);
  if (batchLength < <i32>(HEADER_BYTES - LOG_OVERHEAD)) {
    return fail(Code.CORRUPT_BATCH, Reason.BATCH_LENGTH_SHORT, p);
  }
  // Compare in i64: 12 + batchLength may not fit i32.
  const size = <i64>batchLength + <i64>LOG_OVERHEAD;
  if (size > <i64>maxBatchBytes) return fail(Code.TOO_LARGE, Reason.BATCH_LENGTH_LIMIT, p);
  if (<u64>size > <u64>avail) return fail(Code.TRUNCATED, Reason.BATCH_TRUNCATED, p);
  const end = p + <usize>size;
  if (load<u8>(p + 16) !== 2) return fail(Code.BAD_MAGIC, Reason.BATCH_MAGIC, p);
  const stored = bswap<u32>(load<u32>(p + 17));
  if (crc32c(p + CRC_START, end - (p + CRC_START), 0) !== stored) {
    return fail(Code.BAD_CRC, Reason.BATCH_CRC, p);
  }
  const attributes = be16(p + 21);
  const codec = attributes & COMPRESSION_MASK;
  if (codec > HIGHEST_CODEC) return fail(Code.CORRUPT_BATCH, Reason.BATCH_CODEC, p);
  const baseOffset = be64(p);
  const lastOffsetDelta = be32(p + 23);
  if (baseOffset < 0 || baseOffset > MAX_SAFE) return fail(Code.CORRUPT_BATCH, Reason.BATCH_OFFSET_RANGE, p);
  if (lastOffsetDelta < 0) return fail(Code.CORRUPT_BATCH, Reason.BATCH_LAST_OFFSET_DELTA, p);
  if (baseOffset + <i64>lastOffsetDelta > MAX_SAFE) {
    return fail(Code.CORRUPT_BATCH, Reason.BATCH_OFFSET_RANGE, p);
  }
  if (!safe(be64(p + 27)) || !safe(be64(p + 35))) {
    return fail(Code.CORRUPT_BATCH, Reason.BATCH_TIMESTAMP_RANGE, p);
  }
  const recordCount = be32(p + 57);
  if (recordCount < 0 || recordCount > maxRecordsPerBatch) {
    return fail(Code.CORRUPT_BATCH, Reason.BATCH_RECORD_COUNT, p);
  }
  // Every record takes at least 7 bytes (length + 6 one-byte fields) and has its own offset.
  if (recordCount > 0 && lastOffsetDelta < recordCount - 1) {
    return fail(Code.CORRUPT_BATCH, Reason.BATCH_LAST_OFFSET_DELTA, p);
  }
  if (codec === 0) {
    if (<u64>recordCount * 7 > <u64>(end - (p + HEADER_BYTES))) {
      return fail(Code.CORRUPT_BATCH, Reason.BATCH_RECORD_COUNT, p);
    }
    if (walk) {
      const r = walkRecords(p, p + HEADER_BYTES, end, 0, 0);
      if (r < 0) return r;
    }
  }
  return <i32>size;
}

/**
 * Scans [ptr, ptr+len) as batches back to back, validating each (validateBatch), and
 * leaves the totals in the result block. Returns 0 if every byte was valid, else -code of
 * the first invalid batch (its position in the error fields); the totals then cover the
 * valid prefix.
 */
export function scanBatches(ptr: usize, len: usize): i32 {
  clearError();
  let p = ptr;
  const end = ptr + len;
  let batches: i32 = 0;
  let records: f64 = 0;
  let firstOffset: f64 = -1;
  let lastOffset: f64 = -1;
  let maxTimestamp: f64 = -1;
  let status: i32 = 0;
  while (p < end) {
    const size = validateBatch(p, end - p, true);
    if (size < 0) {
      status = size;
      break;
    }
    const baseOffset = be64(p);
    if (batches === 0) firstOffset = <f64>baseOffset;
    lastOffset = <f64>(baseOffset + <i64>be32(p + 23));
    const ts = <f64>be64(p + 35);
    if (ts > maxTimestamp) maxTimestamp = ts;
    records += <f64>be32(p + 57);
    batches++;
    p += <usize>size;
  }
  // Invariant: [ptr, p) is whole valid batches.
  store<i32>(RESULT + R_SCAN_VALID_BYTES, <i32>(p - ptr));
  store<i32>(RESULT + R_SCAN_BATCH_COUNT, batches);
  store<f64>(RESULT + R_SCAN_RECORD_TOTAL, records);
  store<f64>(RESULT + R_SCAN_FIRST_OFFSET, firstOffset);
  store<f64>(RESULT + R_SCAN_LAST_OFFSET, lastOffset);
  store<f64>(RESULT + R_SCAN_MAX_TIMESTAMP, maxTimestamp);
  return status;
}

/** Validates exactly one batch filling [ptr, ptr+len). Returns its size or -code. */
export function validateOne(ptr: usize, len: usize): i32 {
  clearError();
  const size = validateBatch(ptr, len, true);
  if (size >= 0 && <usize>size !== len) return fail(Code.CORRUPT_BATCH, Reason.RECORDS_TRAILING, ptr + size);
  return size;
}

// One record in the walk table (RECORD_ENTRY_BYTES each). Positions are bytes from the
// `regionBase` the caller passed (-1 for a null key or value).
export const RECORD_ENTRY_BYTES: usize = 48;
const E_TIMESTAMP: usize = 0; // f64: baseTimestamp + timestampDelta
const E_OFFSET_DELTA: usize = 8; // i32
const E_KEY_POS: usize = 12; // i32
const E_KEY_LEN: usize = 16; // i32
const E_VALUE_POS: usize = 20; // i32
const E_VALUE_LEN: usize = 24; // i32
const E_HEADERS_POS: usize = 28; // i32: first header, after the count
const E_HEADER_COUNT: usize = 32; // i32
const E_RECORD_POS: usize = 36; // i32: the record's length varint
const E_RECORD_END: usize = 40; // i32

/**
 * Walks the records of the batch whose header is at `batch`, stored in [p, end) (the
 * batch itself when uncompressed, a decompressed copy otherwise). Checks every length and
 * varint, offset deltas strictly increasing within [0, lastOffsetDelta], timestamps in
 * range, exactly recordCount records ending exactly at `end`. When `table` is not 0,
 * writes one entry per record there (the caller sized it: recordCount entries).
 * Returns recordCount or -code.
 */
export function walkRecords(batch: usize, p: usize, end: usize, table: usize, regionBase: usize): i32 {
  const count = be32(batch + 57);
  const lastOffsetDelta = be32(batch + 23);
  const baseTimestamp = be64(batch + 27);
  let previousDelta: i32 = -1;
  for (let i: i32 = 0; i < count; i++) {
    const recordPos = p;
    const length = readVarint(p, end);
    if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
    p = varintNext;
    // The body holds at least attributes and five one-byte varints.
    if (length < 6 || <usize>length > end - p)
      return fail(Code.CORRUPT_BATCH, Reason.RECORD_LENGTH, recordPos);
    const recordEnd = p + <usize>length;
    p++; // attributes: unused by Kafka v2 records
    const tsDelta = readVarlong(p, recordEnd);
    if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
    p = varintNext;
    // Both within ±2^53, so the sum cannot overflow i64.
    if (!safe(tsDelta)) return fail(Code.CORRUPT_BATCH, Reason.RECORD_TIMESTAMP, recordPos);
    const timestamp = baseTimestamp + tsDelta;
    if (!safe(timestamp)) return fail(Code.CORRUPT_BATCH, Reason.RECORD_TIMESTAMP, recordPos);
    const offsetDelta = readVarint(p, recordEnd);
    if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
    p = varintNext;
    if (offsetDelta <= previousDelta || offsetDelta > lastOffsetDelta) {
      return fail(Code.CORRUPT_BATCH, Reason.RECORD_OFFSET_DELTA, recordPos);
    }
    previousDelta = offsetDelta;
    const keyLen = readVarint(p, recordEnd);
    if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
    p = varintNext;
    if (keyLen < -1 || (keyLen > 0 && <usize>keyLen > recordEnd - p)) {
      return fail(Code.CORRUPT_BATCH, Reason.RECORD_KEY, recordPos);
    }
    const keyPos = p;
    if (keyLen > 0) p += <usize>keyLen;
    const valueLen = readVarint(p, recordEnd);
    if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
    p = varintNext;
    if (valueLen < -1 || (valueLen > 0 && <usize>valueLen > recordEnd - p)) {
      return fail(Code.CORRUPT_BATCH, Reason.RECORD_VALUE, recordPos);
    }
    const valuePos = p;
    if (valueLen > 0) p += <usize>valueLen;
    const headerCount = readVarint(p, recordEnd);
    if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
    p = varintNext;
    if (headerCount < 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_HEADERS, recordPos);
    const headersPos = p;
    // Each header consumes at least two bytes or fails, so this loop ends within the record.
    for (let h: i32 = 0; h < headerCount; h++) {
      const hKeyLen = readVarint(p, recordEnd);
      if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
      p = varintNext;
      // Header keys are strings and never null.
      if (hKeyLen < 0 || <usize>hKeyLen > recordEnd - p) {
        return fail(Code.CORRUPT_BATCH, Reason.RECORD_HEADERS, recordPos);
      }
      p += <usize>hKeyLen;
      const hValueLen = readVarint(p, recordEnd);
      if (varintNext === 0) return fail(Code.CORRUPT_BATCH, Reason.RECORD_VARINT, p);
      p = varintNext;
      if (hValueLen < -1 || (hValueLen > 0 && <usize>hValueLen > recordEnd - p)) {
        return fail(Code.CORRUPT_BATCH, Reason.RECORD_HEADERS, recordPos);
      }
      if (hValueLen > 0) p += <usize>hValueLen;
    }
    if (p !== recordEnd) return fail(Code.CORRUPT_BATCH, Reason.RECORD_TRAILING, recordPos);
    if (table !== 0) {
      const e = table + <usize>i * RECORD_ENTRY_BYTES;
      store<f64>(e + E_TIMESTAMP, <f64>timestamp);
      store<i32>(e + E_OFFSET_DELTA, offsetDelta);
      store<i32>(e + E_KEY_POS, keyLen < 0 ? -1 : <i32>(keyPos - regionBase));
      store<i32>(e + E_KEY_LEN, keyLen);
      store<i32>(e + E_VALUE_POS, valueLen < 0 ? -1 : <i32>(valuePos - regionBase));
      store<i32>(e + E_VALUE_LEN, valueLen);
      store<i32>(e + E_HEADERS_POS, <i32>(headersPos - regionBase));
      store<i32>(e + E_HEADER_COUNT, headerCount);
      store<i32>(e + E_RECORD_POS, <i32>(recordPos - regionBase));
      store<i32>(e + E_RECORD_END, <i32>(recordEnd - regionBase));
    }
  }
  if (p !== end) return fail(Code.CORRUPT_BATCH, Reason.RECORDS_TRAILING, p);
  return count;
}

/**
 * Walk of a batch's records for the host: `batch` is the header (61 bytes, already
 * validated), [records, records+len) the records (decompressed when compressed).
 */
export function walkBatchRecords(batch: usize, records: usize, len: usize, table: usize): i32 {
  clearError();
  return walkRecords(batch, records, records + len, table, records);
}
