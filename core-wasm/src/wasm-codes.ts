// The numbers core.wasm speaks, mirrored from core-wasm/assembly/errors.ts and
// result.ts: error codes, reasons (with their messages) and result-block offsets.

import { CoreError, type CoreErrorCode } from './api.js';

/** assembly/errors.ts `Code`, by number. */
export const CODE_NAMES: readonly (CoreErrorCode | null)[] = [
  null,
  'CORRUPT_BATCH',
  'BAD_CRC',
  'BAD_MAGIC',
  'TRUNCATED',
  'LZ4_MALFORMED',
  'LZ4_CHECKSUM',
  'LZ4_LIMIT',
  'UNSUPPORTED',
  'TOO_LARGE',
];
/** Not an error: the output region must grow (assembly Code.NEED_OUTPUT). */
export const NEED_OUTPUT = 10;

/** assembly/errors.ts `Reason` → message. */
export const REASONS: Record<number, string> = {
  0: 'invalid input',
  1: 'batchLength is shorter than a batch header',
  2: 'batch is larger than coreLimits.maxBatchBytes',
  3: 'buffer ends inside a batch',
  4: 'magic byte is not 2 (record batch v2)',
  5: 'CRC32C does not match the batch contents',
  6: 'recordCount is out of range for the batch',
  7: 'offset outside 0..2^53-1',
  8: 'lastOffsetDelta is negative or smaller than recordCount - 1',
  9: 'timestamp outside ±2^53',
  10: 'unknown compression codec in attributes',
  11: 'malformed or truncated varint in a record',
  12: 'record length out of bounds',
  13: 'record key length out of bounds',
  14: 'record value length out of bounds',
  15: 'record header out of bounds (or a null header key)',
  16: 'record length does not match its fields',
  17: 'record offset deltas must increase within 0..lastOffsetDelta',
  18: 'record timestamp outside ±2^53',
  19: 'record count does not match recordCount',
  20: 'bytes left after the last record or batch',
  21: 'buffer ends inside a batch header',
  22: 'batch offset is not within 2^32 of the segment base offset',
  23: 'segment position does not fit 32 bits',
  40: 'not an LZ4 frame (bad magic number)',
  41: 'unsupported LZ4 frame version',
  42: 'reserved bits set in the LZ4 frame header',
  43: 'invalid LZ4 block maximum size',
  44: 'LZ4 frame header checksum does not match',
  45: 'LZ4 frame ends early',
  46: 'LZ4 block is larger than the frame block maximum size',
  47: 'LZ4 block checksum does not match',
  48: 'LZ4 content checksum does not match',
  49: 'LZ4 decompressed size does not match the frame content size',
  50: 'LZ4 frames with a dictionary ID are not supported',
  51: 'LZ4 literals run past the end of the input',
  52: 'LZ4 literals run past the end of the output',
  53: 'LZ4 match offset is 0',
  54: 'LZ4 match offset points before the start of the output',
  55: 'LZ4 match runs past the end of the output',
  56: 'LZ4 length runs past the end of the input',
  57: 'LZ4 block does not end with literals',
  58: 'LZ4 output would exceed the limit',
  59: 'empty LZ4 block',
};

/** Byte offsets in the result block (assembly/result.ts). */
export const R = {
  errorCode: 0,
  errorReason: 4,
  errorPosition: 8,
  scanValidBytes: 16,
  scanBatchCount: 20,
  scanFirstOffset: 32,
  scanLastOffset: 40,
  scanMaxTimestamp: 48,
  scanRecordTotal: 56,
  lz4InPos: 64,
  lz4OutPos: 68,
  lz4SizeHint: 80,
  indexBytesSince: 72,
} as const;

/** lz4FrameCompress flags (assembly/lz4-frame.ts). */
export const WANT_BLOCK_CHECKSUM = 1;
export const WANT_CONTENT_CHECKSUM = 2;
export const WANT_CONTENT_SIZE = 4;

/** Byte size and field offsets of one record-walk table entry (assembly/batch.ts). */
export const RECORD_ENTRY_BYTES = 48;
export const E = {
  timestamp: 0,
  offsetDelta: 8,
  keyPos: 12,
  keyLen: 16,
  valuePos: 20,
  valueLen: 24,
  headersPos: 28,
  headerCount: 32,
  recordPos: 36,
  recordEnd: 40,
} as const;

export function coreError(code: number, reason: number, position: number, detail?: string): CoreError {
  const name = CODE_NAMES[code] ?? 'CORRUPT_BATCH';
  const message = REASONS[reason] ?? REASONS[0]!;
  const where = position >= 0 ? ` (at byte ${position})` : '';
  return new CoreError(name, `${message}${detail ? `: ${detail}` : ''}${where}`, position);
}
