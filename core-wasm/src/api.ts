// The contract of Cairn's byte core. `createCore()` (in-thread, synchronous) and
// `createCorePool()` (piscina workers, asynchronous) both implement it; storage, the
// node and the client use nothing else for CRC, compression, batches and indexes.
//
// Offsets and timestamps are JavaScript numbers: they are int64 on the wire, but a
// partition never reaches 2^53 offsets, and numbers keep the hot path free of BigInt.
// Anything outside the safe-integer range read from a batch is reported as corrupt.

/** Why a core operation refused its input. Every failure is one of these, never a crash. */
export type CoreErrorCode =
  /** The batch structure is invalid: lengths, record count, varints, record bounds. */
  | 'CORRUPT_BATCH'
  /** The stored CRC32C does not match attributes..end of the batch. */
  | 'BAD_CRC'
  /** The magic byte is not 2 (only record batch v2 is supported). */
  | 'BAD_MAGIC'
  /** The buffer ends inside a batch: a torn tail, not corruption by itself. */
  | 'TRUNCATED'
  /** An LZ4 frame or block is malformed (bad magic, header checksum, lengths, offsets). */
  | 'LZ4_MALFORMED'
  /** An LZ4 block or content checksum does not match. */
  | 'LZ4_CHECKSUM'
  /** Decompressed output would exceed the caller's limit. */
  | 'LZ4_LIMIT'
  /** A feature the core does not implement (e.g. snappy or zstd compression). */
  | 'UNSUPPORTED'
  /** The input exceeds a fixed limit of the core (see `coreLimits`). */
  | 'TOO_LARGE';

export class CoreError extends Error {
  override readonly name = 'CoreError';
  constructor(
    readonly code: CoreErrorCode,
    message: string,
    /** Byte position in the input where the problem was found, when known. */
    readonly position = -1,
  ) {
    super(message);
  }
}

/** Kafka's codec numbers in attributes bits 0-2. Cairn writes none, gzip and lz4. */
export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionName = 'none' | 'gzip' | 'lz4';

/** Sizes of the record batch v2 header (DESIGN §3). */
export const BATCH_HEADER_BYTES = 61;
/** Bytes before `batchLength` counts: baseOffset (8) + batchLength (4). */
export const BATCH_LOG_OVERHEAD = 12;

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface RecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  /** Milliseconds since the epoch; defaults to the batch's base timestamp. */
  timestamp?: number;
}

export interface EncodeOptions {
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  compression?: CompressionName;
  /** -1 when the producer is not idempotent. */
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  /** A control batch (attributes bit 5): Raft no-op and configuration entries. */
  control?: boolean;
  /** Used for records without a timestamp; defaults to the smallest record timestamp, or 0. */
  baseTimestamp?: number;
}

/** The 61-byte header of one batch, as stored. */
export interface BatchHeader {
  baseOffset: number;
  /** Bytes after the batchLength field; the batch occupies 12 + batchLength bytes. */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
  compression: number;
  isControl: boolean;
  isTransactional: boolean;
}

/** What `scanBatches` found in a buffer holding zero or more batches back to back. */
export interface ScanResult {
  /** Length of the longest prefix that consists of whole, valid batches. */
  validBytes: number;
  batchCount: number;
  recordCount: number;
  /** baseOffset of the first valid batch; -1 if none. */
  firstOffset: number;
  /** baseOffset + lastOffsetDelta of the last valid batch; -1 if none. */
  lastOffset: number;
  /** Largest maxTimestamp among the valid batches; -1 if none. */
  maxTimestamp: number;
  /** Why scanning stopped before the end of the buffer; null if every byte was valid. */
  error: CoreError | null;
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

export interface RecordsCheck {
  recordCount: number;
  /** The largest record's key + value + headers (headers as encoded), in bytes. */
  maxRecordBytes: number;
  /** The records' bytes after decompression (the region decodeRecords would copy). */
  uncompressedBytes: number;
}

export interface Lz4CompressOptions {
  /** 1 = best ratio of the fast mode; higher trades ratio for speed (as `lz4 --fast=N`). */
  acceleration?: number;
  /** Block maximum size: 64 KiB (Kafka's choice, the default), 256 KiB, 1 MiB or 4 MiB. */
  blockSize?: 65536 | 262144 | 1048576 | 4194304;
  /** An xxHash32 after each block (default false). */
  blockChecksum?: boolean;
  /** An xxHash32 of the whole content after the end mark (default true, as the lz4 CLI). */
  contentChecksum?: boolean;
  /** Write the content size in the frame header (default false). */
  contentSize?: boolean;
}

export interface Lz4DecompressOptions {
  /** Refuse (LZ4_LIMIT) to produce more than this many bytes. Default: coreLimits.maxDecompressedBytes. */
  maxOutputBytes?: number;
}

export interface IndexBuildOptions {
  /** The segment's base offset; index entries hold offsets relative to it. */
  segmentBaseOffset: number;
  /** Write an entry when at least this many log bytes passed since the previous one. */
  intervalBytes: number;
  /** Position in the segment file of the first byte of `buf`. */
  startPosition?: number;
  /** Log bytes already written since the last index entry before `buf`. */
  bytesSinceLastEntry?: number;
}

/** Sparse index entries from `buildIndex`, as parallel arrays (no per-entry objects). */
export interface IndexEntries {
  /** Offset of the entry's batch minus the segment base offset. */
  relativeOffsets: Uint32Array;
  /** Byte position of the batch in the segment file. */
  positions: Uint32Array;
  /** Ordinal of the batch within `buf` (0-based), so the caller can attach Raft indexes. */
  batchOrdinals: Uint32Array;
  /** Log bytes since the last entry at the end of `buf` (feed into the next call). */
  bytesSinceLastEntry: number;
}

/**
 * The synchronous in-thread core. Every method except stampBatch is a pure function of
 * its inputs and leaves them untouched; results never share memory with the core (they
 * are fresh copies the caller owns).
 */
export interface Core {
  crc32c(bytes: Uint8Array, seed?: number): number;
  xxhash32(bytes: Uint8Array, seed?: number): number;

  /** LZ4 frame format (magic 0x184D2204), independent blocks. */
  lz4Compress(bytes: Uint8Array, options?: Lz4CompressOptions): Uint8Array;
  /** Any valid LZ4 frame (linked or independent blocks, any block size, checksums, skippable frames). */
  lz4Decompress(frame: Uint8Array, options?: Lz4DecompressOptions): Uint8Array;
  /** A raw LZ4 block. */
  lz4CompressBlock(bytes: Uint8Array, acceleration?: number): Uint8Array;
  /** A raw LZ4 block whose decompressed size is at most `maxOutputBytes`. */
  lz4DecompressBlock(block: Uint8Array, maxOutputBytes: number): Uint8Array;

  /** Validates batches back to back: length, magic, CRC, record count sane. Never throws on bad data. */
  scanBatches(buf: Uint8Array): ScanResult;
  /** Reads the header of the batch at `position` (no validation beyond bounds). */
  readBatchHeader(buf: Uint8Array, position?: number): BatchHeader;
  /** Writes baseOffset and partitionLeaderEpoch in place; the CRC does not cover them. */
  stampBatch(buf: Uint8Array, position: number, baseOffset: number, partitionLeaderEpoch: number): void;
  /**
   * Builds one batch (CRC computed, optionally compressed; lz4 as Kafka's producer writes
   * it: 64 KiB independent blocks, no frame checksums). Offset deltas are 0..n-1; at least
   * one record. Defaults: producerId, producerEpoch and baseSequence -1, epoch 0.
   */
  encodeBatch(records: RecordInput[], options?: EncodeOptions): Uint8Array;
  /**
   * Decodes (decompressing if needed) every record of the one batch that fills `batch`
   * (trailing bytes are CORRUPT_BATCH), after validating it as scanBatches does. Keys,
   * values and header values are views into one fresh copy of the records. Control
   * batches decode too (check readBatchHeader(...).isControl). Throws CoreError on bad input.
   */
  decodeRecords(batch: Uint8Array): DecodedRecord[];
  /**
   * Validates every record of the one batch that fills `batch` as decodeRecords does
   * (decompressing if needed: varints, lengths, offset deltas increasing within
   * lastOffsetDelta, nothing trailing) without building them, and measures them. Throws
   * CoreError on bad input. For a server checking what a client sent.
   */
  checkRecords(batch: Uint8Array): RecordsCheck;

  /** Sparse index entries for a buffer of whole batches. */
  buildIndex(buf: Uint8Array, options: IndexBuildOptions): IndexEntries;
  /**
   * The slot of the last entry whose relative offset is ≤ `relativeOffset` in a sorted
   * array of relative offsets (only the first `count` are used); -1 if none.
   */
  searchIndex(relativeOffsets: Uint32Array, count: number, relativeOffset: number): number;
}

/**
 * The same operations on piscina worker threads, for large work (compression of big
 * batches, recovery scans, compaction). Inputs are copied to the worker.
 */
export type CorePool = {
  [K in keyof Core]: Core[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : never;
} & {
  destroy(): Promise<void>;
};
