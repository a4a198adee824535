// What a Raft group driver needs from its storage: the stored log as the core reads it
// (LogReader), the writes of each Ready, durability reports (group commit), reads by
// offset for clients, and snapshots. node/storage's segmented log provides it for real
// (group/segment-store.ts adapts it); group/memory-store.ts is an in-memory one for tests.
import type { ConfState, HardState, LogReader, LogWrite, SnapshotMeta } from '../../../raft/src/index.js';

/** What storage found on open. */
export interface OpenedState {
  hardState: HardState | undefined;
  /** The newest snapshot held, if the log was ever compacted or a snapshot installed. */
  snapshot: SnapshotMeta | undefined;
  /** The state-machine part of that snapshot (see GroupStore.takeSnapshot). */
  snapshotState: Uint8Array | undefined;
  /** A snapshot partly received before a restart. */
  partialSnapshot: { meta: SnapshotMeta; receivedBytes: number } | undefined;
  /**
   * Set when storage found it may have lost entries this node acknowledged (corruption in
   * the middle of the log, not a torn tail): the last index it held before the damage.
   * Stays set (durably) until clearLostEntries().
   */
  lostEntries: { lastIndexBeforeRepair: number } | undefined;
}

/**
 * Stored bytes failed validation when read back (after storage's own retries): the disk
 * damaged entries this node may have acknowledged. The group stops trusting its log and is
 * repaired from the leader (DESIGN §6); it is never a reason to stop the node.
 */
export class StoreCorruption extends Error {
  override readonly name = 'StoreCorruption';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/**
 * A snapshot received from a peer failed its checks (header, state CRC, a batch): peer
 * input, not damage here. The transfer is discarded; the log and state are as before.
 */
export class SnapshotRejected extends Error {
  override readonly name = 'SnapshotRejected';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

export interface GroupStore extends LogReader {
  /**
   * Applies a Ready's log write — truncation, then entries — stamping each batch's
   * baseOffset (the previous entry's last offset + 1) and epoch (the entry's term) in place.
   * The LogReader reflects it at once; it is durable after a later sync().
   */
  write(w: LogWrite): void;
  /** Records term, vote and commit; durable after a later sync(). */
  setHardState(hs: HardState): void;
  /**
   * Resolves once everything handed to write/setHardState/snapshot calls before this call is
   * durable. Calls in one turn share one write and one fsync (group commit); promises
   * resolve in call order. Rejects if the disk fails (the node must then stop).
   */
  sync(): Promise<void>;

  /** Offset of the first record still held (after retention and snapshots). */
  logStartOffset(): number;
  /** One past the last offset of the last entry in the log (committed or not). */
  nextOffset(): number;
  /**
   * Stored batches back to back (LogReader.entries() and this reject with StoreCorruption
   * when the stored bytes fail validation), starting with the one holding `offset`, at most
   * `maxBytes` (but at least one batch when there is one), ending before `endOffset`.
   * Precondition: logStartOffset() ≤ offset < endOffset ≤ nextOffset().
   */
  read(offset: number, endOffset: number, maxBytes: number): Promise<Uint8Array>;

  /**
   * Takes a snapshot at `index` (≤ applied): `state` is the state machine's own part
   * (partition: producers and consumer offsets; metadata: the catalog). Storage may then
   * drop log entries through `index` that the snapshot makes unnecessary.
   */
  takeSnapshot(index: number, term: number, conf: ConfState, state: Uint8Array): Promise<SnapshotMeta>;
  /**
   * Bytes [offset, offset + length) of the snapshot `meta`, or undefined if it is gone or
   * its stream is no longer `meta.size` bytes long (see snapshotToSend).
   */
  readSnapshotChunk(meta: SnapshotMeta, offset: number, length: number): Promise<Uint8Array | undefined>;
  /**
   * The snapshot this store sends now, with its stream's size as last opened: the stream
   * carries the data under the snapshot as it is stored, so key compaction and retention
   * below the snapshot change it (and its size) after the snapshot was taken.
   */
  snapshotToSend(): SnapshotMeta | undefined;
  /** Follower: writes a received chunk (in order from 0); durable after a later sync(). */
  writeSnapshotChunk(meta: SnapshotMeta, offset: number, data: Uint8Array, done: boolean): void;
  discardPartialSnapshot(meta: SnapshotMeta): void;
  /**
   * Follower: validates the fully received snapshot `meta` and replaces the log with it,
   * durably; once it resolves the LogReader shows the snapshot point alone. Resolves with
   * the snapshot's state-machine part. Rejects with SnapshotRejected when the stream fails
   * its checks (the transfer is then discarded and the log is as before), with
   * StoreCorruption when what it wrote does not read back, and otherwise when the disk
   * failed.
   */
  installSnapshot(meta: SnapshotMeta): Promise<Uint8Array>;

  /**
   * Retention: deletes whole segments while the partition holds more than `maxBytes` (0 =
   * no bound) or their newest record is older than `maxAgeMs` (0 = no bound); only data
   * below the last snapshot is eligible, so the Raft log is never touched.
   */
  applyRetention(maxBytes: number, maxAgeMs: number, nowMs: number): Promise<void>;
  /** Key compaction (compacted streams) of the data below the last snapshot. */
  compactKeys(deleteRetentionMs: number, nowMs: number): Promise<void>;

  /**
   * Storage found damage after open (a read that failed validation): `listener` is told
   * once per finding. Returns a function that stops listening.
   */
  onDamage(listener: (detail: string) => void): () => void;
  /**
   * Records durably that entries through `lastIndexBeforeRepair` may have been lost (the
   * marker only grows); the next open reports it as OpenedState.lostEntries. Written before
   * the log is cut for repair, so a crash in between cannot forget the loss.
   */
  markLostEntries(lastIndexBeforeRepair: number): Promise<void>;
  /** The repair the node needed is done (Ready.repairedPast): forget the marker, durably. */
  clearLostEntries(): void;
  close(): Promise<void>;
}

/** Where groups keep their data: one store per group (node/storage for real). */
export interface StoreProvider {
  /**
   * Opens (creating or recovering) a group's store; `segmentBytes` overrides the segment
   * size. `repair`: the group found damage while running — verify every stored byte (not
   * only the tail) and cut or reset what fails, reporting it as OpenedState.lostEntries.
   */
  open(
    groupId: number,
    segmentBytes?: number,
    options?: { repair?: boolean },
  ): Promise<{ store: GroupStore; opened: OpenedState }>;
  /** Deletes a group's data (the group is stopped and its store closed). */
  remove(groupId: number): Promise<void>;
  /** Group ids with data on disk. */
  list(): Promise<number[]>;
}
