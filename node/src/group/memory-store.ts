// An in-memory GroupStore: the node's tests run whole clusters in one process on it.
// Durability is immediate at sync() (resolved at the end of the turn, through the Clock),
// so it models no crash; crash semantics are node/storage's, tested there and in sim/.
//
// Snapshots hold the state machine's part and every batch through the snapshot index, so
// a follower that installs one can still serve reads of the offsets before it.
import { Packr } from 'msgpackr';
import type { Core } from '../../../core-wasm/src/index.js';
import {
  type ConfState,
  type Entry,
  type HardState,
  type LogWrite,
  MemoryLog,
  type SnapshotMeta,
} from '../../../raft/src/index.js';
import type { Clock } from '../seams/clock.js';
import type { GroupStore, OpenedState } from './store.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

interface Stored {
  index: number;
  baseOffset: number;
  lastOffset: number;
  /** The batch for normal entries; null for no-op and config entries (one offset each). */
  batch: Uint8Array | null;
}

export class MemoryGroupStore implements GroupStore {
  private log = new MemoryLog();
  /** Every entry's offsets, index order; batches kept for offset reads (snapshots keep them too). */
  private stored: Stored[] = [];
  private hard: HardState | undefined;
  private snapshot: { meta: SnapshotMeta; bytes: Uint8Array; state: Uint8Array } | undefined;
  private partial: { meta: SnapshotMeta; chunks: Uint8Array[]; bytes: number } | undefined;
  private lost: { lastIndexBeforeRepair: number } | undefined;
  private startOffset = 0;

  constructor(
    private readonly core: Core,
    private readonly clock: Clock,
  ) {}

  opened(): OpenedState {
    return {
      hardState: this.hard,
      snapshot: this.snapshot?.meta,
      snapshotState: this.snapshot?.state,
      partialSnapshot: this.partial
        ? { meta: this.partial.meta, receivedBytes: this.partial.bytes }
        : undefined,
      lostEntries: this.lost,
    };
  }

  /** Marks the store as having lost acknowledged entries (the marker only grows). */
  async markLostEntries(lastIndexBeforeRepair: number): Promise<void> {
    const have = this.lost?.lastIndexBeforeRepair ?? 0;
    this.lost = { lastIndexBeforeRepair: Math.max(have, lastIndexBeforeRepair) };
  }

  /** Memory does not rot: there is never damage to report. */
  onDamage(_listener: (detail: string) => void): () => void {
    return () => {};
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }
  lastIndex(): number {
    return this.log.lastIndex();
  }
  term(index: number): number | undefined {
    return this.log.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }

  write(w: LogWrite): void {
    if (w.truncateFrom !== undefined) {
      this.log.truncate(w.truncateFrom);
      while (this.stored.length > 0 && this.stored[this.stored.length - 1]!.index >= w.truncateFrom)
        this.stored.pop();
    }
    for (const e of w.entries) {
      const base = this.nextOffset();
      let last = base;
      let batch: Uint8Array | null = null;
      if (e.type === 'normal') {
        // Stamp in place, as node/storage does: the proposer's bytes become the stored bytes.
        this.core.stampBatch(e.data, 0, base, e.term);
        last = base + this.core.readBatchHeader(e.data, 0).lastOffsetDelta;
        batch = e.data;
      }
      this.stored.push({ index: e.index, baseOffset: base, lastOffset: last, batch });
    }
    this.log.write(w);
  }

  setHardState(hs: HardState): void {
    this.hard = { ...hs };
  }

  sync(): Promise<void> {
    return new Promise((resolve) => this.clock.defer(resolve));
  }

  logStartOffset(): number {
    return this.startOffset;
  }

  nextOffset(): number {
    const last = this.stored[this.stored.length - 1];
    return last === undefined ? this.startOffset : last.lastOffset + 1;
  }

  async read(offset: number, endOffset: number, maxBytes: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for (const s of this.stored) {
      if (s.lastOffset < offset || s.batch === null) continue;
      if (s.baseOffset >= endOffset) break;
      if (bytes > 0 && bytes + s.batch.length > maxBytes) break;
      parts.push(s.batch);
      bytes += s.batch.length;
    }
    return concat(parts, bytes);
  }

  async takeSnapshot(index: number, term: number, conf: ConfState, state: Uint8Array): Promise<SnapshotMeta> {
    const kept = this.stored.filter((s) => s.index <= index);
    const bytes = packr.pack({ state, stored: kept });
    const meta: SnapshotMeta = { index, term, conf, size: bytes.length };
    this.snapshot = { meta, bytes, state };
    this.log.compact(index);
    return meta;
  }

  async readSnapshotChunk(
    meta: SnapshotMeta,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    const s = this.snapshot;
    if (s === undefined || s.meta.index !== meta.index || s.meta.term !== meta.term) return undefined;
    return s.bytes.subarray(offset, offset + length);
  }

  snapshotToSend(): SnapshotMeta | undefined {
    return this.snapshot?.meta;
  }

  writeSnapshotChunk(meta: SnapshotMeta, offset: number, data: Uint8Array, _done: boolean): void {
    if (
      this.partial === undefined ||
      this.partial.meta.index !== meta.index ||
      this.partial.meta.term !== meta.term ||
      this.partial.meta.size !== meta.size
    ) {
      this.partial = { meta, chunks: [], bytes: 0 };
    }
    if (offset !== this.partial.bytes)
      throw new Error(`snapshot chunk at ${offset}, expected ${this.partial.bytes}`);
    this.partial.chunks.push(Uint8Array.from(data));
    this.partial.bytes += data.length;
  }

  discardPartialSnapshot(_meta: SnapshotMeta): void {
    this.partial = undefined;
  }

  async installSnapshot(meta: SnapshotMeta): Promise<Uint8Array> {
    const p = this.partial;
    if (p === undefined || p.meta.index !== meta.index || p.bytes !== meta.size) {
      throw new Error(`snapshot ${meta.index} is not fully received`);
    }
    const bytes = concat(p.chunks, p.bytes);
    const { state, stored } = packr.unpack(bytes) as { state: Uint8Array; stored: Stored[] };
    this.stored = stored;
    this.snapshot = { meta, bytes, state };
    this.partial = undefined;
    this.log = new MemoryLog({ index: meta.index, term: meta.term });
    return state;
  }

  // The in-memory store is for tests of the node's logic; it keeps every batch.
  async applyRetention(_maxBytes: number, _maxAgeMs: number, _nowMs: number): Promise<void> {}
  async compactKeys(_deleteRetentionMs: number, _nowMs: number): Promise<void> {}

  clearLostEntries(): void {
    this.lost = undefined;
  }

  async close(): Promise<void> {}
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
