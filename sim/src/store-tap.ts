// A window on each group's storage for the checkers. The node's StoreProvider is wrapped
// so that every GroupStore it opens reports, on its way through:
//   log writes         → log matching (before storage sees them)
//   completed syncs    → what storage has promised durable (entries, term, vote)
//   opens              → whether those promises held across a restart
// Everything else passes straight through to the real store.

import type { StoreProvider } from '../../node/src/cairn-node.js';
import type { GroupStore, OpenedState } from '../../node/src/group/store.js';
import type { ConfState, Entry, HardState, LogWrite, SnapshotMeta } from '../../raft/src/index.js';
import type { DurableMark, RaftSafetyChecker } from './checkers/raft-safety.js';

/** Wraps `inner` (one process's provider) so that its stores report to `checker`. */
export function tapStores(
  inner: StoreProvider,
  node: number,
  checker: RaftSafetyChecker,
  onOpen: (group: number, store: GroupStore) => void,
  onRemove: (group: number) => void,
): StoreProvider {
  return {
    async open(groupId, segmentBytes, options) {
      const { store, opened } = await inner.open(groupId, segmentBytes, options);
      checker.checkRecovered(node, groupId, opened.hardState, store, opened.lostEntries !== undefined);
      const tapped = new TapStore(store, node, groupId, checker, opened);
      onOpen(groupId, tapped);
      return { store: tapped, opened };
    },
    async remove(groupId) {
      // From the moment the node sets out to remove a group's data, nothing of it is promised
      // any more: a power loss during the removal may leave it gone, and the group opened
      // anew later (seed 130046: a joining node removed groups on a catalog prefix, lost
      // power mid-removal, and started them again fresh and repairing).
      checker.setDurable(node, groupId, undefined);
      await inner.remove(groupId);
      onRemove(groupId);
    },
    list: () => inner.list(),
  };
}

/** What one sync call covers, captured when it is called. */
interface SyncMark extends DurableMark {}

export class TapStore implements GroupStore {
  private hs: HardState;
  /** Syncs called and not yet resolved, oldest first. */
  private readonly inFlight: SyncMark[] = [];
  /**
   * While the node repairs lost entries: the highest index known committed when the repair
   * began, which its log must hold when the repair ends (checkRepaired).
   */
  private repairFloor: number | undefined;

  constructor(
    readonly inner: GroupStore,
    private readonly node: number,
    private readonly group: number,
    private readonly checker: RaftSafetyChecker,
    opened: OpenedState,
  ) {
    this.hs = opened.hardState ?? { term: 0, vote: 0, commit: 0 };
    if (opened.lostEntries !== undefined) this.repairFloor = checker.highestCommitted(group);
    // What is on disk now is durable (storage syncs what it recovered before opening).
    const last = inner.lastIndex();
    this.checker.setDurable(node, group, {
      index: last,
      term: inner.term(last) ?? 0,
      hsTerm: this.hs.term,
      hsVote: this.hs.vote,
    });
  }

  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  term(index: number): number | undefined {
    return this.inner.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.inner.entries(lo, hi, maxBytes);
  }

  write(w: LogWrite): void {
    const first = w.entries[0];
    const prevTerm = first === undefined ? -1 : (this.inner.term(first.index - 1) ?? -1);
    if (w.truncateFrom !== undefined) this.clamp(w.truncateFrom - 1);
    this.inner.write(w);
    this.checker.onWrite(this.node, this.group, w, prevTerm);
  }

  /** A truncation (or a snapshot replacing the log) takes back promises about entries past `index`. */
  private clamp(index: number): void {
    const t = this.inner.term(index) ?? 0;
    for (const m of this.inFlight) {
      if (m.index > index) {
        m.index = index;
        m.term = t;
      }
    }
    const d = this.checker.durableMark(this.node, this.group);
    if (d !== undefined && d.index > index)
      this.checker.setDurable(this.node, this.group, { ...d, index, term: t });
  }

  setHardState(hs: HardState): void {
    this.hs = { ...hs };
    this.inner.setHardState(hs);
  }

  sync(): Promise<void> {
    const last = this.inner.lastIndex();
    const mark: SyncMark = {
      index: last,
      term: this.inner.term(last) ?? 0,
      hsTerm: this.hs.term,
      hsVote: this.hs.vote,
    };
    this.inFlight.push(mark);
    return this.inner.sync().then(() => {
      const k = this.inFlight.indexOf(mark);
      if (k >= 0) this.inFlight.splice(k, 1);
      this.checker.setDurable(this.node, this.group, mark);
    });
  }

  logStartOffset(): number {
    return this.inner.logStartOffset();
  }
  nextOffset(): number {
    return this.inner.nextOffset();
  }
  read(offset: number, endOffset: number, maxBytes: number): Promise<Uint8Array> {
    return this.inner.read(offset, endOffset, maxBytes);
  }
  takeSnapshot(index: number, term: number, conf: ConfState, state: Uint8Array): Promise<SnapshotMeta> {
    return this.inner.takeSnapshot(index, term, conf, state);
  }
  readSnapshotChunk(meta: SnapshotMeta, offset: number, length: number): Promise<Uint8Array | undefined> {
    return this.inner.readSnapshotChunk(meta, offset, length);
  }
  snapshotToSend(): SnapshotMeta | undefined {
    return this.inner.snapshotToSend();
  }
  writeSnapshotChunk(meta: SnapshotMeta, offset: number, data: Uint8Array, done: boolean): void {
    this.inner.writeSnapshotChunk(meta, offset, data, done);
  }
  discardPartialSnapshot(meta: SnapshotMeta): void {
    this.inner.discardPartialSnapshot(meta);
  }
  async installSnapshot(meta: SnapshotMeta): Promise<Uint8Array> {
    const state = await this.inner.installSnapshot(meta);
    // The log is now the snapshot point alone, durably.
    for (const m of this.inFlight) {
      m.index = meta.index;
      m.term = meta.term;
    }
    const d = this.checker.durableMark(this.node, this.group);
    this.checker.setDurable(this.node, this.group, {
      index: meta.index,
      term: meta.term,
      hsTerm: d?.hsTerm ?? 0,
      hsVote: d?.hsVote ?? 0,
    });
    return state;
  }
  applyRetention(maxBytes: number, maxAgeMs: number, nowMs: number): Promise<void> {
    return this.inner.applyRetention(maxBytes, maxAgeMs, nowMs);
  }
  compactKeys(deleteRetentionMs: number, nowMs: number): Promise<void> {
    return this.inner.compactKeys(deleteRetentionMs, nowMs);
  }
  onDamage(listener: (detail: string) => void): () => void {
    return this.inner.onDamage(listener);
  }
  markLostEntries(lastIndexBeforeRepair: number): Promise<void> {
    this.repairFloor = Math.max(this.repairFloor ?? 0, this.checker.highestCommitted(this.group));
    return this.inner.markLostEntries(lastIndexBeforeRepair);
  }
  clearLostEntries(): void {
    if (this.repairFloor !== undefined)
      this.checker.checkRepaired(this.node, this.group, this.inner, this.repairFloor);
    this.repairFloor = undefined;
    this.inner.clearLostEntries();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
