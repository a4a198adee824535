// Key compaction (Kafka's log cleaner, simplified): in the segments wholly below the Raft
// log start (applied and snapshotted), keep only the latest record of each key, drop
// tombstones (null values) older than the delete-retention time, and drop Raft control
// batches (they are not data). Offsets never change: a batch keeps its baseOffset and
// lastOffsetDelta, a record its offset; a batch left empty disappears (a gap in offsets).
//
// The work runs beside appends: reading and decoding are asynchronous (decoding on the
// CorePool when one is given), and only the final swap of each segment is queued with
// the flusher. Crash safety per segment: write `<base>.log.cleaned`, fsync; remove the
// old index; rename the cleaned file over `<base>.log` (atomic) and fsync the directory;
// write the new index. A crash leaves either the old segment or
// the new one (a leftover .cleaned is removed at open; a missing index is rebuilt).
import type { DecodedRecord } from '../../../core-wasm/src/index.js';
import { ATTR_CONTROL, attributesAt, dataView, lastOffsetAt, maxTimestampAt } from './batch-fields.js';
import { canRewrite, rewriteBatch } from './batch-rewrite.js';
import { StorageError } from './errors.js';
import { joinPath, removeIfExists } from './fs.js';
import type { GroupStorage } from './group-storage.js';
import { batchesAsync, Segment } from './segment.js';
import { NO_INDEX } from './segment-index.js';

export interface CompactionPolicy {
  /** Now, from the node's Clock (milliseconds since the epoch). */
  nowMs: number;
  /** Tombstones whose timestamp is older than nowMs - deleteRetentionMs are dropped. */
  deleteRetentionMs: number;
}

export interface CompactionResult {
  segmentsRewritten: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  batchesRemoved: number;
}

/** Inline decoding work between two yields to the event loop. */
const YIELD_EVERY_BYTES = 256 * 1024;

/** Map keys: the key bytes as a latin1 string (one char per byte, so distinct keys stay distinct). */
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export async function compactKeys(
  storage: GroupStorage,
  policy: CompactionPolicy,
): Promise<CompactionResult> {
  const result: CompactionResult = {
    segmentsRewritten: 0,
    bytesBefore: 0,
    bytesAfter: 0,
    recordsRemoved: 0,
    tombstonesRemoved: 0,
    batchesRemoved: 0,
  };
  const epoch = storage.generationEpoch;
  const eligible = storage
    .segmentsWhollyBelow(storage.manifest.snapshot.lastOffset + 1)
    .filter((s) => s.sealed && s.file && s.diskBytes === s.size);
  if (eligible.length === 0) return result;
  for (const seg of eligible) storage.pin(seg);
  try {
    const decode = async (batch: Uint8Array): Promise<DecodedRecord[]> =>
      storage.pool && batch.length >= storage.options.poolMinBytes
        ? storage.pool.decodeRecords(batch)
        : storage.core.decodeRecords(batch);
    const window = Math.max(64 * 1024, storage.options.scanChunkBytes);
    // Small batches decode inline; give the event loop a turn every so often so appends flow.
    let sinceYield = 0;
    const maybeYield = async (bytes: number): Promise<void> => {
      sinceYield += bytes;
      if (sinceYield < YIELD_EVERY_BYTES) return;
      sinceYield = 0;
      await new Promise<void>((resolve) => storage.schedule(resolve));
    };

    // Pass 1: the latest offset of every key.
    const latest = new Map<string, number>();
    for (const seg of eligible) {
      for await (const b of batchesAsync(seg, seg.file!, 0, seg.diskBytes, window)) {
        if ((attributesAt(dataView(b.bytes), 0) & ATTR_CONTROL) !== 0) continue;
        for (const r of await decodeChecked(storage, seg, b.position, b.bytes, decode)) {
          if (r.key) latest.set(keyString(r.key), r.offset);
        }
        await maybeYield(b.bytes.length);
      }
    }

    // Pass 2: rewrite each segment that loses something.
    const horizon = policy.nowMs - policy.deleteRetentionMs;
    for (const seg of eligible) {
      const out: Uint8Array[] = [];
      let changed = false;
      let stats = { records: 0, tombstones: 0, batches: 0 };
      for await (const b of batchesAsync(seg, seg.file!, 0, seg.diskBytes, window)) {
        const attributes = attributesAt(dataView(b.bytes), 0);
        if ((attributes & ATTR_CONTROL) !== 0) {
          changed = true;
          stats.batches++;
          continue;
        }
        if (!canRewrite(attributes)) {
          out.push(b.bytes.slice());
          continue;
        }
        const records = await decodeChecked(storage, seg, b.position, b.bytes, decode);
        await maybeYield(b.bytes.length);
        const kept = records.filter((r) => {
          if (!r.key) return true; // records without a key are not compacted
          if (latest.get(keyString(r.key)) !== r.offset) return false;
          if (r.value === null && r.timestamp < horizon) {
            stats.tombstones++;
            return false;
          }
          return true;
        });
        stats.records += records.length - kept.length;
        if (kept.length === records.length) out.push(b.bytes.slice());
        else if (kept.length === 0) stats.batches++;
        else
          out.push(
            await rewriteBatch(storage.core, storage.pool, storage.options.poolMinBytes, b.bytes, kept),
          );
        if (kept.length !== records.length) changed = true;
      }
      if (!changed) continue;
      const swapped = await swapSegment(storage, seg, out, epoch);
      if (!swapped) break; // the log was replaced meanwhile: stop
      result.segmentsRewritten++;
      result.bytesBefore += seg.size;
      result.bytesAfter += out.reduce((n, b) => n + b.length, 0);
      result.recordsRemoved += stats.records;
      result.tombstonesRemoved += stats.tombstones;
      result.batchesRemoved += stats.batches;
      stats = { records: 0, tombstones: 0, batches: 0 };
    }
  } finally {
    for (const seg of eligible) storage.unpin(seg);
  }
  return result;
}

async function decodeChecked(
  storage: GroupStorage,
  seg: Segment,
  position: number,
  batch: Uint8Array,
  decode: (b: Uint8Array) => Promise<DecodedRecord[]>,
): Promise<DecodedRecord[]> {
  try {
    return await decode(batch);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'UNSUPPORTED') throw e;
    storage.reportDamage({
      reason: 'read',
      lastIndexBefore: storage.lastIndex(),
      lastOffsetBefore: storage.lastOffset(),
      file: joinPath(`g${storage.manifest.generation}`, seg.logName),
      position,
      detail: `compaction could not decode a batch: ${(e as Error).message}`,
    });
    throw new StorageError('CORRUPT', `${seg.logName} at ${position}: ${(e as Error).message}`, e);
  }
}

/** Replaces `seg` by a segment holding `batches` (see the file comment for the steps). */
async function swapSegment(
  storage: GroupStorage,
  seg: Segment,
  batches: Uint8Array[],
  epoch: number,
): Promise<boolean> {
  const { fs, genDir } = storage;
  const cleanedPath = joinPath(genDir, `${seg.logName}.cleaned`);
  const fresh = new Segment(seg.baseOffset, NO_INDEX);
  fresh.compacted = true;
  for (const b of batches) {
    const dv = dataView(b);
    fresh.appendBatch(
      b,
      lastOffsetAt(dv, 0),
      maxTimestampAt(dv, 0),
      0,
      dv.getUint32(17),
      storage.options.indexIntervalBytes,
    );
  }
  // Compacted segments carry no Raft numbering or term runs.
  fresh.runs.relIndexes = [];
  fresh.runs.terms = [];
  fresh.pending = [];
  fresh.pendingIndexes = [];
  const file = await fs.open(cleanedPath, { create: true, truncate: true });
  let swapped = false;
  try {
    if (batches.length > 0) await file.write(batches, 0);
    await file.sync();
    swapped = await storage.enqueue(async () => {
      const slot = storage.segments.indexOf(seg);
      if (storage.generationEpoch !== epoch || slot < 0) return false;
      // The old index goes first; if its removal is lost in a crash, the trust rule rejects
      // it anyway (its footer names the old file's size and last batch).
      await removeIfExists(fs, joinPath(genDir, seg.indexName));
      seg.indexFile = 'none';
      await fs.rename(cleanedPath, joinPath(genDir, seg.logName));
      await fs.syncDir(genDir);
      fresh.file = file;
      fresh.diskBytes = fresh.size;
      fresh.flushedBytes = fresh.size;
      fresh.sealed = true;
      storage.segments[slot] = fresh;
      // The old file's name is gone; its handle closes when the last reader lets go (unpin).
      seg.removed = true;
      await storage.writeIndexFile(fresh);
      return true;
    });
  } finally {
    if (!swapped) {
      await file.close();
      await removeIfExists(fs, cleanedPath);
    }
  }
  return swapped;
}
