// Failure reporting shared by every operation of the core.
//
// An exported function that can fail returns a negative number, -code, and leaves the
// code, a reason (which check failed) and the byte position where it was found in the
// result block (result.ts). The host turns them into a typed CoreError; the numbers here
// must match core-wasm/src/wasm-codes.ts.

import { R_ERROR_CODE, R_ERROR_POSITION, R_ERROR_REASON, RESULT } from './result';

/** CoreErrorCode, as numbers. */
export const enum Code {
  OK = 0,
  CORRUPT_BATCH = 1,
  BAD_CRC = 2,
  BAD_MAGIC = 3,
  TRUNCATED = 4,
  LZ4_MALFORMED = 5,
  LZ4_CHECKSUM = 6,
  LZ4_LIMIT = 7,
  UNSUPPORTED = 8,
  TOO_LARGE = 9,
  /** Not an error the caller sees: the output region is too small, the host grows it and resumes. */
  NEED_OUTPUT = 10,
}

/** Which check failed; the host keeps the matching messages. */
export const enum Reason {
  NONE = 0,
  // batches
  BATCH_LENGTH_SHORT = 1,
  BATCH_LENGTH_LIMIT = 2,
  BATCH_TRUNCATED = 3,
  BATCH_MAGIC = 4,
  BATCH_CRC = 5,
  BATCH_RECORD_COUNT = 6,
  BATCH_OFFSET_RANGE = 7,
  BATCH_LAST_OFFSET_DELTA = 8,
  BATCH_TIMESTAMP_RANGE = 9,
  BATCH_CODEC = 10,
  RECORD_VARINT = 11,
  RECORD_LENGTH = 12,
  RECORD_KEY = 13,
  RECORD_VALUE = 14,
  RECORD_HEADERS = 15,
  RECORD_TRAILING = 16,
  RECORD_OFFSET_DELTA = 17,
  RECORD_TIMESTAMP = 18,
  RECORDS_COUNT_MISMATCH = 19,
  RECORDS_TRAILING = 20,
  HEADER_TRUNCATED = 21,
  INDEX_OFFSET_RANGE = 22,
  INDEX_POSITION_RANGE = 23,
  // lz4
  LZ4_FRAME_MAGIC = 40,
  LZ4_FRAME_VERSION = 41,
  LZ4_FRAME_RESERVED = 42,
  LZ4_FRAME_BLOCK_SIZE = 43,
  LZ4_FRAME_HEADER_CHECKSUM = 44,
  LZ4_FRAME_TRUNCATED = 45,
  LZ4_BLOCK_TOO_BIG = 46,
  LZ4_BLOCK_CHECKSUM = 47,
  LZ4_CONTENT_CHECKSUM = 48,
  LZ4_CONTENT_SIZE = 49,
  LZ4_DICT_ID = 50,
  LZ4_LITERALS_PAST_INPUT = 51,
  LZ4_LITERALS_PAST_OUTPUT = 52,
  LZ4_OFFSET_ZERO = 53,
  LZ4_OFFSET_BEFORE_START = 54,
  LZ4_MATCH_PAST_OUTPUT = 55,
  LZ4_LENGTH_PAST_INPUT = 56,
  LZ4_BLOCK_END = 57,
  LZ4_OUTPUT_LIMIT = 58,
  LZ4_EMPTY_INPUT = 59,
}

/** Records a failure and returns -code, the value exported functions return for it. */
export function fail(code: Code, reason: Reason, position: usize): i32 {
  store<i32>(RESULT + R_ERROR_CODE, <i32>code);
  store<i32>(RESULT + R_ERROR_REASON, <i32>reason);
  store<i32>(RESULT + R_ERROR_POSITION, <i32>position);
  return -(<i32>code);
}

export function clearError(): void {
  store<i32>(RESULT + R_ERROR_CODE, 0);
  store<i32>(RESULT + R_ERROR_REASON, 0);
  store<i32>(RESULT + R_ERROR_POSITION, -1);
}
