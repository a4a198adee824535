// What a leader does every few ticks, besides replicating: make each group's Raft
// configuration follow the catalog (group 0: its members; a partition: its desired
// replicas), one single-server change at a time — add as learner, promote once caught up,
// remove the extra (a leader that must go first hands leadership to a desired replica);
// take snapshots; and, less often, retention and key compaction of each local partition.
import type { ConfChange, ConfState, NodeId } from '../../../raft/src/index.js';
import type { PartitionGroup } from '../group/partition-group.js';
import type { GroupMachine, RaftGroup } from '../group/raft-group.js';
import type { GroupRuntime } from '../group/runtime.js';
import type { Catalog } from './catalog.js';
import { DUTY_TICKS, type NodeContext } from './context.js';
import type { GroupRegistry } from './group-registry.js';

/** Retention and key compaction run every this many duty rounds. */
const MAINTENANCE_ROUNDS = 40;

export class LeaderDuties {
  /** Groups whose retention or compaction is running. */
  private readonly maintaining = new Set<number>();
  private stopTimer: (() => void) | null = null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly runtime: GroupRuntime,
    private readonly catalog: Catalog,
    private readonly groups: GroupRegistry,
  ) {}

  start(): void {
    const every = this.ctx.o.config.raft.tickMs * DUTY_TICKS;
    let round = 0;
    const run = () => {
      if (this.ctx.stopped) return;
      try {
        this.metadataDuties();
        for (const pg of this.groups.all()) this.partitionDuties(pg);
        this.snapshotDuties();
        if (++round % MAINTENANCE_ROUNDS === 0) this.maintenance();
      } catch (err) {
        this.ctx.o.log.error({ err }, 'leader duties failed');
      }
      this.stopTimer = this.ctx.o.clock.setTimer(every, run);
    };
    this.stopTimer = this.ctx.o.clock.setTimer(every, run);
  }

  stop(): void {
    this.stopTimer?.();
  }

  /** Group-0 leader: members joining become learners, then voters, then active. */
  private metadataDuties(): void {
    const g = this.catalog.group;
    if (!g.isLeader) return;
    const state = this.catalog.state;
    const wanted = state.memberList().filter((m) => m.state !== 'leaving');
    const change = convergeStep(
      g.conf(),
      wanted.map((m) => m.id),
      // Voters the catalog no longer knows (forgotten) go; leaving ones are RemoveNode's to take out.
      (id) => state.member(id) === undefined,
    );
    if (change !== undefined) {
      if (change.type !== 'remove' || change.node !== this.ctx.id) this.confChange(g, change);
      return;
    }
    const joined = wanted.find((m) => m.state === 'joining' && g.conf().voters.includes(m.id));
    if (joined !== undefined) {
      this.catalog.propose({ type: 'setMemberState', id: joined.id, state: 'active' }).catch(() => {});
    }
  }

  /** Partition leader: make the group's configuration follow the catalog's desired replicas. */
  private partitionDuties(pg: PartitionGroup): void {
    const g = pg.group;
    if (!g.isLeader) return;
    const where = this.catalog.state.partitionOfGroup(g.id);
    if (where === undefined) return;
    const desired = where.stream.partitions[where.partition]!.replicas;
    const change = convergeStep(g.conf(), desired, (id) => !desired.includes(id));
    if (change === undefined) return;
    if (change.type === 'remove' && change.node === this.ctx.id) {
      // This leader must go: hand leadership to the most caught-up desired voter first.
      const to = this.bestTransferTarget(g, desired);
      if (to !== 0) {
        g.core.transferLeadership(to);
        this.runtime.markDirty(g);
        return;
      }
    }
    this.confChange(g, change);
  }

  /** The most caught-up voter of `g` among `among` (not this node), 0 when there is none. */
  bestTransferTarget(g: RaftGroup, among: NodeId[]): NodeId {
    const s = g.core.status();
    let best: { id: NodeId; match: number } | undefined;
    for (const p of s.progress) {
      if (p.id === this.ctx.id || p.learner || !among.includes(p.id) || !s.conf.voters.includes(p.id))
        continue;
      if (best === undefined || p.match > best.match) best = { id: p.id, match: p.match };
    }
    return best?.id ?? 0;
  }

  /** Proposes a membership change of `g` (refusals that only mean "not yet" are quiet). */
  confChange(g: RaftGroup, change: ConfChange): void {
    const r = g.core.proposeConfChange(change);
    this.runtime.markDirty(g);
    if (r.ok) this.ctx.o.log.info({ group: g.id, change }, 'membership change proposed');
    else if (r.reason !== 'changePending' && r.reason !== 'notCaughtUp' && r.reason !== 'leaderNotReady') {
      this.ctx.o.log.debug(
        { group: g.id, change, reason: r.reason, detail: r.detail },
        'membership change refused',
      );
    }
  }

  private snapshotDuties(): void {
    const every = this.ctx.o.config.limits.snapshotIntervalEntries;
    const groups: [RaftGroup, GroupMachine & { snapshotState(): Uint8Array }][] = [
      [this.catalog.group, this.catalog.meta],
    ];
    for (const pg of this.groups.all()) groups.push([pg.group, pg]);
    for (const [g, m] of groups) {
      const since = g.applied - (g.store.firstIndex() - 1);
      if (since >= every) {
        g.takeSnapshot(m.snapshotState()).catch((err) =>
          this.ctx.o.log.error({ err, group: g.id }, 'snapshot failed'),
        );
      }
    }
  }

  /**
   * Retention and key compaction of each local partition, by its stream's policy. Every
   * replica maintains its own storage; only data below the last snapshot is touched.
   */
  private maintenance(): void {
    const now = this.ctx.o.clock.wallMs();
    for (const pg of this.groups.all()) {
      const where = this.catalog.state.partitionOfGroup(pg.group.id);
      if (where === undefined || this.maintaining.has(pg.group.id)) continue;
      const c = where.stream.config;
      if (c.retentionBytes === 0 && c.retentionMs === 0 && !c.compacted) continue;
      const store = pg.group.store;
      this.maintaining.add(pg.group.id);
      (async () => {
        if (c.retentionBytes > 0 || c.retentionMs > 0)
          await store.applyRetention(c.retentionBytes, c.retentionMs, now);
        if (c.compacted) await store.compactKeys(c.deleteRetentionMs, now);
      })()
        .catch((err) => this.ctx.o.log.warn({ err, group: pg.group.id }, 'retention or compaction failed'))
        .finally(() => this.maintaining.delete(pg.group.id));
    }
  }
}

/**
 * The next single-server change that brings `conf` toward `desired`: add a missing member
 * as a learner, then promote desired learners (the core refuses until caught up), then —
 * only once every desired member votes — remove one member `extra` says must go.
 */
export function convergeStep(
  conf: ConfState,
  desired: NodeId[],
  extra: (id: NodeId) => boolean,
): ConfChange | undefined {
  const inConf = (id: NodeId) => conf.voters.includes(id) || conf.learners.includes(id);
  for (const id of desired) if (!inConf(id)) return { type: 'addLearner', node: id };
  for (const id of conf.learners) if (desired.includes(id)) return { type: 'promote', node: id };
  for (const id of [...conf.learners, ...conf.voters])
    if (!desired.includes(id) && extra(id)) return { type: 'remove', node: id };
  return undefined;
}
