// One segment: a `<baseOffset>.log` file of batches back to back, its sparse index and
// term runs, and the bookkeeping between the in-memory view and the file.
//
// Byte ranges of a segment, in order (invariants: diskBytes ≤ flushedBytes ≤ size):
//
//   [0, diskBytes)            written to the file (writes completed; durable after the flush's sync)
//   [diskBytes, flushedBytes) handed to a write that is still in flight
//   [flushedBytes, size)      pending: `pending` chunks, not yet handed to the file system
//
// Only [0, diskBytes) is ever read from the file; everything after it is in the tail cache.
// A truncation below flushedBytes sets `truncateTo`, and the flusher truncates the file
// (durably) before it writes anything after it.
import { BATCH_HEADER_BYTES, batchSizeAt, dataView } from './batch-fields.js';
import { CorruptRead, invariant } from './errors.js';
import { type FileHandle, readFully, readFullySync } from './fs.js';
import { SparseIndex, segmentFileName, TermRunList } from './segment-index.js';

export class Segment {
  readonly logName: string;
  readonly indexName: string;
  /** Raft index of batch 0, or NO_INDEX (the segment's batches are no longer Raft entries). */
  firstIndex: number;
  batchCount = 0;
  size = 0;
  /** Last offset of the last batch; baseOffset - 1 when empty. */
  lastOffset: number;
  /** Largest maxTimestamp of the batches (an upper bound after a truncation); -1 when empty. */
  maxTimestamp = -1;
  index = new SparseIndex();
  runs = new TermRunList();
  bytesSinceIndexEntry = 0;
  lastBatchPosition = 0;
  lastBatchCrc = 0;
  /** Rewritten by key compaction: offsets may have gaps, batch numbers are not Raft indexes. */
  compacted = false;
  /** No more appends; its index file is written once its data is durable. */
  sealed = false;
  /** Times the view was cut (an index file written meanwhile is stale). */
  truncations = 0;

  // ---- owned by the flusher -----------------------------------------------------
  file: FileHandle | null = null;
  diskBytes = 0;
  flushedBytes = 0;
  pending: Uint8Array[] = [];
  /** Raft index of each pending chunk (one chunk = one batch = one entry). */
  pendingIndexes: number[] = [];
  truncateTo = -1;
  /** 'current': `<base>.index` matches the data; 'stale': it exists but must be removed; 'none'. */
  indexFile: 'none' | 'stale' | 'current' = 'none';
  /** Readers holding the file open (async reads, snapshot transfers); the handle closes at zero once removed. */
  pins = 0;
  removed = false;

  constructor(
    readonly baseOffset: number,
    firstIndex: number,
  ) {
    this.firstIndex = firstIndex;
    this.lastOffset = baseOffset - 1;
    this.logName = segmentFileName(baseOffset, 'log');
    this.indexName = segmentFileName(baseOffset, 'index');
  }

  /** Records a batch appended at the end of the view. */
  appendBatch(
    bytes: Uint8Array,
    lastOffset: number,
    maxTimestamp: number,
    term: number,
    crc: number,
    indexIntervalBytes: number,
  ): number {
    const position = this.size;
    // An index entry for this batch when enough bytes passed since the last one (batch 0 needs none: position 0).
    if (this.bytesSinceIndexEntry >= indexIntervalBytes && this.batchCount > 0) {
      this.index.add(lastOffset - this.baseOffset, position, this.batchCount);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += bytes.length;
    this.runs.note(this.batchCount, term);
    this.pending.push(bytes);
    this.size += bytes.length;
    this.batchCount++;
    this.lastOffset = lastOffset;
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
    this.lastBatchPosition = position;
    this.lastBatchCrc = crc;
    return position;
  }

  /**
   * Cuts the view at `position`, the start of batch number `relIndex` (offset
   * `baseOffsetAtCut`). The last remaining batch (if any) is at `lastPosition` with `lastCrc`.
   */
  truncateView(
    position: number,
    relIndex: number,
    baseOffsetAtCut: number,
    lastPosition: number,
    lastCrc: number,
  ): void {
    this.truncations++;
    if (position >= this.flushedBytes) {
      // Only pending chunks are cut: drop whole chunks (each is one batch) from the end.
      let keep = position - this.flushedBytes;
      const kept: Uint8Array[] = [];
      for (const chunk of this.pending) {
        if (keep <= 0) break;
        invariant(chunk.length <= keep, 'a truncation falls on a batch boundary');
        kept.push(chunk);
        keep -= chunk.length;
      }
      this.pending = kept;
      this.pendingIndexes.length = kept.length;
    } else {
      // The cut reaches bytes handed to the file: the flusher truncates the file first.
      this.pending = [];
      this.pendingIndexes = [];
      this.flushedBytes = position;
      this.truncateTo = this.truncateTo < 0 ? position : Math.min(this.truncateTo, position);
      if (this.diskBytes > position) this.diskBytes = position;
    }
    this.size = position;
    this.batchCount = relIndex;
    this.lastOffset = baseOffsetAtCut - 1;
    this.index.truncateAtPosition(position);
    while (
      this.runs.relIndexes.length > 0 &&
      this.runs.relIndexes[this.runs.relIndexes.length - 1]! >= relIndex
    ) {
      this.runs.relIndexes.pop();
      this.runs.terms.pop();
    }
    const lastEntry = this.index.count > 0 ? this.index.positions[this.index.count - 1]! : 0;
    this.bytesSinceIndexEntry = position - lastEntry;
    this.lastBatchPosition = relIndex > 0 ? lastPosition : 0;
    this.lastBatchCrc = relIndex > 0 ? lastCrc : 0;
    if (relIndex === 0) this.maxTimestamp = -1;
    if (this.sealed) this.sealed = false;
    if (this.indexFile === 'current') this.indexFile = 'stale';
  }
}

/** A batch as read back: its bytes (a view into a read buffer) and its position in the segment. */
export interface ReadBatch {
  bytes: Uint8Array;
  position: number;
}

function checkBatchSize(seg: Segment, position: number, size: number, limit: number): void {
  if (size < BATCH_HEADER_BYTES || position + size > limit)
    throw new CorruptRead(seg.logName, position, `batch claims ${size} bytes, past the written end ${limit}`);
}

/**
 * Batches of `seg` from `position` (a batch boundary) up to `limit` (≤ diskBytes), read
 * synchronously in windows of about `windowBytes`. Structure only: callers validate CRCs.
 */
export function* batchesSync(
  seg: Segment,
  position: number,
  limit: number,
  windowBytes: number,
): Generator<ReadBatch> {
  const file = seg.file;
  invariant(file !== null, `segment ${seg.logName} has a file to read`);
  let pos = position;
  while (pos < limit) {
    const window = readFullySync(file, pos, Math.min(windowBytes, limit - pos));
    if (window.length < 12) throw new CorruptRead(seg.logName, pos, 'short read');
    const dv = dataView(window);
    let q = 0;
    while (q + 12 <= window.length) {
      const size = batchSizeAt(dv, q);
      checkBatchSize(seg, pos + q, size, limit);
      if (q + size > window.length) {
        if (q > 0) break; // continue with a window starting at this batch
        const whole = readFullySync(file, pos, size);
        if (whole.length !== size) throw new CorruptRead(seg.logName, pos, 'short read');
        yield { bytes: whole, position: pos };
        q = size;
        break;
      }
      yield { bytes: window.subarray(q, q + size), position: pos + q };
      q += size;
    }
    pos += q;
  }
}

/** The asynchronous form of `batchesSync`, for offset reads, snapshots and compaction. */
export async function* batchesAsync(
  seg: Segment,
  file: FileHandle,
  position: number,
  limit: number,
  windowBytes: number,
): AsyncGenerator<ReadBatch> {
  let pos = position;
  while (pos < limit) {
    const window = await readFully(file, pos, Math.min(windowBytes, limit - pos));
    if (window.length < 12) throw new CorruptRead(seg.logName, pos, 'short read');
    const dv = dataView(window);
    let q = 0;
    while (q + 12 <= window.length) {
      const size = batchSizeAt(dv, q);
      checkBatchSize(seg, pos + q, size, limit);
      if (q + size > window.length) {
        if (q > 0) break;
        const whole = await readFully(file, pos, size);
        if (whole.length !== size) throw new CorruptRead(seg.logName, pos, 'short read');
        yield { bytes: whole, position: pos };
        q = size;
        break;
      }
      yield { bytes: window.subarray(q, q + size), position: pos + q };
      q += size;
    }
    pos += q;
  }
}
