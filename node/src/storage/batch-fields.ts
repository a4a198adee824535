// The few record-batch v2 header fields storage reads on its hot paths (walking a
// segment batch by batch), read straight from the bytes. Full header parsing and every
// validation stay in core-wasm; these readers assume the batch was validated or only
// use the fields to find the next boundary.
//
// Layout (DESIGN §3, big-endian): baseOffset i64 @0 | batchLength i32 @8 |
// partitionLeaderEpoch i32 @12 | magic i8 @16 | crc u32 @17 | attributes i16 @21 |
// lastOffsetDelta i32 @23 | baseTimestamp i64 @27 | maxTimestamp i64 @35 | producerId i64 @43 |
// producerEpoch i16 @51 | baseSequence i32 @53 | recordCount i32 @57 | records @61.
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD } from '../../../core-wasm/src/index.js';

export { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD };

const TWO_32 = 4294967296;
export const ATTR_CONTROL = 0x20;
export const MAGIC_V2 = 2;

export function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Bytes the batch at `p` occupies (log overhead included), from its batchLength field. */
export function batchSizeAt(dv: DataView, p: number): number {
  return BATCH_LOG_OVERHEAD + dv.getInt32(p + 8);
}

export function baseOffsetAt(dv: DataView, p: number): number {
  return dv.getInt32(p) * TWO_32 + dv.getUint32(p + 4);
}

export function lastOffsetAt(dv: DataView, p: number): number {
  return baseOffsetAt(dv, p) + dv.getInt32(p + 23);
}

export function epochAt(dv: DataView, p: number): number {
  return dv.getInt32(p + 12);
}

export function crcAt(dv: DataView, p: number): number {
  return dv.getUint32(p + 17);
}

export function attributesAt(dv: DataView, p: number): number {
  return dv.getInt16(p + 21);
}

export function maxTimestampAt(dv: DataView, p: number): number {
  return dv.getInt32(p + 35) * TWO_32 + dv.getUint32(p + 39);
}

export function magicAt(dv: DataView, p: number): number {
  return dv.getInt8(p + 16);
}
