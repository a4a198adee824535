// Opening a log directory after a clean stop or a crash (DESIGN §3 "Recovery").
//
// 1. The manifest names the generation directory and where the log starts; files of other
//    generations and unfinished temporary files are leftovers of interrupted work: removed.
// 2. Segments wholly below the log start offset (retention that was interrupted) are removed.
// 3. Each sealed segment whose index file passes the trust rule (segment-index.ts) is taken
//    as is; every other segment, and always the last one, is scanned batch by batch.
// 4. Where a scan stops early it is either
//    - a torn tail: in the last segment, nothing valid follows (a crash only harms what was
//      not yet fsynced, which is always the end of the last segment): the tail is cut; or
//    - damage: a valid batch follows the bad one, or the bad batch is in a sealed segment
//      (fsynced before the next segment was created). The valid prefix is kept, the rest is
//      cut, and `possibleLoss` is reported: the node must not vote or stand for election
//      until it is repaired from the leader (DESIGN §6). Open still succeeds.
// 5. Raft indexes are assigned: the segment holding the log start offset gets its first
//    index from the manifest's snapshot index; later segments follow by batch count.
import type { Core, CorePool } from '../../../core-wasm/src/index.js';
import { BATCH_HEADER_BYTES, batchSizeAt, crcAt, dataView, lastOffsetAt } from './batch-fields.js';
import { type Damage, recordDamage } from './damage.js';
import {
  type FileHandle,
  type FileSystem,
  joinPath,
  readFile,
  readFully,
  removeIfExists,
  removeTreeIfPossible,
} from './fs.js';
import {
  emptyManifest,
  generationDir,
  loadManifest,
  type Manifest,
  parseGenerationName,
  saveManifest,
} from './manifest.js';
import type { StorageOptions } from './options.js';
import { findValidBatchAfter, scanSegment } from './scan.js';
import { Segment } from './segment.js';
import { decodeIndexFile, NO_INDEX, parseSegmentFileName } from './segment-index.js';
import { TermRuns } from './term-runs.js';

export type { Damage, DamageReason } from './damage.js';

export interface RecoveryReport {
  /**
   * The first damage found, or null. When set, the node may have lost entries or state it
   * acknowledged: it must not vote or stand for election until repaired (DESIGN §6).
   */
  possibleLoss: Damage | null;
  /** Every damage found, in the order found. */
  damage: Damage[];
  hardState: 'absent' | 'ok' | 'corrupt';
  /** Bytes cut from the end of the last segment as a torn write. */
  tornTailBytes: number;
  segmentsTrusted: number;
  segmentsScanned: number;
  bytesScanned: number;
  /** Leftover files removed (temporary files, other generations, stale indexes, orphan segments). */
  removed: string[];
  /**
   * Leftover directories that could not be removed yet, because a file in them is still
   * open elsewhere (a FUSE or NFS remnant, see fs.isLingeringRemnant); the next recovery
   * tries again.
   */
  kept: string[];
}

export interface RecoveredLog {
  manifest: Manifest;
  genDir: string;
  segments: Segment[];
  termRuns: TermRuns;
  firstIndex: number;
  lastIndex: number;
  nextOffset: number;
  logStartOffset: number;
}

export interface RecoveryContext {
  fs: FileSystem;
  core: Core;
  pool?: CorePool | undefined;
  dir: string;
  options: StorageOptions;
  report: RecoveryReport;
  /** No entry of the Raft log may have a larger term (the hard state's term bound); default: no bound. */
  maxTerm?: number;
}

export function emptyReport(): RecoveryReport {
  return {
    possibleLoss: null,
    damage: [],
    hardState: 'absent',
    tornTailBytes: 0,
    segmentsTrusted: 0,
    segmentsScanned: 0,
    bytesScanned: 0,
    removed: [],
    kept: [],
  };
}

/**
 * Reports damage, first making it durable (damage.ts): the caller cuts or resets what the
 * damage concerns only after this returns, so a crash in between cannot forget it.
 */
export async function noteDamage(ctx: RecoveryContext, d: Damage): Promise<void> {
  await recordDamage(ctx.fs, ctx.core, ctx.dir, d);
  ctx.report.damage.push(d);
  ctx.report.possibleLoss ??= d;
}

/** A generation number no directory of the group has used (leftovers of installs included). */
function nextGeneration(generations: number[]): number {
  return generations.length > 0 ? Math.max(...generations) + 1 : 0;
}

/** Creates generation `g`'s directory if it is not there, its name made durable. */
async function makeGenerationDir(ctx: RecoveryContext, g: number): Promise<string> {
  const genDir = generationDir(ctx.dir, g);
  if (!(await ctx.fs.exists(genDir))) {
    await ctx.fs.mkdir(genDir);
    await ctx.fs.syncDir(ctx.dir);
  }
  return genDir;
}

/** Finds or creates the manifest and the generation directory it names. */
async function openManifest(ctx: RecoveryContext): Promise<Manifest> {
  const { fs, core, dir, report } = ctx;
  const names = await fs.list(dir);
  const generations = names.map(parseGenerationName).filter((g): g is number => g !== null);
  const loaded = await loadManifest(fs, core, dir);
  let manifest: Manifest;
  if (loaded.kind === 'ok') {
    manifest = loaded.manifest;
  } else {
    // No usable manifest. If segments exist, the log's start is unknown: report, and start
    // an empty log in a new generation (the old files stay until the next open).
    let hadSegments = false;
    for (const g of generations) {
      const files = await fs.list(generationDir(dir, g));
      if (files.some((f) => parseSegmentFileName(f)?.ext === 'log')) hadSegments = true;
    }
    if (loaded.kind === 'corrupt' || hadSegments) {
      // Durable before the new manifest below forgets the old log.
      await noteDamage(ctx, {
        reason: 'manifest',
        lastIndexBefore: 0,
        lastOffsetBefore: -1,
        file: 'manifest',
        position: 0,
        detail:
          loaded.kind === 'corrupt'
            ? `manifest unreadable: ${loaded.why}`
            : 'manifest missing beside segments',
      });
    }
    manifest = emptyManifest(nextGeneration(generations));
  }
  await makeGenerationDir(ctx, manifest.generation);
  if (loaded.kind !== 'ok') await saveManifest(fs, core, dir, manifest);
  // Other generations are leftovers of an interrupted (or superseded) snapshot install.
  for (const g of generations) {
    if (g !== manifest.generation && loaded.kind === 'ok') {
      if (await removeTreeIfPossible(fs, generationDir(dir, g))) report.removed.push(`g${g}`);
      else report.kept.push(`g${g}`);
    }
  }
  return manifest;
}

/** Takes a sealed segment's index file if it passes the trust rule (segment-index.ts); false otherwise. */
async function trustIndex(
  ctx: RecoveryContext,
  genDir: string,
  seg: Segment,
  file: FileHandle,
  logBytes: number,
): Promise<boolean> {
  const bytes = await readFile(ctx.fs, joinPath(genDir, seg.indexName));
  if (!bytes) return false;
  const decoded = decodeIndexFile(ctx.core, bytes);
  if (!decoded) return false;
  const f = decoded.footer;
  if (f.baseOffset !== seg.baseOffset || f.logBytes !== logBytes || f.batchCount < 1) return false;
  if (f.lastBatchPosition + BATCH_HEADER_BYTES > logBytes) return false;
  const header = await readFully(file, f.lastBatchPosition, BATCH_HEADER_BYTES);
  if (header.length !== BATCH_HEADER_BYTES) return false;
  const dv = dataView(header);
  if (f.lastBatchPosition + batchSizeAt(dv, 0) !== logBytes) return false;
  if (crcAt(dv, 0) !== f.lastBatchCrc || lastOffsetAt(dv, 0) !== f.lastOffset) return false;
  seg.firstIndex = f.compacted ? NO_INDEX : f.firstIndex;
  seg.compacted = f.compacted;
  seg.batchCount = f.batchCount;
  seg.size = logBytes;
  seg.lastOffset = f.lastOffset;
  seg.maxTimestamp = f.maxTimestamp;
  seg.index = decoded.index;
  seg.runs = decoded.runs;
  seg.lastBatchPosition = f.lastBatchPosition;
  seg.lastBatchCrc = f.lastBatchCrc;
  seg.sealed = true;
  seg.indexFile = 'current';
  return true;
}

export async function recoverLog(ctx: RecoveryContext): Promise<RecoveredLog> {
  const { fs, core, dir, options, report } = ctx;
  const manifest = await openManifest(ctx);
  const genDir = generationDir(dir, manifest.generation);
  const snap = manifest.snapshot;
  const firstIndex = snap.index + 1;
  // Offsets from startOffset on belong to Raft entries (index ≥ firstIndex).
  const startOffset = snap.lastOffset + 1;

  // Sort the directory: segment logs, their indexes, and leftovers.
  const logs: number[] = [];
  const indexes = new Set<number>();
  for (const name of await fs.list(genDir)) {
    const seg = parseSegmentFileName(name);
    if (seg?.ext === 'log') logs.push(seg.baseOffset);
    else if (seg?.ext === 'index') indexes.add(seg.baseOffset);
    else if (name !== snap.stateFile) {
      // Temporary files (.tmp, .cleaned) and superseded snapshot state: interrupted or finished work.
      await removeIfExists(fs, joinPath(genDir, name));
      report.removed.push(name);
    }
  }
  logs.sort((a, b) => a - b);
  for (const base of indexes) {
    if (!logs.includes(base)) {
      const s = new Segment(base, NO_INDEX);
      await removeIfExists(fs, joinPath(genDir, s.indexName));
      report.removed.push(s.indexName);
    }
  }
  // Segments wholly below the log start: retention removed them from the manifest first.
  while (logs.length > 1 && logs[1]! <= manifest.logStartOffset) {
    const s = new Segment(logs.shift()!, NO_INDEX);
    await removeIfExists(fs, joinPath(genDir, s.indexName));
    await removeIfExists(fs, joinPath(genDir, s.logName));
    report.removed.push(s.logName);
  }

  // Trailing empty segments hold nothing: a roll whose first write never became durable.
  while (logs.length > 0) {
    const s = new Segment(logs[logs.length - 1]!, NO_INDEX);
    const f = await fs.open(joinPath(genDir, s.logName));
    const empty = (await f.size()) === 0;
    await f.close();
    if (!empty) break;
    logs.pop();
    await removeIfExists(fs, joinPath(genDir, s.indexName));
    await removeIfExists(fs, joinPath(genDir, s.logName));
    report.removed.push(s.logName);
  }

  const segments: Segment[] = [];
  const termRuns = new TermRuns();
  let raftSeen = false; // a segment holding the log start has been placed
  let cutAll = false; // damage in the Raft region: later segments are not part of the log
  // Damage took records below the Raft start that offset reads still served (see restartEmpty).
  let lostBelowStart = false;
  let lastTerm = snap.term;

  const dropFrom = async (i: number): Promise<void> => {
    for (let j = logs.length - 1; j >= i; j--) {
      const s = new Segment(logs[j]!, NO_INDEX);
      await removeIfExists(fs, joinPath(genDir, s.indexName));
      await removeIfExists(fs, joinPath(genDir, s.logName));
      report.removed.push(s.logName);
    }
  };

  for (let i = 0; i < logs.length && !cutAll; i++) {
    const base = logs[i]!;
    const isLast = i === logs.length - 1;
    const nextBase = isLast ? Number.POSITIVE_INFINITY : logs[i + 1]!;
    const prev = segments[segments.length - 1];
    const seg = new Segment(base, NO_INDEX);
    // O_DSYNC: appends to the last segment are durable when the write returns (group-storage.ts).
    const file = await fs.open(joinPath(genDir, seg.logName), { dsync: true });
    seg.file = file;
    const logBytes = await file.size();
    const whollyBelowStart = nextBase <= startOffset;
    const holdsStart = base <= startOffset && !whollyBelowStart;
    const expectedFirst =
      raftSeen && prev && prev.firstIndex !== NO_INDEX ? prev.firstIndex + prev.batchCount : NO_INDEX;

    let trusted = false;
    if (!isLast && options.recovery === 'tail' && indexes.has(base)) {
      trusted = await trustIndex(ctx, genDir, seg, file, logBytes);
      // A trusted index must also fit the chain of Raft indexes.
      if (trusted && raftSeen && seg.firstIndex !== expectedFirst) trusted = false;
      // And terms within the hard state's bound (a scan then finds the batch that is not).
      if (trusted && ctx.maxTerm !== undefined && seg.runs.terms.some((t) => t > ctx.maxTerm!))
        trusted = false;
      if (
        trusted &&
        holdsStart &&
        (seg.compacted || seg.firstIndex > firstIndex || seg.firstIndex + seg.batchCount < firstIndex)
      )
        trusted = false;
      if (!trusted) {
        seg.sealed = false;
        seg.indexFile = 'none';
        seg.compacted = false;
        seg.firstIndex = NO_INDEX;
      }
    }

    let damaged: { position: number; reason: 'corrupt-batch' | 'inconsistent-batch'; detail: string } | null =
      null;
    let batchesBelowStart = 0;
    /** Where to cut the segment once its damage is durably recorded (-1: no cut). */
    let cutAt = -1;
    if (trusted) {
      report.segmentsTrusted++;
    } else {
      if (indexes.has(base)) {
        await removeIfExists(fs, joinPath(genDir, seg.indexName));
        report.removed.push(seg.indexName);
      }
      const scan = await scanSegment({
        core,
        pool: ctx.pool,
        file,
        fileBytes: logBytes,
        baseOffset: base,
        startOffset,
        maxTerm: ctx.maxTerm,
        indexIntervalBytes: options.indexIntervalBytes,
        chunkBytes: options.scanChunkBytes,
        poolMinBytes: options.poolMinBytes,
      });
      report.segmentsScanned++;
      report.bytesScanned += scan.validBytes;
      seg.batchCount = scan.batchCount;
      seg.size = scan.validBytes;
      seg.lastOffset = scan.lastOffset;
      seg.maxTimestamp = scan.maxTimestamp;
      seg.index = scan.index;
      seg.runs = scan.runs;
      seg.bytesSinceIndexEntry = scan.bytesSinceIndexEntry;
      seg.lastBatchPosition = scan.lastBatchPosition;
      seg.lastBatchCrc = scan.lastBatchCrc;
      batchesBelowStart = scan.batchesBelowStart;
      if (scan.stop) {
        const after = await findValidBatchAfter(
          core,
          file,
          scan.stop.position + 1,
          logBytes,
          scan.lastOffset,
          options.scanChunkBytes,
        );
        // Only a batch cut short by the end of the last file is a torn write. A complete
        // batch that fails its CRC is damage even at the very end (see ARCHITECTURE).
        if (isLast && !after && scan.stop.code === 'TRUNCATED') {
          report.tornTailBytes += logBytes - scan.stop.position;
          // Cut the torn write, durably, so appends continue from the valid prefix.
          await file.truncate(scan.stop.position);
          await file.sync();
        } else {
          cutAt = scan.stop.position;
          const where = after
            ? `; a valid batch follows at ${after.position} (offset ${after.baseOffset})`
            : isLast
              ? ''
              : ' (in a sealed segment)';
          damaged = {
            position: scan.stop.position,
            reason: scan.stop.code === 'INCONSISTENT' ? 'inconsistent-batch' : 'corrupt-batch',
            detail: `${scan.stop.code}: ${scan.stop.message}${where}`,
          };
        }
      }
      if (scan.firstOffset >= 0 && scan.firstOffset < base && !damaged) {
        damaged = {
          position: 0,
          reason: 'inconsistent-batch',
          detail: `first batch offset ${scan.firstOffset} is below the file's base ${base}`,
        };
      }
    }

    // Offsets across segments: strictly increasing, contiguous in the Raft region.
    if (prev && seg.batchCount > 0 && base <= prev.lastOffset) {
      damaged ??= {
        position: 0,
        reason: 'inconsistent-batch',
        detail: `segment base ${base} overlaps the previous segment (last offset ${prev.lastOffset})`,
      };
    }
    if (prev && base > startOffset && prev.lastOffset >= startOffset - 1 && base !== prev.lastOffset + 1) {
      await noteDamage(ctx, {
        reason: 'missing-segment',
        lastIndexBefore:
          prev.firstIndex === NO_INDEX ? firstIndex - 1 : prev.firstIndex + prev.batchCount - 1,
        lastOffsetBefore: prev.lastOffset,
        file: seg.logName,
        position: 0,
        detail: `offsets jump from ${prev.lastOffset} to ${base}`,
      });
      await file.close();
      await dropFrom(i);
      break;
    }

    // Raft indexes.
    if (holdsStart) {
      if (!trusted) seg.firstIndex = firstIndex - batchesBelowStart;
      raftSeen = true;
    } else if (base > startOffset) {
      if (!raftSeen) {
        // The log start lies before every remaining segment: the segment holding it is gone,
        // and with it the records below the start it held.
        if (startOffset > Math.max(manifest.logStartOffset, prev ? prev.lastOffset + 1 : 0))
          lostBelowStart = true;
        await noteDamage(ctx, {
          reason: 'missing-segment',
          lastIndexBefore: firstIndex - 1,
          lastOffsetBefore: startOffset - 1,
          file: seg.logName,
          position: 0,
          detail: `the log starts at offset ${startOffset} but the first segment after it starts at ${base}`,
        });
        await file.close();
        await dropFrom(i);
        break;
      }
      if (!trusted) seg.firstIndex = expectedFirst;
    } else {
      seg.firstIndex = NO_INDEX;
    }
    // Terms never decrease along the log, across segments too.
    if (seg.firstIndex !== NO_INDEX) {
      const runs = seg.runs;
      for (let j = 0; j < runs.terms.length; j++) {
        const end =
          j + 1 < runs.terms.length
            ? seg.firstIndex + runs.relIndexes[j + 1]!
            : seg.firstIndex + seg.batchCount;
        if (end <= firstIndex) continue;
        if (runs.terms[j]! < lastTerm) {
          damaged ??= {
            position: 0,
            reason: 'inconsistent-batch',
            detail: `term ${runs.terms[j]} after term ${lastTerm}`,
          };
          break;
        }
        lastTerm = runs.terms[j]!;
      }
    }

    if (damaged) {
      // Recorded durably first: the cuts below forget what was there.
      await noteDamage(ctx, {
        reason: damaged.reason,
        lastIndexBefore:
          seg.firstIndex !== NO_INDEX
            ? Math.max(firstIndex - 1, seg.firstIndex + seg.batchCount - 1)
            : firstIndex - 1,
        lastOffsetBefore: seg.lastOffset,
        file: joinPath(`g${manifest.generation}`, seg.logName),
        position: damaged.position,
        detail: damaged.detail,
      });
      // Records below the Raft start that the cut (or the drop below) takes: the prefix kept
      // ends before the next segment's base, or before the start in the segment holding it.
      const wholeSegment = damaged.reason === 'inconsistent-batch' && damaged.position === 0;
      const keptLastOffset = wholeSegment ? base - 1 : seg.lastOffset;
      if (base < startOffset && keptLastOffset < Math.min(nextBase, startOffset) - 1) lostBelowStart = true;
      if (cutAt >= 0) {
        // Cut what follows the valid prefix, durably, so appends continue from it.
        await file.truncate(cutAt);
        await file.sync();
      }
      if (damaged.reason === 'inconsistent-batch' && damaged.position === 0) {
        // The whole segment does not fit: it and everything after it leave the log.
        await file.close();
        await dropFrom(i);
        break;
      }
      // Damage in a segment that still holds Raft entries cuts the log there; damage wholly
      // below the Raft log only loses that segment's tail (the Raft log after it is intact).
      if (!whollyBelowStart) {
        cutAll = true;
        await dropFrom(i + 1);
      }
      if (seg.indexFile === 'current') {
        await removeIfExists(fs, joinPath(genDir, seg.indexName));
        seg.indexFile = 'none';
      }
      seg.sealed = false;
    }
    if (seg.firstIndex !== NO_INDEX) {
      for (let j = 0; j < seg.runs.terms.length; j++) {
        const start = seg.firstIndex + seg.runs.relIndexes[j]!;
        const end =
          j + 1 < seg.runs.terms.length
            ? seg.firstIndex + seg.runs.relIndexes[j + 1]!
            : seg.firstIndex + seg.batchCount;
        if (end > firstIndex) termRuns.append(Math.max(start, firstIndex), seg.runs.terms[j]!);
      }
    }
    seg.diskBytes = seg.size;
    seg.flushedBytes = seg.size;
    // Every segment but the last is sealed; one without a trusted index gets it written later.
    if (!isLast && !cutAll) seg.sealed = true;
    segments.push(seg);
  }

  if (lostBelowStart) return restartEmpty(ctx, manifest, segments);

  // The last segment takes appends: it is not sealed, and an index file for it would go stale.
  const last = segments[segments.length - 1];
  if (last) {
    if (last.indexFile !== 'none') {
      await removeIfExists(fs, joinPath(genDir, last.indexName));
      report.removed.push(last.indexName);
      last.indexFile = 'none';
    }
    last.sealed = false;
  }
  let lastIndex = firstIndex - 1;
  let nextOffset = startOffset;
  for (const s of segments) {
    if (s.firstIndex !== NO_INDEX) lastIndex = Math.max(lastIndex, s.firstIndex + s.batchCount - 1);
    nextOffset = Math.max(nextOffset, s.lastOffset + 1);
  }
  const logStartOffset = Math.max(
    manifest.logStartOffset,
    segments[0]?.baseOffset ?? manifest.logStartOffset,
  );
  return {
    manifest,
    genDir,
    segments,
    termRuns,
    firstIndex,
    lastIndex,
    nextOffset: Math.max(nextOffset, logStartOffset),
    logStartOffset,
  };
}

/**
 * Damage took records below the Raft start that reads by offset still served (a partition
 * replica's data under its snapshot). Kept as it is, the log would go on at the snapshot's
 * offset past a hole that reads step over (a poll from offset 664 returned the batch at
 * 1277: simulator seed 9019), and nothing would ever fetch those records again: Raft's
 * repair restores entries after the snapshot only. So the log restarts empty in a new
 * generation, as after a lost manifest, and the node repairs it from the leader (a
 * snapshot with the data, then entries); the damage recorded before the cut covers the
 * snapshot's index, so the node does not vote until then. The old generation goes at the
 * next open.
 */
async function restartEmpty(ctx: RecoveryContext, old: Manifest, segments: Segment[]): Promise<RecoveredLog> {
  const { fs, core, dir } = ctx;
  for (const seg of segments) await seg.file?.close();
  const manifest = emptyManifest(nextGeneration([old.generation]));
  const genDir = await makeGenerationDir(ctx, manifest.generation);
  await saveManifest(fs, core, dir, manifest);
  return {
    manifest,
    genDir,
    segments: [],
    termRuns: new TermRuns(),
    firstIndex: 1,
    lastIndex: 0,
    nextOffset: 0,
    logStartOffset: 0,
  };
}
