// Validating a segment file from its start: every batch's length, magic and CRC (in
// core-wasm, on the pool for big chunks), plus what the CRC does not cover (baseOffset,
// batchLength, partitionLeaderEpoch), checked for consistency: offsets strictly increase,
// and in the Raft region offsets are contiguous and terms never decrease. The walk
// rebuilds the sparse index and term runs as it goes.
//
// The file is read in chunks with the next chunk's read in flight while the current one
// is validated, so disk and CPU overlap. A batch that straddles two chunks is completed
// from the next chunk (one batch is copied, never a chunk).
import type { Core, CoreErrorCode, CorePool } from '../../../core-wasm/src/index.js';
import {
  BATCH_HEADER_BYTES,
  baseOffsetAt,
  batchSizeAt,
  crcAt,
  dataView,
  epochAt,
  MAGIC_V2,
  magicAt,
  maxTimestampAt,
} from './batch-fields.js';
import { type FileHandle, readFully } from './fs.js';
import { SparseIndex, TermRunList } from './segment-index.js';

export interface ScanParams {
  core: Core;
  pool?: CorePool | undefined;
  file: FileHandle;
  /** Bytes to scan from position 0 (the file's size). */
  fileBytes: number;
  baseOffset: number;
  /** The Raft log's start offset: batches from it on must be contiguous, with non-decreasing terms. */
  startOffset: number;
  indexIntervalBytes: number;
  chunkBytes: number;
  poolMinBytes: number;
}

export type ScanStopCode = CoreErrorCode | 'INCONSISTENT';

export interface SegmentScan {
  /** Length of the prefix made of whole, valid, consistent batches. */
  validBytes: number;
  batchCount: number;
  /** baseOffset of the first batch; -1 if none. */
  firstOffset: number;
  /** Last offset of the last valid batch; baseOffset - 1 if none. */
  lastOffset: number;
  maxTimestamp: number;
  lastBatchPosition: number;
  lastBatchCrc: number;
  /** Batches whose baseOffset is below params.startOffset (they precede the Raft log). */
  batchesBelowStart: number;
  index: SparseIndex;
  /** Term runs of the batches at or above the start offset (relative indexes count every batch). */
  runs: TermRunList;
  bytesSinceIndexEntry: number;
  /** Why the scan stopped before the end of the file; null if every byte was valid. */
  stop: { position: number; code: ScanStopCode; message: string } | null;
}

/** Largest batch the core accepts: a header claiming more is garbage, not a batch. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

export async function scanSegment(p: ScanParams): Promise<SegmentScan> {
  const out: SegmentScan = {
    validBytes: 0,
    batchCount: 0,
    firstOffset: -1,
    lastOffset: p.baseOffset - 1,
    maxTimestamp: -1,
    lastBatchPosition: 0,
    lastBatchCrc: 0,
    batchesBelowStart: 0,
    index: new SparseIndex(),
    runs: new TermRunList(),
    bytesSinceIndexEntry: 0,
    stop: null,
  };
  let lastTerm = -1;

  /** Walks whole validated batches in `buf` (file position `at`); returns bytes consumed (less on inconsistency). */
  const walk = (buf: Uint8Array, at: number): number => {
    const dv = dataView(buf);
    let q = 0;
    while (q < buf.length) {
      const size = batchSizeAt(dv, q);
      const base = baseOffsetAt(dv, q);
      const last = base + dv.getInt32(q + 23);
      const term = epochAt(dv, q);
      const inRaft = base >= p.startOffset;
      const why =
        base <= out.lastOffset
          ? `baseOffset ${base} does not follow ${out.lastOffset}`
          : inRaft && out.batchCount > 0 && out.lastOffset >= p.startOffset - 1 && base !== out.lastOffset + 1
            ? `baseOffset ${base} leaves a gap after ${out.lastOffset} in the Raft log`
            : inRaft && term < lastTerm
              ? `term ${term} after term ${lastTerm}`
              : null;
      if (why) {
        out.stop = { position: at + q, code: 'INCONSISTENT', message: why };
        return q;
      }
      const position = at + q;
      if (out.bytesSinceIndexEntry >= p.indexIntervalBytes && out.batchCount > 0) {
        out.index.add(base - p.baseOffset, position, out.batchCount);
        out.bytesSinceIndexEntry = 0;
      }
      out.bytesSinceIndexEntry += size;
      if (out.firstOffset < 0) out.firstOffset = base;
      if (inRaft) {
        out.runs.note(out.batchCount, term);
        lastTerm = term;
      } else {
        out.batchesBelowStart++;
      }
      out.lastOffset = last;
      out.maxTimestamp = Math.max(out.maxTimestamp, maxTimestampAt(dv, q));
      out.lastBatchPosition = position;
      out.lastBatchCrc = crcAt(dv, q);
      out.batchCount++;
      q += size;
    }
    return q;
  };

  const validate = async (buf: Uint8Array) => {
    if (p.pool && buf.length >= p.poolMinBytes) return p.pool.scanBatches(buf);
    return p.core.scanBatches(buf);
  };

  const end = p.fileBytes;
  // One chunk read ahead: [prefetchAt, prefetchAt + length).
  let prefetch: Promise<Uint8Array> | null = null;
  let prefetchAt = -1;
  const readAhead = (at: number): void => {
    prefetch = at < end ? readFully(p.file, at, Math.min(p.chunkBytes, end - at)) : null;
    prefetchAt = at;
  };
  /** Bytes from `at` on (at most a chunk), from the read-ahead when it covers `at`. */
  const chunkAt = async (at: number): Promise<Uint8Array> => {
    let buf: Uint8Array | null = null;
    if (prefetch && at >= prefetchAt) {
      const ahead = await prefetch;
      if (at < prefetchAt + ahead.length) buf = ahead.subarray(at - prefetchAt);
    }
    buf ??= await readFully(p.file, at, Math.min(p.chunkBytes, end - at));
    readAhead(at + buf.length);
    return buf;
  };

  let pos = 0; // file position of the first byte not yet validated
  let retriedAt = -1;
  while (pos < end) {
    const buf = await chunkAt(pos);
    if (buf.length === 0) break; // the file shrank under us: treat the rest as absent
    let scan = await validate(buf);
    pos += walk(buf.subarray(0, scan.validBytes), pos);
    out.validBytes = pos;
    if (out.stop) return out;
    if (scan.error === null) continue;
    // Stopped inside `buf`: a batch straddling the chunk's end, or a bad batch.
    const rest = buf.subarray(scan.validBytes);
    const size = rest.length >= 12 ? batchSizeAt(dataView(rest), 0) : -1;
    if (
      scan.error.code === 'TRUNCATED' &&
      size >= BATCH_HEADER_BYTES &&
      size <= MAX_BATCH_BYTES &&
      pos + size <= end
    ) {
      const whole = await readFully(p.file, pos, size);
      scan = await validate(whole);
      if (scan.error === null) {
        pos += walk(whole, pos);
        out.validBytes = pos;
        if (out.stop) return out;
        continue;
      }
    }
    if (retriedAt !== pos) {
      // A read can be faulty where the disk is not: read once more before judging the batch.
      retriedAt = pos;
      prefetch = null;
      continue;
    }
    out.stop = { position: pos, code: scan.error!.code, message: scan.error!.message };
    return out;
  }
  if (pos < end && !out.stop)
    out.stop = { position: pos, code: 'TRUNCATED', message: `file ends inside a batch at ${pos}` };
  return out;
}

/**
 * Looks for a whole valid batch starting anywhere in [from, end) of the file whose
 * baseOffset is above `afterOffset`. Finding one after a bad batch means the bad batch is
 * damage in the middle of the log, not a torn tail (a crash only harms the unsynced end).
 */
export async function findValidBatchAfter(
  core: Core,
  file: FileHandle,
  from: number,
  end: number,
  afterOffset: number,
  chunkBytes: number,
): Promise<{ position: number; baseOffset: number } | null> {
  for (let at = from; at < end; at += chunkBytes) {
    // Each window overlaps the next by a header, so a candidate header is never split.
    const buf = await readFully(file, at, Math.min(chunkBytes + BATCH_HEADER_BYTES, end - at));
    const dv = dataView(buf);
    const candidates = Math.min(chunkBytes, buf.length - BATCH_HEADER_BYTES + 1);
    for (let q = 0; q < candidates; q++) {
      // Cheap filters first: the magic byte, a length that fits, an offset that follows.
      if (magicAt(dv, q) !== MAGIC_V2) continue;
      const size = batchSizeAt(dv, q);
      if (size < BATCH_HEADER_BYTES || size > MAX_BATCH_BYTES || at + q + size > end) continue;
      const base = baseOffsetAt(dv, q);
      if (!Number.isSafeInteger(base) || !(base > afterOffset)) continue;
      const bytes = q + size <= buf.length ? buf.subarray(q, q + size) : await readFully(file, at + q, size);
      if (core.scanBatches(bytes).validBytes === size) return { position: at + q, baseOffset: base };
    }
  }
  return null;
}
