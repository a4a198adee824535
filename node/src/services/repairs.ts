// Which groups must repair lost entries before they vote (DESIGN §6), for group 0 and the
// partition groups alike: what storage's marker says, the groups a joining node may have
// held before its disk was new (the join record), damage found while a group starts, and
// the join horizon taken once group 0 is repaired and applied through its bound.
import type { GroupStore, OpenedState } from '../group/store.js';
import { StoreCorruption } from '../group/store.js';
import { METADATA_GROUP, type NodeContext } from './context.js';

export class Repairs {
  /** Groups whose next open verifies all of their storage and repairs what fails. */
  private readonly onOpen = new Set<number>();
  /** Group 0 was repaired through this index: the join horizon is taken once it is applied. */
  private horizonAt = 0;

  constructor(private readonly ctx: NodeContext) {}

  /** Whether the group's next open must verify every stored byte. */
  repairsOnOpen(groupId: number): boolean {
    return this.onOpen.has(groupId);
  }

  /** The group's store opened (verified in full if it had to be). */
  opened(groupId: number): void {
    this.onOpen.delete(groupId);
  }

  /**
   * Damage stopped a running group: whatever its log held may have been acknowledged, so
   * the marker covers all of it (durably) before the reopen, verified in full, cuts the
   * log at the damage.
   */
  async markDamaged(groupId: number, store: GroupStore, commit: number): Promise<void> {
    await store.markLostEntries(Math.max(store.lastIndex(), commit, 1));
    this.onOpen.add(groupId);
  }

  /**
   * What the group must repair before it votes: what storage's marker says, or, for a
   * fresh group on a joining node (a wiped disk, or a node added later), its whole log.
   * That second case is made durable (the repair marker) before the group starts: once the
   * group persists a term or a vote it is no longer fresh at its next start, and without
   * the marker it would vote, with an empty log, after a crash before its repair finished.
   */
  async lostEntriesAtStart(
    groupId: number,
    store: GroupStore,
    opened: OpenedState,
    fresh: boolean,
  ): Promise<{ lastIndexBeforeRepair: number } | undefined> {
    if (opened.lostEntries !== undefined) return opened.lostEntries;
    if (!fresh || !this.mayHaveHeld(groupId)) return undefined;
    await store.markLostEntries(1);
    return { lastIndexBeforeRepair: 1 };
  }

  /**
   * Whether this node may have held (and acknowledged entries of) `groupId` before its disk
   * was new (join-record.ts): a group below the join horizon, or any while the horizon is
   * unknown. Without a record, a node started with --join counts every group (a directory
   * from before join records, or whose record a power loss took right after its identity).
   */
  mayHaveHeld(groupId: number): boolean {
    const r = this.ctx.o.joinRecord;
    if (r === undefined) return this.ctx.o.config.join;
    return r.horizon === 0 || groupId < r.horizon;
  }

  /**
   * After a group's start failed: damage marks the store as repairing (its whole log counts
   * as possibly acknowledged) and closes it, for its next open to verify it in full; any
   * other error closes it and propagates.
   */
  async closeForRepair(groupId: number, store: GroupStore, opened: OpenedState, err: unknown): Promise<void> {
    if (!(err instanceof StoreCorruption)) {
      await store.close().catch(() => {});
      throw err;
    }
    this.ctx.o.log.warn({ group: groupId, err: err.message }, 'damage found while starting the group');
    await store.markLostEntries(Math.max(store.lastIndex(), opened.hardState?.commit ?? 0, 1));
    await store.close();
    this.onOpen.add(groupId);
  }

  /**
   * A group finished repairing; group 0's repair on a joined node leads to the join
   * horizon (`applied` and `nextGroupId`: group 0's applied index and catalog now).
   */
  onRepaired(groupId: number, bound: number, applied: number, nextGroupId: () => number): void {
    if (groupId !== METADATA_GROUP || this.ctx.o.joinRecord?.horizon !== 0) return;
    this.horizonAt = Math.max(1, bound);
    if (applied >= this.horizonAt) this.takeJoinHorizon(nextGroupId());
  }

  /** Group 0 applied `index`: the join horizon may be due. */
  catalogApplied(index: number, nextGroupId: () => number): void {
    if (this.horizonAt > 0 && index >= this.horizonAt) this.takeJoinHorizon(nextGroupId());
  }

  /**
   * Group 0 is applied through its repair bound: every stream created before this node's
   * disk was new is in the catalog, so no group from nextGroupId on was ever held here.
   */
  private takeJoinHorizon(horizon: number): void {
    this.horizonAt = 0;
    const r = this.ctx.o.joinRecord;
    if (r === undefined || r.horizon !== 0) return;
    r.setHorizon(horizon).then(
      () => this.ctx.o.log.info({ horizon }, 'joined: groups from here on were never held by this directory'),
      (err: unknown) =>
        this.ctx.o.log.warn({ err }, 'could not record the join horizon; new groups are still repaired'),
    );
  }
}
