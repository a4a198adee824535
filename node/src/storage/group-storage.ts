// The storage of one Raft group: its segmented log, hard state, snapshot record, and the
// LogReader view the Raft core reads.
//
// The view and the disk:
//   append / truncateSuffix / setHardState change the in-memory view at once (synchronously),
//   so the LogReader reflects them before the next call into the Raft core; the disk work
//   is queued. A flush takes everything queued (group commit: all the appends of one turn
//   and more, up to maxFlushBytes), does one write and one fdatasync per file touched, and
//   then reports durability: "entries through index i (term t) and hard state version v
//   are durable". Flushes run one at a time, in order, so a truncation waits for the
//   writes before it, and the writes after it wait for the truncation.
//
// Orderings that matter (why-notes):
// - A segment is fsynced before the next segment gets its first write, so only the end of
//   the last segment can ever be torn (recovery relies on it to tell damage from a crash).
// - A new segment's directory entry is fsynced before anything in it is reported durable.
// - A suffix truncation is made durable (truncate + fdatasync) before new bytes are written
//   over the cut, so old bytes can never reappear behind new ones after a crash.
// - Hard state is written whole (write-new + fsync + rename + dir fsync) and reported
//   durable only after the directory fsync.
import type { Core, CorePool } from '../../../core-wasm/src/index.js';
import type { Entry, HardState, LogReader, SnapshotMeta } from '../../../raft/src/types.js';
import { baseOffsetAt, crcAt, dataView, lastOffsetAt, maxTimestampAt } from './batch-fields.js';
import { type CompactionPolicy, type CompactionResult, compactKeys } from './compaction.js';
import { clearDamageRecord, type Damage, loadDamageRecord, unreadableRecord } from './damage.js';
import { fromStoredBatch, toStoredBatch } from './entry-codec.js';
import { CorruptRead, invariant, StorageError } from './errors.js';
import { dirName, type FileSystem, joinPath, readFileDecoded, readFully, removeIfExists } from './fs.js';
import { checkHardState, loadHardState, saveHardState } from './hard-state.js';
import { type Manifest, type SnapshotRecord, saveManifest } from './manifest.js';
import { READ_ATTEMPTS, resolveOptions, type StorageOptions } from './options.js';
import {
  emptyReport,
  noteDamage,
  type RecoveredLog,
  type RecoveryContext,
  type RecoveryReport,
  recoverLog,
} from './recovery.js';
import { batchesAsync, batchesSync, Segment } from './segment.js';
import { encodeIndexFile, NO_INDEX } from './segment-index.js';
import { openSnapshotReader, receiveSnapshot, type SnapshotReader, type SnapshotWriter } from './snapshot.js';
import type { TermRuns } from './term-runs.js';

export interface OpenParams {
  fs: FileSystem;
  /** The group's directory (created if missing; its parent must exist). */
  dir: string;
  core: Core;
  /** For large work: recovery scans, compaction. Optional: without it the in-thread core does everything. */
  pool?: CorePool;
  options?: Partial<StorageOptions>;
  /**
   * Runs a flush after the current turn, so that appends of one turn share a write and an
   * fsync. Default: setImmediate. The simulator passes its own (no real timers there).
   */
  schedule?: (run: () => void) => void;
}

/** Where an appended entry landed. */
export interface AppendedEntry {
  index: number;
  baseOffset: number;
  lastOffset: number;
}

/** What is durable: entries [firstIndex, index] (entry `index` has `term`) and hard state `hardStateVersion`. */
export interface Durability {
  index: number;
  term: number;
  hardStateVersion: number;
}

export interface ReadResult {
  /** Whole batches as stored (never re-encoded); the first may start before the requested offset. */
  bytes: Uint8Array;
  /** The offset after the last batch returned: where the next read continues. */
  nextOffset: number;
}

export interface ReadOptions {
  /** Byte budget (at least one batch is returned); capped by options.maxReadBytes. */
  maxBytes?: number;
  /** Return only batches whose offsets are below this (e.g. the committed offset). */
  endOffset?: number;
}

/** A snapshot as recorded: where the Raft log starts and the node's state blob. */
export interface StoredSnapshot {
  meta: SnapshotMeta;
  /** Last offset the snapshot covers. */
  lastOffset: number;
  /** The node's opaque state (producer table, consumer offsets; the catalog for group 0), or null. */
  state: Uint8Array | null;
}

interface CachedEntry {
  entry: Entry;
  stored: Uint8Array;
  baseOffset: number;
  lastOffset: number;
  segment: Segment;
  position: number;
}

interface Waiter {
  index: number;
  term: number | undefined;
  hardStateVersion: number;
  resolve: (ok: boolean) => void;
  reject: (e: unknown) => void;
}

type Listener<T> = (value: T) => void;

/** Reads go through windows of this size range (larger budgets take several windows). */
const READ_WINDOW_MIN_BYTES = 64 * 1024;
const READ_WINDOW_MAX_BYTES = 1024 * 1024;

export class GroupStorage implements LogReader {
  /** @internal */ readonly fs: FileSystem;
  /** @internal */ readonly core: Core;
  /** @internal */ readonly pool: CorePool | undefined;
  /** @internal */ readonly dir: string;
  /** @internal */ readonly options: StorageOptions;
  /** @internal */ readonly schedule: (run: () => void) => void;

  /** @internal */ manifest!: Manifest;
  /** @internal */ genDir!: string;
  /** @internal Sorted by baseOffset; data segments (below the Raft log) first. */
  segments: Segment[] = [];
  private termRuns!: TermRuns;
  private first = 1;
  private last = 0;
  private next = 0;
  private logStart = 0;
  private prevTerm = 0;
  /** @internal Bumped when the whole log is replaced (snapshot install): long work started before must not apply. */
  generationEpoch = 0;

  // Tail cache: entries [cacheFirst, last], contiguous. Invariant: every entry above
  // durableIndex is in it (its bytes may not be readable from the file yet).
  private cache: CachedEntry[] = [];
  private cacheHead = 0;
  private cachedBytes = 0;

  private durableIndex = 0;
  /** Lowest index - 1 truncated since the running flush captured its work (clamps what it may report). */
  private truncClamp = Number.POSITIVE_INFINITY;
  private hs: HardState = { term: 0, vote: 0, commit: 0 };
  private hsVersion = 0;
  private hsDurableVersion = 0;
  private hsDirty = false;
  /**
   * No entry on disk has a larger term (hard-state.ts): raised before an entry above it is
   * written, never lowered; it is written with every hard state.
   */
  private termBound = 0;
  /** The bound the durable hard-state file holds; Infinity when unknown (no write is forced then). */
  private termBoundDurable = Number.POSITIVE_INFINITY;

  /** @internal Segments that left the view and whose files the next flush removes. */
  doomed: Segment[] = [];
  /** Settles once `replaceLog` has adopted its new view; reads by offset wait for it. */
  private replacing: Promise<void> | null = null;
  private flushScheduled = false;
  private queue: Promise<void> = Promise.resolve();
  private failure: StorageError | null = null;
  private closing = false;
  private readonly durableListeners = new Set<Listener<Durability>>();
  private readonly damageListeners = new Set<Listener<Damage>>();
  private readonly failureListeners = new Set<Listener<StorageError>>();
  private waiters: Waiter[] = [];
  private readonly damageFound: Damage[] = [];

  private constructor(p: OpenParams) {
    this.fs = p.fs;
    this.core = p.core;
    this.pool = p.pool;
    this.dir = p.dir;
    this.options = resolveOptions(p.options);
    this.schedule = p.schedule ?? ((run) => setImmediate(run));
  }

  /**
   * Opens (recovering after a crash) or creates the group's storage. Never fails on damaged
   * data: damage is in `report.possibleLoss` (the node must not vote until repaired).
   */
  static async open(p: OpenParams): Promise<{ storage: GroupStorage; report: RecoveryReport }> {
    const s = new GroupStorage(p);
    const report = emptyReport();
    if (!(await p.fs.exists(p.dir))) {
      await p.fs.mkdir(p.dir);
      await p.fs.syncDir(dirName(p.dir));
    }
    // Damage found at an earlier open and not repaired since is reported again, first.
    const recorded = await loadDamageRecord(p.fs, p.core, p.dir);
    if (recorded.kind !== 'absent') {
      const earlier = recorded.kind === 'ok' ? recorded.damage : [unreadableRecord(recorded.why)];
      for (const d of earlier)
        report.damage.push({ ...d, detail: `not repaired since an earlier open: ${d.detail}` });
      report.possibleLoss = report.damage[0]!;
    }
    const hsLoad = await loadHardState(p.fs, p.core, p.dir);
    report.hardState = hsLoad.kind;
    if (hsLoad.kind === 'ok') s.hs = hsLoad.hardState;
    const ctx: RecoveryContext = {
      fs: p.fs,
      core: p.core,
      pool: p.pool,
      dir: p.dir,
      options: s.options,
      report,
      // Without a hard-state file (a new log) or with an unreadable one, there is no bound.
      maxTerm: hsLoad.kind === 'ok' ? hsLoad.termBound : Number.POSITIVE_INFINITY,
    };
    const recovered = await recoverLog(ctx);
    if (hsLoad.kind === 'corrupt') {
      // Recorded before the node can overwrite the unreadable file with a new hard state.
      await noteDamage(ctx, {
        reason: 'hard-state',
        lastIndexBefore: recovered.lastIndex,
        lastOffsetBefore: recovered.nextOffset - 1,
        file: 'state',
        position: 0,
        detail: `hard state unreadable (${hsLoad.why}): term and vote are unknown`,
      });
    }
    s.adopt(recovered);
    // From now on every term written raises the bound first. It starts above every term on
    // disk (the view is the disk now) and the durable hard state's.
    s.termBound = Math.max(
      s.hs.term,
      s.term(s.last) ?? 0,
      hsLoad.kind === 'ok' && Number.isFinite(hsLoad.termBound) ? hsLoad.termBound : 0,
    );
    s.termBoundDurable =
      hsLoad.kind === 'ok' ? hsLoad.termBound : hsLoad.kind === 'absent' ? 0 : Number.POSITIVE_INFINITY;
    // Bytes read back may still sit only in the page cache (a process restart, not a power
    // loss): make them durable before they count as durable.
    const lastSeg = s.segments[s.segments.length - 1];
    if (lastSeg?.file) await lastSeg.file.sync();
    await p.fs.syncDir(s.genDir);
    await p.fs.syncDir(p.dir);
    s.damageFound.push(...report.damage);
    // Sealed segments without a trusted index get one in the background.
    s.scheduleFlush();
    return { storage: s, report };
  }

  /** @internal Takes a recovered log as the view (at open, and after a snapshot install). */
  adopt(r: RecoveredLog): void {
    this.manifest = r.manifest;
    this.genDir = r.genDir;
    this.segments = r.segments;
    this.termRuns = r.termRuns;
    this.first = r.firstIndex;
    this.last = r.lastIndex;
    this.next = r.nextOffset;
    this.logStart = r.logStartOffset;
    this.prevTerm = r.manifest.snapshot.term;
    this.cache = [];
    this.cacheHead = 0;
    this.cachedBytes = 0;
    this.durableIndex = r.lastIndex;
  }

  // ---- LogReader -------------------------------------------------------------------

  firstIndex(): number {
    return this.first;
  }

  lastIndex(): number {
    return this.last;
  }

  term(index: number): number | undefined {
    if (index === this.first - 1) return this.prevTerm;
    if (index < this.first || index > this.last || !Number.isInteger(index)) return undefined;
    return this.termRuns.termAt(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.checkUsable();
    if (
      !(Number.isInteger(lo) && Number.isInteger(hi) && this.first <= lo && lo <= hi && hi <= this.last + 1)
    )
      throw new StorageError(
        'INDEX_OUT_OF_RANGE',
        `entries [${lo}, ${hi}) outside [${this.first}, ${this.last + 1})`,
      );
    const limit = Math.min(maxBytes, this.options.maxReadBytes);
    const out: Entry[] = [];
    const bytes = { n: 0 };
    const cacheFirst = this.cacheFirstIndex();
    let i = lo;
    if (i < cacheFirst) {
      const stop = Math.min(hi, cacheFirst);
      i = this.retryingRead(() => {
        out.length = 0;
        bytes.n = 0;
        return this.readEntriesSync(lo, stop, limit, out, bytes);
      });
      if (i < stop) return out;
    }
    for (; i < hi; i++) {
      const c = this.cache[this.cacheHead + (i - cacheFirst)]!;
      const size = c.entry.data.length;
      if (out.length > 0 && bytes.n + size > limit) break;
      out.push(c.entry);
      bytes.n += size;
    }
    return out;
  }

  // ---- the tail --------------------------------------------------------------------

  /** The offset the next appended batch gets. */
  nextOffset(): number {
    return this.next;
  }

  /** The last offset in the log (nextOffset() - 1). */
  lastOffset(): number {
    return this.next - 1;
  }

  /**
   * Bytes appended but not yet handed to the file system. Storage never refuses an append;
   * the driver bounds this (Raft's flow control, or waiting on durability) as its backpressure.
   */
  pendingBytes(): number {
    let n = 0;
    for (const seg of this.segments) n += seg.size - seg.flushedBytes;
    return n;
  }

  /** The first offset still held (data below it was deleted by retention). */
  logStartOffset(): number {
    return this.logStart;
  }

  /** Offsets of the entry at `index` (firstIndex ≤ index ≤ lastIndex). */
  entryOffsets(index: number): { baseOffset: number; lastOffset: number } {
    this.checkUsable();
    if (!Number.isInteger(index) || index < this.first || index > this.last)
      throw new StorageError('INDEX_OUT_OF_RANGE', `index ${index} outside [${this.first}, ${this.last}]`);
    const loc = this.retryingRead(() => this.locate(index));
    return { baseOffset: loc.baseOffset, lastOffset: loc.lastOffset };
  }

  /**
   * Appends entries at lastIndex() + 1 onward. Each batch is stamped in place with its
   * baseOffset (previous entry's last offset + 1) and partitionLeaderEpoch = term; the
   * view reflects the entries at once, durability is reported later. Bad input
   * (INVALID_ARGUMENT) changes nothing.
   */
  append(entries: readonly Entry[]): AppendedEntry[] {
    this.checkUsable();
    if (entries.length === 0) return [];
    // Validate everything before changing anything.
    let expect = this.last + 1;
    let lastTerm = this.termRuns.lastTerm() ?? this.prevTerm;
    const stored: Uint8Array[] = [];
    for (const e of entries) {
      if (e.index !== expect)
        throw new StorageError('INVALID_ARGUMENT', `append: entry index ${e.index}, expected ${expect}`);
      if (e.term < lastTerm)
        throw new StorageError(
          'INVALID_ARGUMENT',
          `append: entry ${e.index} has term ${e.term} below the last term ${lastTerm}`,
        );
      stored.push(toStoredBatch(this.core, e));
      expect++;
      lastTerm = e.term;
    }
    const out: AppendedEntry[] = [];
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const bytes = stored[k]!;
      const dv = dataView(bytes);
      const baseOffset = this.next;
      const lastOffset = baseOffset + dv.getInt32(23);
      const seg = this.segmentFor(bytes.length, lastOffset, e.index);
      this.core.stampBatch(bytes, 0, baseOffset, e.term);
      const position = seg.appendBatch(
        bytes,
        lastOffset,
        maxTimestampAt(dv, 0),
        e.term,
        crcAt(dv, 0),
        this.options.indexIntervalBytes,
      );
      seg.pendingIndexes.push(e.index);
      this.termRuns.append(e.index, e.term);
      this.cache.push({ entry: e, stored: bytes, baseOffset, lastOffset, segment: seg, position });
      this.cachedBytes += bytes.length;
      this.last = e.index;
      this.next = lastOffset + 1;
      out.push({ index: e.index, baseOffset, lastOffset });
    }
    this.scheduleFlush();
    return out;
  }

  /** The segment the next batch goes to: the active one, or a new one when it is full. */
  private segmentFor(bytes: number, lastOffset: number, index: number): Segment {
    const active = this.segments[this.segments.length - 1];
    const fits =
      active &&
      !active.sealed &&
      (active.size === 0 || active.size + bytes <= this.options.segmentBytes) &&
      lastOffset - active.baseOffset <= 0xffffffff; // relative offsets are u32
    if (fits) {
      // The active segment may hold only data below the log start (after a snapshot install):
      // its Raft numbering then starts so that its next batch is `index`.
      if (active.firstIndex === NO_INDEX) active.firstIndex = index - active.batchCount;
      return active;
    }
    if (active && !active.sealed) active.sealed = true;
    const seg = new Segment(this.next, index);
    this.segments.push(seg);
    return seg;
  }

  /**
   * Removes entries from `index` on (Raft conflict resolution). The view changes at once;
   * the disk truncation is queued behind in-flight writes. firstIndex ≤ index ≤ lastIndex + 1.
   */
  truncateSuffix(index: number): void {
    this.checkUsable();
    if (!Number.isInteger(index) || index < this.first || index > this.last + 1)
      throw new StorageError(
        'INDEX_OUT_OF_RANGE',
        `truncateSuffix(${index}) outside [${this.first}, ${this.last + 1}]`,
      );
    if (index === this.last + 1) return;
    const cut = this.retryingRead(() => this.locate(index));
    const before =
      index - 1 >= cut.segment.firstIndex ? this.retryingRead(() => this.locate(index - 1)) : null;
    // Segments after the one holding the cut leave the view.
    const at = this.segments.indexOf(cut.segment);
    for (const seg of this.segments.splice(at + 1)) this.doomed.push(seg);
    cut.segment.truncateView(
      cut.position,
      index - cut.segment.firstIndex,
      cut.baseOffset,
      before?.position ?? 0,
      before?.crc ?? 0,
    );
    this.termRuns.truncateFrom(index);
    // Drop cached entries from `index` on.
    const cacheFirst = this.cacheFirstIndex();
    if (index >= cacheFirst) {
      const keep = this.cacheHead + (index - cacheFirst);
      for (let j = keep; j < this.cache.length; j++) this.cachedBytes -= this.cache[j]!.stored.length;
      this.cache.length = keep;
    } else {
      this.cache = [];
      this.cacheHead = 0;
      this.cachedBytes = 0;
    }
    this.last = index - 1;
    this.next = cut.baseOffset;
    this.durableIndex = Math.min(this.durableIndex, index - 1);
    this.truncClamp = Math.min(this.truncClamp, index - 1);
    this.settleWaiters();
    this.scheduleFlush();
  }

  // ---- hard state ------------------------------------------------------------------

  hardState(): HardState {
    return { ...this.hs };
  }

  /** Queues `hs` to be persisted with the next flush; returns its version (reported by Durability). */
  setHardState(hs: HardState): number {
    this.checkUsable();
    checkHardState(hs);
    if (hs.term === this.hs.term && hs.vote === this.hs.vote && hs.commit === this.hs.commit)
      return this.hsVersion;
    this.hs = { term: hs.term, vote: hs.vote, commit: hs.commit };
    this.hsVersion++;
    this.hsDirty = true;
    this.scheduleFlush();
    return this.hsVersion;
  }

  // ---- durability ------------------------------------------------------------------

  durable(): Durability {
    return {
      index: this.durableIndex,
      term: this.term(this.durableIndex) ?? this.prevTerm,
      hardStateVersion: this.hsDurableVersion,
    };
  }

  /** Calls `listener` after each flush that made something durable; returns an unsubscribe function. */
  onDurable(listener: Listener<Durability>): () => void {
    this.durableListeners.add(listener);
    return () => this.durableListeners.delete(listener);
  }

  /**
   * Resolves true once entries through `index` and hard state `hardStateVersion` are
   * durable; false if the entry at `index` was truncated away or no longer has `term`
   * (it will never become durable). Rejects (FAILED) if the storage fails.
   */
  whenDurable(index: number, options: { term?: number; hardStateVersion?: number } = {}): Promise<boolean> {
    this.checkUsable();
    return new Promise((resolve, reject) => {
      this.waiters.push({
        index,
        term: options.term,
        hardStateVersion: options.hardStateVersion ?? 0,
        resolve,
        reject,
      });
      this.settleWaiters();
    });
  }

  /** Waits until everything handed over so far is durable. */
  async sync(): Promise<void> {
    await this.whenDurable(this.last, { hardStateVersion: this.hsVersion });
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      // An entry compacted into the snapshot is durable; one truncated away or replaced never will be.
      const superseded =
        w.term !== undefined &&
        w.index >= this.first &&
        (w.index > this.last || this.term(w.index) !== w.term);
      // Without a term (sync()), the waiter wants what was handed over before it: entries
      // truncated away since will never be durable, and it must not wait for them (it
      // would wait forever, and every later sync behind it).
      const index = w.term === undefined ? Math.min(w.index, this.last) : w.index;
      if (superseded) w.resolve(false);
      else if (this.durableIndex >= index && this.hsDurableVersion >= w.hardStateVersion) w.resolve(true);
      else still.push(w);
    }
    this.waiters = still;
  }

  // ---- damage and failure ------------------------------------------------------------

  /** Every damage found so far (at open and by reads since). Non-empty: the node must not vote until repaired. */
  damage(): readonly Damage[] {
    return this.damageFound;
  }

  /**
   * The node was repaired from its leader past everything it may have lost: forgets the
   * damage, durably. Until then every open reports the damage recorded at open again
   * (damage.ts), so a crash between finding damage and the node noting that it waits for
   * repair cannot make it forget.
   */
  async clearDamage(): Promise<void> {
    this.checkUsable();
    await this.enqueue(() => clearDamageRecord(this.fs, this.dir));
    this.damageFound.length = 0;
  }

  onDamage(listener: Listener<Damage>): () => void {
    this.damageListeners.add(listener);
    return () => this.damageListeners.delete(listener);
  }

  onFailure(listener: Listener<StorageError>): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** @internal */
  reportDamage(d: Damage): void {
    this.damageFound.push(d);
    for (const l of this.damageListeners) l(d);
  }

  private corruptRead(seg: Segment, position: number, detail: string): CorruptRead {
    return new CorruptRead(joinPath(`g${this.manifest.generation}`, seg.logName), position, detail);
  }

  private readDamage(e: CorruptRead): StorageError {
    this.reportDamage({
      reason: 'read',
      lastIndexBefore: this.last,
      lastOffsetBefore: this.next - 1,
      file: e.file,
      position: e.position,
      detail: e.detail,
    });
    return e;
  }

  /** Runs a read; a failed validation is retried (READ_ATTEMPTS in all), then reported as damage. */
  private retryingRead<T>(read: () => T): T {
    for (let attempt = 1; ; attempt++) {
      try {
        return read();
      } catch (e) {
        if (!(e instanceof CorruptRead)) throw e;
        if (attempt >= READ_ATTEMPTS) throw this.readDamage(e);
      }
    }
  }

  private async retryingReadAsync<T>(read: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await read();
      } catch (e) {
        if (!(e instanceof CorruptRead)) throw e;
        if (attempt >= READ_ATTEMPTS) throw this.readDamage(e);
      }
    }
  }

  private checkUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closing) throw new StorageError('CLOSED', 'storage is closed');
  }

  private fail(e: unknown): void {
    if (this.failure) return;
    this.failure =
      e instanceof StorageError && e.code === 'FAILED'
        ? e
        : new StorageError(
            'FAILED',
            `storage stopped after a failed disk operation: ${(e as Error)?.message ?? e}`,
            e,
          );
    for (const w of this.waiters) w.reject(this.failure);
    this.waiters = [];
    for (const l of this.failureListeners) l(this.failure);
  }

  /** @internal Runs `task` after every queued disk task (flushes, snapshot and retention steps). */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.failure) throw this.failure;
      return task();
    });
    // A refused request (a typed StorageError) leaves the storage working; any other error
    // is a failed disk operation, after which nothing on disk can be trusted to be as we left it.
    this.queue = run.then(
      () => undefined,
      (e) => {
        if (!(e instanceof StorageError) || e.code === 'FAILED') this.fail(e);
      },
    );
    return run;
  }

  // ---- the flusher -----------------------------------------------------------------

  /** @internal */
  scheduleFlush(): void {
    if (this.flushScheduled || this.failure || this.closing) return;
    this.flushScheduled = true;
    this.schedule(() => {
      if (this.closing) return; // close() runs the last flush itself
      this.enqueue(() => this.flush()).catch(() => {});
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    // Capture: what this flush writes. Appends after this point go to the next flush.
    const doomed = this.doomed.splice(0);
    const truncations: { seg: Segment; to: number }[] = [];
    const staleIndexes = this.segments.filter((seg) => seg.indexFile === 'stale');
    const writes: { seg: Segment; chunks: Uint8Array[]; at: number; bytes: number }[] = [];
    let coveredIndex = -1;
    let budget = this.options.maxFlushBytes;
    for (const seg of this.segments) {
      if (seg.truncateTo >= 0) {
        truncations.push({ seg, to: seg.truncateTo });
        seg.truncateTo = -1;
      }
    }
    for (const seg of this.segments) {
      if (seg.pending.length === 0) continue;
      if (budget <= 0) break; // later segments wait: a segment is complete on disk before the next is written
      let n = 0;
      let bytes = 0;
      while (n < seg.pending.length && (bytes === 0 || bytes + seg.pending[n]!.length <= budget))
        bytes += seg.pending[n++]!.length;
      const chunks = seg.pending.splice(0, n);
      const indexes = seg.pendingIndexes.splice(0, n);
      writes.push({ seg, chunks, at: seg.flushedBytes, bytes });
      seg.flushedBytes += bytes;
      budget -= bytes;
      coveredIndex = indexes[indexes.length - 1] ?? coveredIndex;
      if (seg.pending.length > 0) break;
    }
    const hsVersion = this.hsDirty ? this.hsVersion : -1;
    const hs = this.hs;
    this.hsDirty = false;
    // Terms never decrease along the log, so the last entry written has the largest term.
    const writtenTerm = coveredIndex >= 0 ? (this.term(coveredIndex) ?? 0) : 0;
    this.termBound = Math.max(this.termBound, hs.term, writtenTerm);
    const termBound = this.termBound;
    // An entry above the durable bound waits for a hard state carrying a bound above it
    // (once per new term); otherwise the hard state, if changed, goes beside the log writes.
    const raiseBoundFirst = writtenTerm > this.termBoundDurable;
    const writeHs = hsVersion >= 0 || raiseBoundFirst;
    this.truncClamp = Number.POSITIVE_INFINITY;

    const logWork = async (): Promise<void> => {
      if (doomed.length > 0 || truncations.length > 0 || staleIndexes.length > 0) {
        // Remove later segments first (highest first), so a crash leaves a prefix of the log.
        for (const seg of doomed.sort((a, b) => b.baseOffset - a.baseOffset))
          await this.removeSegmentFiles(seg);
        // An index that no longer matches its segment goes before the segment changes.
        for (const seg of staleIndexes) {
          await removeIfExists(this.fs, joinPath(this.genDir, seg.indexName));
          if (seg.indexFile === 'stale') seg.indexFile = 'none';
        }
        await this.fs.syncDir(this.genDir);
        for (const { seg, to } of truncations) {
          if (!seg.file) continue;
          await seg.file.truncate(to);
          await seg.file.sync();
        }
      }
      let dirDirty = false;
      for (const w of writes) {
        if (!w.seg.file) {
          w.seg.file = await this.fs.open(joinPath(this.genDir, w.seg.logName), {
            dsync: true,
            create: true,
            truncate: true,
          });
          dirDirty = true;
        }
        // Segment files are opened O_DSYNC: the write returns once it is durable (one
        // trip to the disk and to Node's thread pool instead of write + fdatasync).
        await w.seg.file.write(w.chunks, w.at);
      }
      if (dirDirty) await this.fs.syncDir(this.genDir);
    };
    const hsWork = async (): Promise<void> => {
      await saveHardState(this.fs, this.core, this.dir, hs, termBound);
      this.termBoundDurable = termBound;
    };
    if (raiseBoundFirst) {
      await hsWork();
      await logWork();
    } else {
      await Promise.all([logWork(), writeHs ? hsWork() : null]);
    }

    // Completion: advance what is readable from files and what is durable.
    for (const w of writes) {
      w.seg.diskBytes = Math.max(w.seg.diskBytes, Math.min(w.at + w.bytes, w.seg.flushedBytes));
      invariant(
        w.seg.diskBytes <= w.seg.flushedBytes && w.seg.flushedBytes <= w.seg.size,
        `${w.seg.logName}: disk ≤ flushed ≤ size`,
      );
    }
    if (coveredIndex >= 0)
      this.durableIndex = Math.max(this.durableIndex, Math.min(coveredIndex, this.truncClamp, this.last));
    if (hsVersion >= 0) this.hsDurableVersion = Math.max(this.hsDurableVersion, hsVersion);
    this.evictCache();
    if (writes.length > 0 || hsVersion >= 0 || truncations.length > 0) {
      const d = this.durable();
      for (const l of this.durableListeners) l(d);
      this.settleWaiters();
    }
    // Index files of sealed segments whose data is all durable (not on the durability path).
    for (const seg of this.segments) {
      if (
        seg.sealed &&
        seg.indexFile === 'none' &&
        seg.batchCount > 0 &&
        seg.diskBytes === seg.size &&
        seg.truncateTo < 0
      )
        await this.writeIndexFile(seg);
    }
    if (this.hasPendingWork()) this.scheduleFlush();
  }

  private hasPendingWork(): boolean {
    return (
      this.hsDirty ||
      this.doomed.length > 0 ||
      this.segments.some(
        (s) =>
          s.pending.length > 0 ||
          s.truncateTo >= 0 ||
          s.indexFile === 'stale' ||
          (s.sealed && s.indexFile === 'none' && s.batchCount > 0 && s.diskBytes === s.size),
      )
    );
  }

  /** @internal */
  async writeIndexFile(seg: Segment): Promise<void> {
    const bytes = encodeIndexFile(
      this.core,
      {
        baseOffset: seg.baseOffset,
        firstIndex: seg.firstIndex,
        compacted: seg.compacted,
        batchCount: seg.batchCount,
        logBytes: seg.size,
        lastOffset: seg.lastOffset,
        maxTimestamp: seg.maxTimestamp,
        lastBatchPosition: seg.lastBatchPosition,
        lastBatchCrc: seg.lastBatchCrc,
      },
      seg.index,
      seg.runs,
    );
    const file = await this.fs.open(joinPath(this.genDir, seg.indexName), { create: true, truncate: true });
    const cuts = seg.truncations;
    try {
      await file.write(bytes, 0);
      await file.sync();
    } finally {
      await file.close();
    }
    // A truncation into the segment while the file was being written makes it stale at once.
    seg.indexFile = seg.sealed && seg.truncations === cuts ? 'current' : 'stale';
  }

  /** @internal Removes a segment's files; its handle closes when the last reader lets go. */
  async removeSegmentFiles(seg: Segment): Promise<void> {
    seg.removed = true;
    await removeIfExists(this.fs, joinPath(this.genDir, seg.indexName));
    await removeIfExists(this.fs, joinPath(this.genDir, seg.logName));
    if (seg.pins === 0) await this.closeSegment(seg);
  }

  /** @internal */
  async closeSegment(seg: Segment): Promise<void> {
    const f = seg.file;
    seg.file = null;
    if (f) await f.close().catch(() => {});
  }

  /** @internal Pins a segment's file for an async read; `unpin` closes it if it was removed meanwhile. */
  pin(seg: Segment): void {
    seg.pins++;
  }

  /** @internal */
  unpin(seg: Segment): void {
    seg.pins--;
    if (seg.pins === 0 && seg.removed) void this.closeSegment(seg);
  }

  private evictCache(): void {
    while (
      this.cacheHead < this.cache.length &&
      this.cachedBytes > this.options.cacheBytes &&
      this.cache[this.cacheHead]!.entry.index <= this.durableIndex
    ) {
      this.cachedBytes -= this.cache[this.cacheHead]!.stored.length;
      this.cacheHead++;
    }
    // Compact the array now and then so the head does not grow without bound.
    if (this.cacheHead > 1024 && this.cacheHead * 2 > this.cache.length) {
      this.cache = this.cache.slice(this.cacheHead);
      this.cacheHead = 0;
    }
  }

  private cacheFirstIndex(): number {
    return this.cacheHead < this.cache.length ? this.cache[this.cacheHead]!.entry.index : this.last + 1;
  }

  // ---- reading from segment files ----------------------------------------------------

  /** Bytes per read window: enough for the budget, but a small request never reads megabytes. */
  private readWindowBytes(limit: number): number {
    const wanted = Math.min(limit, READ_WINDOW_MAX_BYTES) + this.options.indexIntervalBytes;
    return Math.min(this.options.maxReadBytes, Math.max(READ_WINDOW_MIN_BYTES, wanted));
  }

  /** @internal The last segment whose first Raft index is ≤ index. Segments' firstIndex ascend (NO_INDEX first). */
  segmentForIndex(index: number): Segment {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = segs[mid]!.firstIndex;
      if (f !== NO_INDEX && f <= index) {
        found = mid;
        lo = mid + 1;
      } else if (f === NO_INDEX) lo = mid + 1;
      else hi = mid - 1;
    }
    invariant(found >= 0, `no segment holds index ${index}`);
    return segs[found]!;
  }

  /** @internal The last segment whose base offset is ≤ offset, or -1. */
  segmentSlotForOffset(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.segments[mid]!.baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** @internal Where entry `index` is stored. */
  locate(index: number): {
    segment: Segment;
    position: number;
    baseOffset: number;
    lastOffset: number;
    crc: number;
  } {
    const cacheFirst = this.cacheFirstIndex();
    if (index >= cacheFirst) {
      const c = this.cache[this.cacheHead + (index - cacheFirst)]!;
      return {
        segment: c.segment,
        position: c.position,
        baseOffset: c.baseOffset,
        lastOffset: c.lastOffset,
        crc: crcAt(dataView(c.stored), 0),
      };
    }
    const seg = this.segmentForIndex(index);
    const rel = index - seg.firstIndex;
    let [pos, r] = seg.index.floorByRelIndex(this.core, rel);
    for (const b of batchesSync(seg, pos, seg.diskBytes, this.readWindowBytes(0))) {
      if (r === rel) {
        const dv = dataView(b.bytes);
        return {
          segment: seg,
          position: b.position,
          baseOffset: baseOffsetAt(dv, 0),
          lastOffset: lastOffsetAt(dv, 0),
          crc: crcAt(dv, 0),
        };
      }
      r++;
      pos = b.position;
    }
    throw this.corruptRead(seg, pos, `entry ${index} is not where the index says`);
  }

  /** The offset the sparse index says the batch at `position` holds (-1 if no entry is there). */
  private offsetHeldAt(seg: Segment, position: number): number {
    // Binary search: index positions ascend.
    const ix = seg.index;
    let lo = 0;
    let hi = ix.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = ix.positions[mid]!;
      if (at === position) return seg.baseOffset + ix.relOffsets[mid]!;
      if (at < position) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Reads entries [lo, hi) from segment files into `out`; returns the next index not read. */
  private readEntriesSync(lo: number, hi: number, limit: number, out: Entry[], bytes: { n: number }): number {
    let i = lo;
    while (i < hi) {
      const seg = this.segmentForIndex(i);
      const rel = i - seg.firstIndex;
      let [pos, r] = seg.index.floorByRelIndex(this.core, rel);
      const before = i;
      // Pair check of the offsets (outside the CRC, like the term): the walk starts where
      // the index or the file name says which offset is stored, and the Raft log's offsets
      // are contiguous from there.
      const raftStart = this.manifest.snapshot.lastOffset + 1;
      // An index entry names an offset its batch holds; position 0, the file's base offset.
      const held = pos === 0 ? -1 : this.offsetHeldAt(seg, pos);
      let expected = seg.baseOffset;
      for (const b of batchesSync(seg, pos, seg.diskBytes, this.readWindowBytes(limit))) {
        const dv = dataView(b.bytes);
        const base = baseOffsetAt(dv, 0);
        const last = lastOffsetAt(dv, 0);
        const fits =
          b.position === pos && held >= 0
            ? base <= held && held <= last
            : expected >= raftStart
              ? base === expected
              : base >= expected;
        if (!fits)
          throw this.corruptRead(seg, b.position, `baseOffset ${base} does not fit after ${expected - 1}`);
        expected = last + 1;
        pos = b.position;
        if (r++ < rel + (i - before)) continue;
        const scan = this.core.scanBatches(b.bytes);
        if (scan.validBytes !== b.bytes.length)
          throw this.corruptRead(seg, b.position, `entry ${i}: ${scan.error?.message ?? 'invalid batch'}`);
        let entry: Entry;
        try {
          entry = fromStoredBatch(this.core, i, b.bytes);
        } catch (e) {
          throw this.corruptRead(seg, b.position, `entry ${i}: ${(e as Error).message}`);
        }
        // Pair assertion: the term in the batch (outside its CRC) matches the term runs.
        if (entry.term !== this.termRuns.termAt(i))
          throw this.corruptRead(
            seg,
            b.position,
            `entry ${i}: stored term ${entry.term}, expected ${this.termRuns.termAt(i)}`,
          );
        if (out.length > 0 && bytes.n + entry.data.length > limit) return i;
        out.push(entry);
        bytes.n += entry.data.length;
        i++;
        if (i >= hi) return i;
      }
      if (i === before) throw this.corruptRead(seg, pos, `entry ${i} is missing from its segment`);
    }
    return i;
  }

  /**
   * Reads whole batches from `offset` on, as stored: the batch holding `offset` first (it
   * may start before it, as in Kafka), then following batches while they fit `maxBytes`
   * (at least one). Stays within one segment; call again from `nextOffset` for more.
   * OFFSET_OUT_OF_RANGE below the log start or beyond the end.
   */
  async read(offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    // The view being replaced has closed files and a stale cache (simulator seed 1005).
    while (this.replacing) await this.replacing;
    this.checkUsable();
    if (!Number.isSafeInteger(offset))
      throw new StorageError('INVALID_ARGUMENT', `offset ${offset} is not an integer`);
    if (offset < this.logStart)
      throw new StorageError(
        'OFFSET_OUT_OF_RANGE',
        `offset ${offset} is below the log start ${this.logStart}`,
      );
    if (offset > this.next)
      throw new StorageError('OFFSET_OUT_OF_RANGE', `offset ${offset} is beyond the log end ${this.next}`);
    const end = Math.min(options.endOffset ?? Number.POSITIVE_INFINITY, this.next);
    const limit = Math.max(
      1,
      Math.min(options.maxBytes ?? this.options.maxReadBytes, this.options.maxReadBytes),
    );
    const empty = { bytes: new Uint8Array(0), nextOffset: offset };
    if (offset >= end) return empty;

    // Recent batches come from the tail cache (some are not in the files yet).
    const cacheFirst = this.cacheFirstIndex();
    if (cacheFirst <= this.last && offset >= this.cache[this.cacheHead]!.baseOffset)
      return this.readFromCache(offset, end, limit);

    for (let slot = this.segmentSlotForOffset(offset); slot >= 0 && slot < this.segments.length; slot++) {
      const seg = this.segments[slot]!;
      const result = await this.retryingReadAsync(() => this.readFromSegment(seg, offset, end, limit));
      if (result) return result;
      // The view changed while we read (a snapshot install, retention, compaction's swap, a
      // truncation): what this segment lacked says nothing about the next; start again.
      if (seg.removed || this.segments[slot] !== seg) return this.read(offset, options);
      // Nothing at or after `offset` in this segment (compaction left a gap at its end): try the next.
    }
    // Only the cache can hold it now (a batch that became readable while we looked), and
    // only past a gap compaction left below the Raft start: from there on offsets are
    // contiguous and every batch below the cache is in the files, so a later cached batch
    // would skip offsets. Nothing is found here then; the caller asks again.
    const raftStart = this.manifest.snapshot.lastOffset + 1;
    if (offset < raftStart && this.cacheFirstIndex() <= this.last)
      return this.readFromCache(offset, end, limit);
    return empty;
  }

  private readFromCache(offset: number, end: number, limit: number): ReadResult {
    const first = this.cacheHead;
    let lo = first;
    let hi = this.cache.length - 1;
    // The first cached batch whose last offset is ≥ offset.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cache[mid]!.lastOffset < offset) lo = mid + 1;
      else hi = mid;
    }
    const parts: Uint8Array[] = [];
    let size = 0;
    let nextOffset = offset;
    for (let j = lo; j < this.cache.length; j++) {
      const c = this.cache[j]!;
      if (c.lastOffset < offset) continue;
      if (c.baseOffset >= end) break;
      if (parts.length > 0 && size + c.stored.length > limit) break;
      parts.push(c.stored);
      size += c.stored.length;
      nextOffset = c.lastOffset + 1;
    }
    // One copy at the boundary: the caller gets one buffer, as from a file.
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return { bytes, nextOffset };
  }

  private async readFromSegment(
    seg: Segment,
    offset: number,
    end: number,
    limit: number,
  ): Promise<ReadResult | null> {
    const file = seg.file;
    if (!file || seg.diskBytes === 0) return null;
    this.pin(seg);
    try {
      const diskBytes = seg.diskBytes;
      const [from] = seg.index.floorByOffset(this.core, Math.max(0, offset - seg.baseOffset));
      // Walk to the batch holding `offset` (at most about one index interval).
      let start = -1;
      for await (const b of batchesAsync(seg, file, from, diskBytes, this.readWindowBytes(0))) {
        if (lastOffsetAt(dataView(b.bytes), 0) >= offset) {
          start = b.position;
          break;
        }
      }
      if (start < 0) return null;
      // Read the budget in one go, then keep whole batches below `end`.
      const buf = await readFully(file, start, Math.min(diskBytes - start, Math.max(limit, 61)));
      const dv = dataView(buf);
      let q = 0;
      let nextOffset = offset;
      while (q + 12 <= buf.length) {
        const size = 12 + dv.getInt32(q + 8);
        if (size < 61) throw this.corruptRead(seg, start + q, `batch claims ${size} bytes`);
        if (baseOffsetAt(dv, q) >= end) break;
        if (q + size > buf.length) {
          if (q > 0) break;
          // The first batch is larger than the budget: it is returned whole anyway.
          const whole = await readFully(file, start, size);
          return this.checkedRead(seg, start, whole, lastOffsetAt(dataView(whole), 0) + 1);
        }
        nextOffset = lastOffsetAt(dv, q) + 1;
        q += size;
      }
      if (q === 0) return null;
      return this.checkedRead(seg, start, buf.subarray(0, q), nextOffset);
    } finally {
      this.unpin(seg);
    }
  }

  private async checkedRead(
    seg: Segment,
    position: number,
    bytes: Uint8Array,
    nextOffset: number,
  ): Promise<ReadResult> {
    const scan =
      this.pool && bytes.length >= this.options.poolMinBytes
        ? await this.pool.scanBatches(bytes)
        : this.core.scanBatches(bytes);
    if (scan.validBytes !== bytes.length)
      throw this.corruptRead(seg, position + scan.validBytes, scan.error?.message ?? 'invalid batch');
    return { bytes, nextOffset };
  }

  // ---- snapshots and the log start ---------------------------------------------------

  /** The snapshot the Raft log starts after (index 0 when none). */
  snapshotMeta(): SnapshotMeta & { lastOffset: number } {
    const s = this.manifest.snapshot;
    return { index: s.index, term: s.term, conf: s.conf, size: 0, lastOffset: s.lastOffset };
  }

  /** The recorded snapshot with its state blob (read from disk). */
  async loadSnapshot(): Promise<StoredSnapshot> {
    this.checkUsable();
    const s = this.manifest.snapshot;
    let state: Uint8Array | null = null;
    if (s.stateFile) {
      const loaded = await readFileDecoded(
        this.fs,
        joinPath(this.genDir, s.stateFile),
        READ_ATTEMPTS,
        (bytes) =>
          bytes.length === s.stateBytes && this.core.crc32c(bytes) === s.stateCrc
            ? { kind: 'ok' as const, bytes }
            : { kind: 'corrupt' as const },
      );
      if (loaded?.kind !== 'ok')
        throw new StorageError('CORRUPT', `snapshot state ${s.stateFile} is missing or fails its CRC`);
      state = loaded.bytes;
    }
    return { meta: { index: s.index, term: s.term, conf: s.conf, size: 0 }, lastOffset: s.lastOffset, state };
  }

  /**
   * Records a snapshot the node took after applying entries through `meta.index` (durable
   * and in the log), with its state blob, then moves the Raft log start to meta.index + 1.
   * `dropSegments` also deletes the segments wholly below the new start (group 0, whose
   * snapshot is its whole state); a partition keeps them as its data (retention decides).
   */
  async saveSnapshot(
    meta: { index: number; term: number; conf: SnapshotMeta['conf'] },
    state: Uint8Array | null,
    options: { dropSegments?: boolean } = {},
  ): Promise<void> {
    this.checkUsable();
    const { index } = meta;
    if (!Number.isInteger(index) || index < this.first - 1 || index > this.last)
      throw new StorageError(
        'INDEX_OUT_OF_RANGE',
        `snapshot index ${index} outside [${this.first - 1}, ${this.last}]`,
      );
    if (this.term(index) !== meta.term)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `snapshot term ${meta.term} is not the term ${this.term(index)} of entry ${index}`,
      );
    await this.whenDurable(index);
    await this.enqueue(async () => {
      if (index < this.first - 1 || index > this.last || this.term(index) !== meta.term)
        throw new StorageError(
          'INVALID_ARGUMENT',
          `entry ${index} changed while the snapshot was being saved`,
        );
      const lastOffset =
        index === this.first - 1 ? this.manifest.snapshot.lastOffset : this.locate(index).lastOffset;
      const old = this.manifest.snapshot.stateFile;
      let stateFile: string | null = null;
      if (state) {
        stateFile = `snapshot-${index}-${meta.term}.state`;
        const f = await this.fs.open(joinPath(this.genDir, stateFile), { create: true, truncate: true });
        try {
          await f.write(state, 0);
          await f.sync();
        } finally {
          await f.close();
        }
        await this.fs.syncDir(this.genDir);
      }
      const startOffset = lastOffset + 1;
      const dropping = options.dropSegments ? this.segmentsWhollyBelow(startOffset) : [];
      const keptFirst = this.segments[dropping.length];
      const snapshot: SnapshotRecord = {
        index,
        term: meta.term,
        conf: { voters: [...meta.conf.voters], learners: [...meta.conf.learners] },
        lastOffset,
        stateFile,
        stateBytes: state?.length ?? 0,
        stateCrc: state ? this.core.crc32c(state) : 0,
      };
      const manifest: Manifest = {
        ...this.manifest,
        logStartOffset:
          dropping.length > 0 ? (keptFirst?.baseOffset ?? startOffset) : this.manifest.logStartOffset,
        snapshot,
      };
      await saveManifest(this.fs, this.core, this.dir, manifest);
      // The manifest is durable: the log starts after the snapshot now.
      this.manifest = manifest;
      this.first = index + 1;
      this.prevTerm = meta.term;
      this.termRuns.dropBefore(this.first);
      this.dropCacheBefore(this.first);
      if (dropping.length > 0) {
        this.segments.splice(0, dropping.length);
        this.logStart = manifest.logStartOffset;
        for (const seg of dropping) await this.removeSegmentFiles(seg);
      }
      if (old && old !== stateFile) await removeIfExists(this.fs, joinPath(this.genDir, old));
    });
  }

  /**
   * @internal Replaces the whole log (snapshot install): old segment files close once no
   * reader holds them, `recover` builds the new view from disk; reads by offset wait for it.
   */
  async replaceLog(recover: (report: RecoveryReport) => Promise<RecoveredLog>): Promise<RecoveryReport> {
    let replaced = () => {};
    this.replacing = new Promise((resolve) => {
      replaced = resolve;
    });
    for (const seg of [...this.segments, ...this.doomed]) {
      seg.removed = true;
      if (seg.pins === 0) await this.closeSegment(seg);
    }
    this.doomed = [];
    const report = emptyReport();
    let recovered: RecoveredLog;
    try {
      recovered = await recover(report);
    } catch (e) {
      // The old view's files are closed: without the new view nothing can be read.
      this.fail(e);
      throw e;
    } finally {
      // Waiting reads resume in a later turn: after the new view is adopted below.
      this.replacing = null;
      replaced();
    }
    this.adopt(recovered);
    this.generationEpoch++;
    for (const d of report.damage) this.reportDamage(d);
    this.settleWaiters();
    const d = this.durable();
    for (const l of this.durableListeners) l(d);
    return report;
  }

  /** @internal The leading segments all of whose offsets are below `offset` (never the active one). */
  segmentsWhollyBelow(offset: number): Segment[] {
    const out: Segment[] = [];
    for (let i = 0; i + 1 < this.segments.length; i++) {
      if (this.segments[i + 1]!.baseOffset > offset) break;
      out.push(this.segments[i]!);
    }
    return out;
  }

  private dropCacheBefore(index: number): void {
    while (this.cacheHead < this.cache.length && this.cache[this.cacheHead]!.entry.index < index) {
      this.cachedBytes -= this.cache[this.cacheHead]!.stored.length;
      this.cacheHead++;
    }
  }

  /**
   * Deletes whole segments from the front of the log while the log is over `maxBytes` or a
   * segment's newest batch is older than `maxAgeMs`; only segments wholly below the Raft
   * log start (applied and snapshotted) are eligible. The log start offset moves durably
   * (manifest) before any file is removed.
   */
  async applyRetention(policy: { maxBytes?: number; maxAgeMs?: number; nowMs: number }): Promise<{
    removedSegments: number;
    removedBytes: number;
    logStartOffset: number;
  }> {
    this.checkUsable();
    return this.enqueue(async () => {
      const eligible = this.segmentsWhollyBelow(this.manifest.snapshot.lastOffset + 1).filter(
        (s) => s.sealed,
      );
      let total = 0;
      for (const s of this.segments) total += s.size;
      let n = 0;
      let removedBytes = 0;
      for (const seg of eligible) {
        if (seg !== this.segments[n]) break; // only a prefix
        const tooBig = policy.maxBytes !== undefined && total - removedBytes > policy.maxBytes;
        const tooOld = policy.maxAgeMs !== undefined && seg.maxTimestamp < policy.nowMs - policy.maxAgeMs;
        if (!tooBig && !tooOld) break;
        removedBytes += seg.size;
        n++;
      }
      if (n === 0) return { removedSegments: 0, removedBytes: 0, logStartOffset: this.logStart };
      const dropping = this.segments.slice(0, n);
      const manifest: Manifest = { ...this.manifest, logStartOffset: this.segments[n]!.baseOffset };
      await saveManifest(this.fs, this.core, this.dir, manifest);
      this.manifest = manifest;
      this.segments.splice(0, n);
      this.logStart = manifest.logStartOffset;
      for (const seg of dropping) await this.removeSegmentFiles(seg);
      return { removedSegments: n, removedBytes, logStartOffset: this.logStart };
    });
  }

  /** The recorded snapshot as a byte stream for a follower (InstallSnapshot); close it when done. */
  openSnapshotReader(): Promise<SnapshotReader> {
    this.checkUsable();
    return openSnapshotReader(this);
  }

  /**
   * Starts (or resumes, after a dropped connection or a crash) receiving a snapshot from
   * the leader; `finish()` installs it, atomically replacing the log.
   */
  receiveSnapshot(meta: SnapshotMeta): Promise<SnapshotWriter> {
    this.checkUsable();
    return receiveSnapshot(this, meta);
  }

  /** Key compaction of the segments below the Raft log start (see compaction.ts). */
  compactKeys(policy: CompactionPolicy): Promise<CompactionResult> {
    this.checkUsable();
    return compactKeys(this, policy);
  }

  // ---- closing ------------------------------------------------------------------------

  /** Flushes everything, writes pending index files, and closes every file. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.failure) {
      await this.enqueue(async () => {
        while (this.hasPendingWork()) await this.flush();
        await this.fs.syncDir(this.genDir);
      }).catch(() => {});
    }
    await this.queue;

    for (const seg of [...this.segments, ...this.doomed]) await this.closeSegment(seg);
    for (const w of this.waiters) w.reject(new StorageError('CLOSED', 'storage closed'));
    this.waiters = [];
  }

  /** @internal For tests and diagnostics: the segments in the view. */
  describeSegments(): {
    baseOffset: number;
    firstIndex: number;
    batchCount: number;
    bytes: number;
    sealed: boolean;
  }[] {
    return this.segments.map((s) => ({
      baseOffset: s.baseOffset,
      firstIndex: s.firstIndex,
      batchCount: s.batchCount,
      bytes: s.size,
      sealed: s.sealed,
    }));
  }
}
