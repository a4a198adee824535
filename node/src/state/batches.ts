// Record batches as the node handles them: checking what a client sends, building a batch
// from structured records, the control batches that carry consumer offsets, and the facts
// the partition state machine reads from a batch header. The byte work is core-wasm's.
import {
  BATCH_HEADER_BYTES,
  type Core,
  CoreError,
  coreLimits,
  type RecordInput,
  type RecordsCheck,
} from '../../../core-wasm/src/index.js';
import { CairnError, tooLarge } from '../errors.js';
import type { Limits } from '../limits.js';
import type { ProducerIdentity } from '../node-api.js';
import type { BatchFacts, OffsetCommit } from './partition.js';

/**
 * Kafka control record types (the control record's key is [version int16, type int16]).
 * 0 and 1 are Kafka's transaction markers; storage maps 100/101 to Raft no-op and
 * configuration entries; 102 is Cairn's consumer-offset commit. Readers skip all control
 * batches.
 */
export const CONSUMER_OFFSET_CONTROL_TYPE = 102;

/** Offset of batch header fields (Kafka record batch v2). */
const ATTRIBUTES_AT = 21;
const CONTROL_BIT = 0x20;
const TRANSACTIONAL_BIT = 0x10;

/** A batch a client sent, checked and ready to stamp. */
export interface CheckedBatch {
  bytes: Uint8Array;
  recordCount: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  /** lastOffsetDelta of the batch: the batch spans offsets [base, base + lastOffsetDelta]. */
  lastOffsetDelta: number;
}

/**
 * Checks one client-built v2 batch: exactly one whole batch, valid CRC and structure, not a
 * control or transactional batch, within the size and record-count limits. Refuses with
 * CORRUPT_BATCH / RECORD_TOO_LARGE / INVALID_REQUEST; changes nothing.
 */
export function checkClientBatch(core: Core, bytes: Uint8Array, limits: Limits): CheckedBatch {
  if (bytes.length > limits.maxBatchBytes) throw tooLarge('the batch', bytes.length, limits.maxBatchBytes);
  if (bytes.length < BATCH_HEADER_BYTES) {
    throw new CairnError(
      'CORRUPT_BATCH',
      `a batch is at least ${BATCH_HEADER_BYTES} bytes, got ${bytes.length}`,
    );
  }
  const scan = core.scanBatches(bytes);
  if (scan.error !== null) throw new CairnError('CORRUPT_BATCH', `invalid batch: ${scan.error.message}`);
  if (scan.batchCount !== 1 || scan.validBytes !== bytes.length) {
    throw new CairnError(
      'CORRUPT_BATCH',
      `expected exactly one batch, found ${scan.batchCount} and trailing bytes`,
    );
  }
  const h = core.readBatchHeader(bytes, 0);
  if (h.isControl || (h.attributes & CONTROL_BIT) !== 0) {
    throw new CairnError('INVALID_REQUEST', 'clients may not append control batches');
  }
  if (h.isTransactional || (h.attributes & TRANSACTIONAL_BIT) !== 0) {
    throw new CairnError('INVALID_REQUEST', 'transactional batches are not supported');
  }
  if (h.recordCount < 1) throw new CairnError('INVALID_REQUEST', 'the batch holds no records');
  if (h.recordCount > limits.maxRecordsPerAppend) {
    throw new CairnError(
      'RECORD_TOO_LARGE',
      `${h.recordCount} records exceed ${limits.maxRecordsPerAppend}`,
      {
        limit: limits.maxRecordsPerAppend,
      },
    );
  }
  // Offsets inside the batch are relative; a batch whose delta disagrees with its count
  // would make the partition's offsets lie.
  if (h.lastOffsetDelta !== h.recordCount - 1) {
    throw new CairnError(
      'CORRUPT_BATCH',
      `lastOffsetDelta ${h.lastOffsetDelta} does not match ${h.recordCount} records`,
    );
  }
  // The CRC only says the bytes arrived as the client made them. The records inside
  // (decompressed when compressed) must also be well formed, or every reader of the
  // partition would fail on this batch for good; and each record within the record limit.
  let check: RecordsCheck;
  try {
    check = core.checkRecords(bytes);
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    if (err.code === 'TOO_LARGE' || err.code === 'LZ4_LIMIT')
      throw tooLarge(
        'the decompressed records',
        coreLimits.maxDecompressedBytes + 1,
        coreLimits.maxDecompressedBytes,
      );
    throw new CairnError('CORRUPT_BATCH', `invalid records: ${err.message}`);
  }
  if (check.maxRecordBytes > limits.maxRecordBytes)
    throw tooLarge('a record', check.maxRecordBytes, limits.maxRecordBytes);
  if (h.producerId >= 0 && (h.producerEpoch < 0 || h.baseSequence < 0)) {
    throw new CairnError('INVALID_REQUEST', 'an idempotent batch needs a producer epoch and sequence ≥ 0');
  }
  return {
    bytes,
    recordCount: h.recordCount,
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    lastOffsetDelta: h.lastOffsetDelta,
  };
}

/** Builds a batch from structured records (each within maxRecordBytes). */
export function buildBatch(
  core: Core,
  records: RecordInput[],
  producer: ProducerIdentity | undefined,
  nowMs: number,
  limits: Limits,
): CheckedBatch {
  if (records.length === 0) throw new CairnError('INVALID_REQUEST', 'an append needs at least one record');
  if (records.length > limits.maxRecordsPerAppend) {
    throw new CairnError(
      'RECORD_TOO_LARGE',
      `${records.length} records exceed ${limits.maxRecordsPerAppend}`,
      {
        limit: limits.maxRecordsPerAppend,
      },
    );
  }
  let total = 0;
  for (const r of records) {
    let size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
    for (const h of r.headers ?? []) size += h.key.length + (h.value?.length ?? 0);
    if (size > limits.maxRecordBytes) throw tooLarge('a record', size, limits.maxRecordBytes);
    total += size;
  }
  if (total > limits.maxBatchBytes) throw tooLarge('the records', total, limits.maxBatchBytes);
  if (producer !== undefined && (producer.producerEpoch < 0 || producer.baseSequence < 0)) {
    throw new CairnError('INVALID_REQUEST', 'producer epoch and sequence must be ≥ 0');
  }
  let bytes: Uint8Array;
  try {
    bytes = core.encodeBatch(
      records.map((r) => (r.timestamp === undefined || r.timestamp === 0 ? { ...r, timestamp: nowMs } : r)),
      {
        baseTimestamp: nowMs,
        producerId: producer?.producerId ?? -1,
        producerEpoch: producer?.producerEpoch ?? -1,
        baseSequence: producer?.baseSequence ?? -1,
      },
    );
  } catch (err) {
    if (err instanceof CoreError)
      throw new CairnError('INVALID_REQUEST', `cannot encode the records: ${err.message}`);
    throw err;
  }
  if (bytes.length > limits.maxBatchBytes) throw tooLarge('the batch', bytes.length, limits.maxBatchBytes);
  return {
    bytes,
    recordCount: records.length,
    producerId: producer?.producerId ?? -1,
    producerEpoch: producer?.producerEpoch ?? -1,
    baseSequence: producer?.baseSequence ?? -1,
    lastOffsetDelta: records.length - 1,
  };
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The control batch recording a consumer group's offset: one record whose key is
 * [version 0, type 102] and whose value is [offset int64][group length u16][group][metadata].
 */
export function buildOffsetCommitBatch(core: Core, c: OffsetCommit, nowMs: number): Uint8Array {
  const group = utf8.encode(c.group);
  const meta = utf8.encode(c.metadata);
  const value = new Uint8Array(8 + 2 + group.length + meta.length);
  const dv = new DataView(value.buffer);
  dv.setBigInt64(0, BigInt(c.offset));
  dv.setUint16(8, group.length);
  value.set(group, 10);
  value.set(meta, 10 + group.length);
  const key = new Uint8Array(4);
  new DataView(key.buffer).setInt16(2, CONSUMER_OFFSET_CONTROL_TYPE);
  return core.encodeBatch([{ key, value, timestamp: nowMs }], { control: true, baseTimestamp: nowMs });
}

/** The control type of a control batch (the first record's key), or -1 if it has none or is unreadable. */
export function controlTypeOf(core: Core, batch: Uint8Array): number {
  let first: ReturnType<Core['decodeRecords']>[number] | undefined;
  try {
    [first] = core.decodeRecords(batch);
  } catch {
    return -1;
  }
  if (first?.key == null || first.key.length < 4) return -1;
  return new DataView(first.key.buffer, first.key.byteOffset, 4).getInt16(2);
}

export function parseOffsetCommit(core: Core, batch: Uint8Array): OffsetCommit {
  const [first] = core.decodeRecords(batch);
  const v = first?.value;
  if (v == null || v.length < 10) throw new Error('consumer offset record is malformed');
  const dv = new DataView(v.buffer, v.byteOffset, v.length);
  const groupLength = dv.getUint16(8);
  if (10 + groupLength > v.length) throw new Error('consumer offset record is malformed');
  return {
    offset: Number(dv.getBigInt64(0)),
    group: utf8Decoder.decode(v.subarray(10, 10 + groupLength)),
    metadata: utf8Decoder.decode(v.subarray(10 + groupLength)),
  };
}

/** What an applied entry's batch means for the partition state machine. */
export type AppliedBatch =
  | { kind: 'data'; facts: BatchFacts }
  | { kind: 'offsetCommit'; lastOffset: number; commit: OffsetCommit }
  /** Any other control batch: consumes its offsets, nothing else. */
  | { kind: 'control'; lastOffset: number };

/** Reads a committed batch (as stored: offsets stamped) for the state machine. */
export function classifyBatch(core: Core, index: number, batch: Uint8Array): AppliedBatch {
  const h = core.readBatchHeader(batch, 0);
  const lastOffset = h.baseOffset + h.lastOffsetDelta;
  if ((h.attributes & CONTROL_BIT) !== 0) {
    if (controlTypeOf(core, batch) === CONSUMER_OFFSET_CONTROL_TYPE) {
      return { kind: 'offsetCommit', lastOffset, commit: parseOffsetCommit(core, batch) };
    }
    return { kind: 'control', lastOffset };
  }
  return {
    kind: 'data',
    facts: {
      index,
      baseOffset: h.baseOffset,
      lastOffset,
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      recordCount: h.recordCount,
    },
  };
}

/** Whether the batch at `position` in `buf` is a control batch (readers skip those). */
export function isControlBatchAt(buf: Uint8Array, position: number): boolean {
  return (buf[position + ATTRIBUTES_AT + 1]! & CONTROL_BIT) !== 0;
}
