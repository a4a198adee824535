// The partition groups this node hosts: started where the catalog places a replica here
// (or where data is still on disk), stopped and deleted once neither the catalog nor the
// group's own configuration has this node, and restarted from storage when a group stops
// itself (damage found, a refused snapshot) — group 0 too, through the catalog.
import type { ConfState } from '../../../raft/src/index.js';
import { PartitionGroup } from '../group/partition-group.js';
import { type GroupRestart, RaftGroup } from '../group/raft-group.js';
import type { GroupRuntime } from '../group/runtime.js';
import { type GroupStore, type OpenedState, StoreCorruption } from '../group/store.js';
import type { StreamMeta } from '../state/metadata.js';
import type { Catalog } from './catalog.js';
import { METADATA_GROUP, type NodeContext } from './context.js';
import type { Repairs } from './repairs.js';

export class GroupRegistry {
  private readonly partitions = new Map<number, PartitionGroup>();
  /** Partition groups opening, or stopped and waiting to open again: reconcile leaves them be. */
  private readonly starting = new Set<number>();
  private reconciling: Promise<void> | null = null;
  private reconcileAgain = false;

  constructor(
    private readonly ctx: NodeContext,
    private readonly runtime: GroupRuntime,
    private readonly catalog: Catalog,
    private readonly repairs: Repairs,
  ) {
    catalog.onPlacementChange(() => this.requestReconcile());
  }

  /** The partition group `groupId` if it runs here. */
  get(groupId: number): PartitionGroup | undefined {
    return this.partitions.get(groupId);
  }

  /** Every partition group running here. */
  all(): IterableIterator<PartitionGroup> {
    return this.partitions.values();
  }

  /** Before each runtime turn: every leader's tail view takes what its log got. */
  drainAll(): void {
    for (const p of this.partitions.values()) {
      try {
        p.drain();
      } catch (err) {
        // The leader's tail view reads its log: damage there stops this group, not the node.
        if (!(err instanceof StoreCorruption)) throw err;
        p.group.halt({ cause: 'damage', detail: err.message });
      }
    }
  }

  requestReconcile(): void {
    if (this.ctx.stopped) return;
    if (this.reconciling !== null) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = this.reconcile()
      .catch((err) => {
        // A group that could not be started or removed now (a disk error, a directory a
        // lingering handle keeps) is tried again later, not left until the catalog changes:
        // the catalog would name this node a replica of a group it never hosts.
        this.ctx.o.log.error({ err }, 'reconciling partition groups failed; trying again later');
        if (!this.ctx.stopped)
          this.ctx.o.clock.setTimer(this.ctx.restartDelayMs(), () => this.requestReconcile());
      })
      .finally(() => {
        this.reconciling = null;
        if (this.reconcileAgain) {
          this.reconcileAgain = false;
          this.requestReconcile();
        }
      });
  }

  /** Starts the partition groups the catalog places here; stops and deletes the ones gone. */
  private async reconcile(): Promise<void> {
    const state = this.catalog.state;
    if (state.clusterId === '') return; // not caught up with group 0 yet
    if (!this.catalog.settled) return; // group 0 restarted and is not yet where it was
    // A group with data here starts too, even if the catalog has moved it away: until the
    // move completes this node may still be one of its voters (the group then stops below
    // once its own configuration no longer has this node).
    const onDisk = new Set(await this.ctx.o.stores.list());
    for (const s of state.streamList()) {
      for (let i = 0; i < s.partitions.length; i++) {
        const p = s.partitions[i]!;
        if (
          (p.replicas.includes(this.ctx.id) || onDisk.has(p.groupId)) &&
          !this.partitions.has(p.groupId) &&
          !this.starting.has(p.groupId)
        ) {
          await this.start(s, i);
        }
      }
    }
    for (const [groupId, pg] of this.partitions) {
      const where = this.catalog.state.partitionOfGroup(groupId);
      let gone = where === undefined;
      if (!gone) {
        const p = where!.stream.partitions[where!.partition]!;
        const conf = pg.group.conf();
        const id = this.ctx.id;
        gone = !p.replicas.includes(id) && !conf.voters.includes(id) && !conf.learners.includes(id);
      }
      if (gone) await this.stop(groupId, true);
    }
    // Data of groups deleted while this node was down.
    const known = new Set<number>();
    for (const s of this.catalog.state.streamList()) for (const p of s.partitions) known.add(p.groupId);
    const next = this.catalog.state.catalog().nextGroupId;
    for (const id of await this.ctx.o.stores.list()) {
      if (id !== METADATA_GROUP && id < next && !known.has(id) && !this.partitions.has(id)) {
        this.ctx.o.log.info({ group: id }, 'removing data of a deleted partition');
        await this.ctx.o.stores.remove(id);
      }
    }
  }

  private async start(s: StreamMeta, partition: number): Promise<void> {
    const meta = s.partitions[partition]!;
    const o = this.ctx.o;
    this.starting.add(meta.groupId);
    try {
      const repair = this.repairs.repairsOnOpen(meta.groupId);
      const { store, opened } = await o.stores.open(meta.groupId, s.config.segmentBytes, { repair });
      this.repairs.opened(meta.groupId);
      if (this.ctx.stopped) {
        await store.close();
        return;
      }
      const pg = new PartitionGroup({
        stream: s.name,
        partition,
        groupId: meta.groupId,
        core: o.core,
        clock: o.clock,
        limits: o.config.limits,
        addressOf: (id) => this.catalog.state.member(id)?.apiAddress ?? '',
        schedule: () => this.runtime.schedule(),
      });
      const fresh =
        opened.hardState === undefined && opened.snapshot === undefined && store.lastIndex() === 0;
      // The group's history starts at index 0 with the replicas it was created with.
      const conf: ConfState = opened.snapshot?.conf ?? {
        voters: [...meta.initialReplicas].sort((a, b) => a - b),
        learners: [],
      };
      const lostEntries = await this.repairs.lostEntriesAtStart(meta.groupId, store, opened, fresh);
      let group: RaftGroup;
      try {
        if (opened.snapshot !== undefined) pg.restore(opened.snapshot, opened.snapshotState!);
        // The core reads the log's configuration entries as it starts.
        group = new RaftGroup(meta.groupId, this.runtime.host, store, pg, {
          conf,
          hardState: opened.hardState,
          applied: opened.snapshot?.index ?? 0,
          snapshot: opened.snapshot,
          partialSnapshot: opened.partialSnapshot,
          lostEntries,
          random: () => o.random.next(),
          options: this.ctx.raftOptions(),
        });
      } catch (err) {
        await this.afterFailedStart(meta.groupId, store, opened, err);
        return;
      }
      pg.group = group;
      this.partitions.set(meta.groupId, pg);
      this.runtime.add(group);
      o.log.info({ group: meta.groupId, stream: s.name, partition }, 'partition group started');
    } finally {
      this.starting.delete(meta.groupId);
    }
  }

  private async afterFailedStart(
    groupId: number,
    store: GroupStore,
    opened: OpenedState,
    err: unknown,
  ): Promise<void> {
    await this.repairs.closeForRepair(groupId, store, opened, err);
    this.ctx.o.onGroupRestart?.('damage');
    this.ctx.o.clock.setTimer(this.ctx.restartDelayMs(), () => this.requestReconcile());
  }

  /** A group stopped itself (damage, a refused snapshot): start it again from storage. */
  async restart(g: RaftGroup, why: GroupRestart): Promise<void> {
    const id = g.id;
    const metadata = id === METADATA_GROUP;
    if (metadata) {
      if (this.catalog.group !== g) return;
    } else {
      const pg = this.partitions.get(id);
      if (pg?.group !== g) return;
      this.partitions.delete(id);
      pg.stop();
      this.starting.add(id);
    }
    this.runtime.remove(id);
    this.ctx.o.log.warn(
      { group: id, cause: why.cause, detail: why.detail },
      'restarting the group from storage',
    );
    try {
      if (why.cause === 'damage') await this.repairs.markDamaged(id, g.store, g.core.status().commit);
      await g.store
        .close()
        .catch((err) => this.ctx.o.log.warn({ group: id, err }, 'closing the store failed'));
      // Not at once: a fault that keeps striking must not spin.
      await this.ctx.sleep(this.ctx.restartDelayMs());
    } finally {
      if (!metadata) this.starting.delete(id);
    }
    if (this.ctx.stopped) return;
    if (metadata) await this.catalog.reopen(g.applied);
    else this.requestReconcile();
  }

  private async stop(groupId: number, removeData: boolean): Promise<void> {
    const pg = this.partitions.get(groupId);
    if (pg === undefined) return;
    this.partitions.delete(groupId);
    this.runtime.remove(groupId);
    pg.group.stop('the partition no longer lives on this node');
    pg.stop();
    await pg.group.store.close();
    if (removeData) await this.ctx.o.stores.remove(groupId);
    this.ctx.o.log.info({ group: groupId, removeData }, 'partition group stopped');
  }

  /** The node stops: no more reconciling; every partition group stops and its store closes. */
  async stopAll(): Promise<Promise<void>[]> {
    await this.reconciling?.catch(() => {});
    const closing: Promise<void>[] = [];
    for (const pg of this.partitions.values()) {
      pg.group.stop('the node is stopping');
      pg.stop();
      closing.push(pg.group.store.close());
    }
    return closing;
  }
}
