// A segment's sparse index and term runs, in memory and as the `<baseOffset>.index` file.
//
// Index entry i says: the batch at byte `positions[i]` of the segment starts at offset
// `baseOffset + relOffsets[i]` and is the segment's batch number `relIndexes[i]` (its
// Raft index is the segment's firstIndex + relIndexes[i]). Entries are added every
// ~indexIntervalBytes of log, so finding a batch reads at most about that many bytes.
// All three arrays are sorted ascending, which is what core.searchIndex needs.
//
// Term runs say: from batch `runRelIndexes[j]` on, batches carry term `runTerms[j]`
// (terms never decrease along a Raft log, so a segment has few runs).
//
// The file is written once, when the segment is sealed and its data is durable:
//
//   entries   entryCount × (relOffset u32, position u32, relIndex u32)
//   runs      runCount × (relIndex u32, term u32)
//   footer    magic 'CIDX' u32 | version u16 | flags u16 | baseOffset f64 | firstIndex f64 |
//             batchCount u32 | logBytes u32 | lastOffset f64 | maxTimestamp f64 |
//             lastBatchPosition u32 | lastBatchCrc u32 | entryCount u32 | runCount u32 |
//             crc32c u32 of everything before it
//
// Trust rule (recovery 'tail'): the file is used instead of scanning the segment only if
// its CRC holds, it names this segment, `logBytes` equals the log file's size, and the
// batch at `lastBatchPosition` ends the file with the recorded CRC and last offset. A
// stale index (for a log that was since truncated or rewritten) fails one of these; any
// failure means "rebuild by scanning", never an error.
import type { Core } from '../../../core-wasm/src/index.js';
import { magic } from './envelope.js';

const INDEX_MAGIC = magic('CIDX');
const INDEX_VERSION = 1;
const ENTRY_BYTES = 12;
const RUN_BYTES = 8;
export const INDEX_FOOTER_BYTES = 68;
/** firstIndex of a segment whose batches are not Raft entries any more (wholly below the Raft log start, maybe compacted). */
export const NO_INDEX = -1;
const FLAG_COMPACTED = 1;

function grow(a: Uint32Array<ArrayBuffer>, need: number): Uint32Array<ArrayBuffer> {
  if (need <= a.length) return a;
  const b = new Uint32Array(Math.max(need, a.length * 2, 16));
  b.set(a);
  return b;
}

export class SparseIndex {
  relOffsets: Uint32Array<ArrayBuffer> = new Uint32Array(16);
  positions: Uint32Array<ArrayBuffer> = new Uint32Array(16);
  relIndexes: Uint32Array<ArrayBuffer> = new Uint32Array(16);
  count = 0;

  add(relOffset: number, position: number, relIndex: number): void {
    // Invariant: entries ascend in all three columns.
    if (this.count > 0) {
      const last = this.count - 1;
      if (
        !(
          relOffset > this.relOffsets[last]! &&
          position > this.positions[last]! &&
          relIndex > this.relIndexes[last]!
        )
      )
        throw new Error(`sparse index entries must ascend (${relOffset}, ${position}, ${relIndex})`);
    }
    const n = this.count + 1;
    this.relOffsets = grow(this.relOffsets, n);
    this.positions = grow(this.positions, n);
    this.relIndexes = grow(this.relIndexes, n);
    this.relOffsets[this.count] = relOffset;
    this.positions[this.count] = position;
    this.relIndexes[this.count] = relIndex;
    this.count = n;
  }

  /** Drops the entries for batches at or after `position` (a truncation). */
  truncateAtPosition(position: number): void {
    while (this.count > 0 && this.positions[this.count - 1]! >= position) this.count--;
  }

  /** Where to start walking to find the batch holding relative offset `rel`: [position, relIndex]. */
  floorByOffset(core: Core, rel: number): [number, number] {
    const slot = core.searchIndex(this.relOffsets, this.count, rel);
    return slot < 0 ? [0, 0] : [this.positions[slot]!, this.relIndexes[slot]!];
  }

  /** Where to start walking to find batch number `relIndex`: [position, relIndex]. */
  floorByRelIndex(core: Core, relIndex: number): [number, number] {
    const slot = core.searchIndex(this.relIndexes, this.count, relIndex);
    return slot < 0 ? [0, 0] : [this.positions[slot]!, this.relIndexes[slot]!];
  }
}

/** Term runs of one segment, relative to its first batch. */
export class TermRunList {
  relIndexes: number[] = [];
  terms: number[] = [];

  /** Records that batch `relIndex` has `term` (called for every batch, in order). */
  note(relIndex: number, term: number): void {
    const n = this.terms.length;
    if (n === 0 || this.terms[n - 1] !== term) {
      this.relIndexes.push(relIndex);
      this.terms.push(term);
    }
  }
}

export interface IndexFooter {
  baseOffset: number;
  firstIndex: number;
  compacted: boolean;
  batchCount: number;
  logBytes: number;
  lastOffset: number;
  maxTimestamp: number;
  lastBatchPosition: number;
  lastBatchCrc: number;
}

export interface IndexFile {
  footer: IndexFooter;
  index: SparseIndex;
  runs: TermRunList;
}

export function encodeIndexFile(
  core: Core,
  footer: IndexFooter,
  index: SparseIndex,
  runs: TermRunList,
): Uint8Array {
  const runCount = runs.terms.length;
  const total = index.count * ENTRY_BYTES + runCount * RUN_BYTES + INDEX_FOOTER_BYTES;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let p = 0;
  for (let i = 0; i < index.count; i++, p += ENTRY_BYTES) {
    dv.setUint32(p, index.relOffsets[i]!);
    dv.setUint32(p + 4, index.positions[i]!);
    dv.setUint32(p + 8, index.relIndexes[i]!);
  }
  for (let j = 0; j < runCount; j++, p += RUN_BYTES) {
    dv.setUint32(p, runs.relIndexes[j]!);
    dv.setUint32(p + 4, runs.terms[j]!);
  }
  dv.setUint32(p, INDEX_MAGIC);
  dv.setUint16(p + 4, INDEX_VERSION);
  dv.setUint16(p + 6, footer.compacted ? FLAG_COMPACTED : 0);
  dv.setFloat64(p + 8, footer.baseOffset);
  dv.setFloat64(p + 16, footer.firstIndex);
  dv.setUint32(p + 24, footer.batchCount);
  dv.setUint32(p + 28, footer.logBytes);
  dv.setFloat64(p + 32, footer.lastOffset);
  dv.setFloat64(p + 40, footer.maxTimestamp);
  dv.setUint32(p + 48, footer.lastBatchPosition);
  dv.setUint32(p + 52, footer.lastBatchCrc);
  dv.setUint32(p + 56, index.count);
  dv.setUint32(p + 60, runCount);
  dv.setUint32(p + 64, core.crc32c(out.subarray(0, p + 64)));
  return out;
}

/** The decoded file, or null if it is not a whole, intact index file. */
export function decodeIndexFile(core: Core, bytes: Uint8Array): IndexFile | null {
  if (bytes.length < INDEX_FOOTER_BYTES) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = bytes.length - INDEX_FOOTER_BYTES;
  if (dv.getUint32(f) !== INDEX_MAGIC || dv.getUint16(f + 4) !== INDEX_VERSION) return null;
  if (core.crc32c(bytes.subarray(0, f + 64)) !== dv.getUint32(f + 64)) return null;
  const entryCount = dv.getUint32(f + 56);
  const runCount = dv.getUint32(f + 60);
  if (entryCount * ENTRY_BYTES + runCount * RUN_BYTES !== f) return null;
  const index = new SparseIndex();
  let p = 0;
  for (let i = 0; i < entryCount; i++, p += ENTRY_BYTES) {
    const rel = dv.getUint32(p);
    const pos = dv.getUint32(p + 4);
    const ri = dv.getUint32(p + 8);
    const last = index.count - 1;
    if (
      last >= 0 &&
      !(rel > index.relOffsets[last]! && pos > index.positions[last]! && ri > index.relIndexes[last]!)
    )
      return null;
    index.add(rel, pos, ri);
  }
  const runs = new TermRunList();
  for (let j = 0; j < runCount; j++, p += RUN_BYTES) {
    runs.relIndexes.push(dv.getUint32(p));
    runs.terms.push(dv.getUint32(p + 4));
  }
  return {
    footer: {
      baseOffset: dv.getFloat64(f + 8),
      firstIndex: dv.getFloat64(f + 16),
      compacted: (dv.getUint16(f + 6) & FLAG_COMPACTED) !== 0,
      batchCount: dv.getUint32(f + 24),
      logBytes: dv.getUint32(f + 28),
      lastOffset: dv.getFloat64(f + 32),
      maxTimestamp: dv.getFloat64(f + 40),
      lastBatchPosition: dv.getUint32(f + 48),
      lastBatchCrc: dv.getUint32(f + 52),
    },
    index,
    runs,
  };
}

/** File names: the base offset zero-padded to 20 digits (as Kafka), so names sort like offsets. */
export function segmentFileName(baseOffset: number, ext: 'log' | 'index'): string {
  return `${String(baseOffset).padStart(20, '0')}.${ext}`;
}

/** The base offset a segment file name stands for, or null if the name is not one. */
export function parseSegmentFileName(name: string): { baseOffset: number; ext: 'log' | 'index' } | null {
  const m = /^(\d{20})\.(log|index)$/.exec(name);
  if (!m) return null;
  const baseOffset = Number(m[1]);
  return Number.isSafeInteger(baseOffset) ? { baseOffset, ext: m[2] as 'log' | 'index' } : null;
}
