// Validating a segment file from its start: every batch's length, magic and CRC (in
// core-wasm, on the pool for big chunks), plus what the CRC does not cover (baseOffset,
// batchLength, partitionLeaderEpoch), checked for consistency: offsets strictly increase,
// and in the Raft region offsets are contiguous and terms never decrease. The walk
// rebuilds the sparse index and term runs as it goes.
//
// The file is read in chunks with the next chunk's read in flight while the current one
// is validated, so disk and CPU overlap. A batch that straddles two chunks is completed
// from the next chunk (one batch is copied, never a chunk).
import type { Core, CoreErrorCode, CorePool, ScanResult } from '../../../core-wasm/src/index.js';
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
import { READ_ATTEMPTS } from './options.js';
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
  /**
   * No batch of the Raft log may have a larger term: the bound the hard state recorded
   * before any entry of a larger term was written (hard-state.ts). Infinity: unknown.
   */
  maxTerm?: number;
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

/** Chunks validated at once on the pool (each holds a chunk's buffer). */
const POOL_DEPTH = 3;

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
  const maxTerm = p.maxTerm ?? Number.POSITIVE_INFINITY;

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
      // The next offset the log can hold here: out.lastOffset starts at the file's base - 1,
      // so the first batch of a segment is held to the offset in the file's name. From the
      // Raft start on, offsets are contiguous (the leader stamps last + 1); below it
      // (compacted or received data) they only increase, and a batch never straddles it
      // (the start follows a whole entry).
      const expected = out.lastOffset + 1;
      const why =
        base < expected
          ? `baseOffset ${base} does not follow ${out.lastOffset}`
          : expected >= p.startOffset && base !== expected
            ? `baseOffset ${base} leaves a gap after ${out.lastOffset} in the Raft log`
            : expected < p.startOffset && inRaft && base !== p.startOffset
              ? `baseOffset ${base} is past the Raft log's start ${p.startOffset}`
              : !inRaft && last >= p.startOffset
                ? `batch ${base}..${last} straddles the Raft log's start ${p.startOffset}`
                : inRaft && term < lastTerm
                  ? `term ${term} after term ${lastTerm}`
                  : inRaft && term > maxTerm
                    ? `term ${term} is above every term the hard state allowed (${maxTerm})`
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

  const validate = async (buf: Uint8Array): Promise<ScanResult> => {
    if (p.pool && buf.length >= p.poolMinBytes) return p.pool.scanBatches(buf);
    return p.core.scanBatches(buf);
  };

  /** Bytes of whole batches at the start of `buf`, by their length fields alone (validation follows). */
  const wholeBatches = (buf: Uint8Array): number => {
    const dv = dataView(buf);
    let q = 0;
    while (q + 12 <= buf.length) {
      const size = batchSizeAt(dv, q);
      if (size < BATCH_HEADER_BYTES || size > MAX_BATCH_BYTES || q + size > buf.length) break;
      q += size;
    }
    return q;
  };

  // The pipeline: the next chunk is read (on libuv's threads) while this one is validated
  // (inline, or on the pool with up to POOL_DEPTH chunks in flight). Chunks are cut at
  // batch boundaries found from the length fields, so each validates on its own.
  const end = p.fileBytes;
  const depth = p.pool ? POOL_DEPTH : 1;
  let retryAt = -1;
  let attempts = 0;
  let from = 0;
  for (;;) {
    const jobs: { at: number; buf: Uint8Array; result: Promise<ScanResult> }[] = [];
    let readAt = from;
    let next: Promise<Uint8Array> | null =
      readAt < end ? readFully(p.file, readAt, Math.min(p.chunkBytes, end - readAt)) : null;
    let failedAt = -1;
    /** Takes the oldest job's result; false once the scan stopped. */
    const settle = async (): Promise<boolean> => {
      const job = jobs.shift()!;
      const scan = await job.result;
      const walked = walk(job.buf.subarray(0, scan.validBytes), job.at);
      out.validBytes = job.at + walked;
      if (out.stop) {
        // Header fields outside the CRC do not fit: read again too (a flipped bit in transit).
        failedAt = out.stop.position;
        return false;
      }
      if (scan.error) {
        failedAt = job.at + scan.validBytes;
        out.stop = { position: failedAt, code: scan.error.code, message: scan.error.message };
        return false;
      }
      return true;
    };
    let running = true;
    while (next && running) {
      const at = readAt;
      let chunk = await next;
      let cut = wholeBatches(chunk);
      if (cut === 0 && chunk.length >= 12) {
        // A batch larger than a chunk: read it whole if the file holds it.
        const size = batchSizeAt(dataView(chunk), 0);
        if (
          size >= BATCH_HEADER_BYTES &&
          size <= MAX_BATCH_BYTES &&
          at + size <= end &&
          size > chunk.length
        ) {
          chunk = await readFully(p.file, at, size);
          cut = chunk.length === size ? size : 0;
        }
      }
      if (cut === 0) {
        // Not a whole batch: validate what is there to learn why (torn, or damaged).
        jobs.push({ at, buf: chunk, result: validate(chunk.length > 0 ? chunk : new Uint8Array(1)) });
        next = null;
      } else {
        readAt = at + cut;
        next = readAt < end ? readFully(p.file, readAt, Math.min(p.chunkBytes, end - readAt)) : null;
        jobs.push({ at, buf: chunk.subarray(0, cut), result: validate(chunk.subarray(0, cut)) });
      }
      while (running && jobs.length > 0 && (jobs.length >= depth || next === null)) running = await settle();
    }
    // Let jobs still in flight finish before returning or retrying (their buffers are ours).
    await Promise.allSettled(jobs.map((j) => j.result));
    if (out.stop === null || failedAt < 0) break;
    // A read can be faulty where the disk is not: read again from the failure before judging it.
    attempts = retryAt === failedAt ? attempts + 1 : 1;
    retryAt = failedAt;
    if (attempts >= READ_ATTEMPTS) break;
    out.stop = null;
    from = failedAt;
  }
  if (out.validBytes < end && !out.stop)
    out.stop = {
      position: out.validBytes,
      code: 'TRUNCATED',
      message: `file ends inside a batch at ${out.validBytes}`,
    };
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
