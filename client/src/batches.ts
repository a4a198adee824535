// Record batches on the client side: the records of an append encoded as one Kafka v2
// batch, and the batches a Read or Subscribe returns decoded back into records. The byte
// work is core-wasm's (CRC32C, LZ4, varints); this file only walks batch boundaries.
import {
  BATCH_LOG_OVERHEAD,
  type Core,
  CoreError,
  type DecodedRecord,
  type RecordInput,
} from '../../core-wasm/src/index.js';
import { CairnClientError, invalidRequest } from './errors.js';
import type { Bytes, ConsumedRecord, ProduceRecord } from './types.js';

/** Where batchLength sits in a batch header (after baseOffset, int64). */
const BATCH_LENGTH_AT = 8;

const utf8 = new TextEncoder();

function bytesOf(v: Bytes | string, what: string): Bytes {
  if (typeof v === 'string') return utf8.encode(v);
  if (v instanceof Uint8Array) return v;
  throw invalidRequest(`${what} must be a Uint8Array, a string or null`);
}

/**
 * A record as core-wasm encodes it, the bytes it adds to a batch (an estimate from above),
 * and its payload (key + value + header keys and values, what the record limit counts).
 */
export function toRecordInput(r: ProduceRecord): { input: RecordInput; bytes: number; payload: number } {
  if (r === null || typeof r !== 'object') throw invalidRequest('a record must be an object with a value');
  if (r.value === undefined) throw invalidRequest('a record needs a value (null for a tombstone)');
  const key = r.key === undefined || r.key === null ? null : bytesOf(r.key, 'a record key');
  const value = r.value === null ? null : bytesOf(r.value, 'a record value');
  let bytes = (key?.length ?? 0) + (value?.length ?? 0);
  let payload = bytes;
  const input: RecordInput = { key, value };
  if (r.headers !== undefined) {
    if (!Array.isArray(r.headers)) throw invalidRequest('record headers must be an array');
    input.headers = r.headers.map((h) => {
      if (typeof h?.key !== 'string') throw invalidRequest('a header key must be a string');
      const v = h.value === null || h.value === undefined ? null : bytesOf(h.value, 'a header value');
      const size = utf8.encode(h.key).length + (v?.length ?? 0);
      payload += size;
      bytes += size + 10;
      return { key: h.key, value: v };
    });
  }
  if (r.timestamp !== undefined) {
    if (!Number.isSafeInteger(r.timestamp) || r.timestamp < 0)
      throw invalidRequest('a record timestamp must be an integer ≥ 0 (ms since the epoch)');
    input.timestamp = r.timestamp;
  }
  // Varint lengths, attributes, offset and timestamp deltas: at most ~21 bytes per record.
  return { input, bytes: bytes + 24, payload };
}

function asConsumed(partition: number, r: DecodedRecord): ConsumedRecord {
  return {
    partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key,
    value: r.value,
    headers: r.headers,
  };
}

export interface DecodedBatches {
  records: ConsumedRecord[];
  /** One past the last offset of the last batch walked (control batches included); -1 if none. */
  endOffset: number;
  /** Whether the walk stopped early at maxRecords. */
  truncated: boolean;
}

/**
 * The records of `buf` (batches back to back, as a Read returns them) at offsets ≥ `from`,
 * at most `maxRecords` of them (0 = all). Control batches are skipped. A batch that fails
 * validation (CRC, structure, decompression) is CORRUPT_BATCH: the client never returns
 * records it could not verify.
 */
export function decodeBatches(
  core: Core,
  buf: Uint8Array,
  partition: number,
  from: number,
  maxRecords = 0,
): DecodedBatches {
  const records: ConsumedRecord[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let endOffset = -1;
  let pos = 0;
  while (pos < buf.length) {
    if (pos + BATCH_LOG_OVERHEAD > buf.length) throw corrupt(`a batch header is cut off at byte ${pos}`);
    const len = BATCH_LOG_OVERHEAD + dv.getInt32(pos + BATCH_LENGTH_AT);
    if (len <= BATCH_LOG_OVERHEAD || pos + len > buf.length)
      throw corrupt(`a batch at byte ${pos} claims ${len} bytes; ${buf.length - pos} remain`);
    const batch = buf.subarray(pos, pos + len);
    let decoded: DecodedRecord[];
    let isControl: boolean;
    let last: number;
    try {
      const h = core.readBatchHeader(batch, 0);
      isControl = h.isControl;
      last = h.baseOffset + h.lastOffsetDelta;
      decoded = isControl ? [] : core.decodeRecords(batch);
    } catch (err) {
      if (err instanceof CoreError) throw corrupt(`the batch at byte ${pos}: ${err.code}: ${err.message}`);
      throw err;
    }
    for (const r of decoded) {
      if (r.offset < from) continue;
      if (maxRecords > 0 && records.length >= maxRecords) {
        // Stop before this record: the caller continues from it.
        return { records, endOffset: r.offset, truncated: true };
      }
      records.push(asConsumed(partition, r));
    }
    endOffset = last + 1;
    pos += len;
  }
  return { records, endOffset, truncated: false };
}

const corrupt = (message: string) => new CairnClientError('CORRUPT_BATCH', `read returned ${message}`);
