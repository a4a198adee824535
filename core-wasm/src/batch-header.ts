// Reading and stamping the 61-byte record batch v2 header on the host. These touch a few
// fixed fields, so they work on the caller's bytes directly (no copy into wasm memory).

import { BATCH_HEADER_BYTES, type BatchHeader, CoreError } from './api.js';

const TWO_32 = 4294967296;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** An int64 field as a number; CORRUPT_BATCH if it is outside the safe-integer range. */
function int64(dv: DataView, at: number, field: string, position: number): number {
  const v = dv.getInt32(at) * TWO_32 + dv.getUint32(at + 4);
  if (!Number.isSafeInteger(v)) {
    throw new CoreError('CORRUPT_BATCH', `batch ${field} is outside ±2^53 (at byte ${position})`, position);
  }
  return v;
}

export function readBatchHeader(buf: Uint8Array, position = 0): BatchHeader {
  if (!Number.isInteger(position) || position < 0 || position + BATCH_HEADER_BYTES > buf.length) {
    throw new CoreError(
      'TRUNCATED',
      `a batch header needs ${BATCH_HEADER_BYTES} bytes at ${position}; the buffer has ${buf.length}`,
      position,
    );
  }
  const dv = view(buf);
  const p = position;
  const attributes = dv.getInt16(p + 21);
  return {
    baseOffset: int64(dv, p, 'baseOffset', p),
    batchLength: dv.getInt32(p + 8),
    partitionLeaderEpoch: dv.getInt32(p + 12),
    magic: dv.getInt8(p + 16),
    crc: dv.getUint32(p + 17),
    attributes,
    lastOffsetDelta: dv.getInt32(p + 23),
    baseTimestamp: int64(dv, p + 27, 'baseTimestamp', p),
    maxTimestamp: int64(dv, p + 35, 'maxTimestamp', p),
    producerId: int64(dv, p + 43, 'producerId', p),
    producerEpoch: dv.getInt16(p + 51),
    baseSequence: dv.getInt32(p + 53),
    recordCount: dv.getInt32(p + 57),
    compression: attributes & 7,
    isTransactional: (attributes & 0x10) !== 0,
    isControl: (attributes & 0x20) !== 0,
  };
}

/** Writes baseOffset (bytes 0-7) and partitionLeaderEpoch (12-15); the CRC (21..end) does not cover them. */
export function stampBatch(buf: Uint8Array, position: number, baseOffset: number, epoch: number): void {
  if (!Number.isInteger(position) || position < 0 || position + BATCH_HEADER_BYTES > buf.length) {
    throw new CoreError('TRUNCATED', `no batch header at ${position} in ${buf.length} bytes`, position);
  }
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) {
    throw new CoreError('CORRUPT_BATCH', `baseOffset ${baseOffset} is not an integer in 0..2^53-1`, position);
  }
  if (!Number.isInteger(epoch) || epoch < -0x80000000 || epoch > 0x7fffffff) {
    throw new CoreError('CORRUPT_BATCH', `partitionLeaderEpoch ${epoch} is not an int32`, position);
  }
  const dv = view(buf);
  dv.setUint32(position, Math.floor(baseOffset / TWO_32));
  dv.setUint32(position + 4, baseOffset % TWO_32);
  dv.setInt32(position + 12, epoch);
}
