// A Cairn node: the metadata group (group 0) and this node's partition groups on one
// runtime, the operations of NodeApi, and the leader duties that make membership converge.
// Everything outside the process comes through injected seams (Clock, Random, Transport,
// stores over a FileSystem, Core), so the simulator runs this same class without gRPC.
//
// Membership, the moving parts:
//   catalog (group 0)                says who the members are and where each partition
//                                    should live (its desired replicas)
//   each group's Raft configuration  says who actually votes and replicates
//   leader duties (every few ticks)  make the second follow the first, one single-server
//                                    change at a time: add as learner → promote once
//                                    caught up → remove the extra (a leader that must go
//                                    first hands leadership to a desired replica)
//   AddNode / RemoveNode             change the catalog, then wait for the duties to
//                                    converge (RemoveNode also takes the node out of
//                                    group 0 and forgets it, once no partition has it)
import type { Core } from '../../core-wasm/src/index.js';
import {
  type ConfChange,
  type ConfState,
  encodeConfState,
  type Message,
  type NodeId,
  type RaftOptions,
  type SoftState,
} from '../../raft/src/index.js';
import { isAddress, isNodeId, type NodeConfig } from './config.js';
import { asCairnError, CairnError, invalidRequest, limitExceeded, notLeader, unavailable } from './errors.js';
import { MetadataGroup } from './group/metadata-group.js';
import { PartitionGroup } from './group/partition-group.js';
import { type ApplyObserver, type GroupMachine, type GroupRestart, RaftGroup } from './group/raft-group.js';
import { GroupRuntime } from './group/runtime.js';
import { type GroupStore, type OpenedState, StoreCorruption } from './group/store.js';
import type { JoinRecord } from './join-record.js';
import type {
  AppendInput,
  AppendResult,
  ClusterMetadata,
  ClusterStatus,
  GroupRole,
  GroupStatus,
  MemberStatus,
  NodeApi,
  NodeInfo,
  NodeStatus,
  OffsetCommitInput,
  ReadInput,
  ReadResult,
  StreamInfo,
  SubscribeChunk,
  SubscribeInput,
} from './node-api.js';
import type { Logger } from './ops/log.js';
import type { Clock } from './seams/clock.js';
import type { Random } from './seams/random.js';
import type { Transport } from './seams/transport.js';
import { buildBatch, type CheckedBatch, checkClientBatch } from './state/batches.js';
import {
  decodeMetaEntry,
  encodeMetaEntry,
  type Member,
  type MetaCommand,
  MetadataState,
  type MetaResult,
  placeReplicas,
  planRemoval,
  STREAM_NAME,
  type StreamConfig,
  type StreamMeta,
  streamNotFound,
} from './state/metadata.js';

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

export interface CairnNodeOptions {
  config: NodeConfig;
  clock: Clock;
  random: Random;
  transport: Transport<Message>;
  core: Core;
  stores: StoreProvider;
  log: Logger;
  /** Asks another member for its NodeStatus (ClusterStatus); the gRPC layer supplies it. */
  peerStatus(member: NodeInfo, timeoutMs: number): Promise<NodeStatus>;
  pid?: number;
  /** Storage failed: the node stops; the process should exit. */
  onFatal?(err: unknown): void;
  onAppend?(seconds: number, bytes: number): void;
  /** Batch bytes served by Read and Subscribe. */
  onRead?(bytes: number): void;
  onPersist?(seconds: number): void;
  /** A group restarted from its storage: after damage (to be repaired) or a refused snapshot. */
  onGroupRestart?(cause: GroupRestart['cause']): void;
  /** Sees every entry the node's groups apply, in order (the simulator's state-machine-safety check). */
  applyObserver?: ApplyObserver;
  /** The data directory's join record (join-record.ts), when it was created by a start with --join. */
  joinRecord?: JoinRecord;
}

/** Attempts to start group 0 when each finds damage (then the node fails to start). */
const OPEN_ATTEMPTS = 3;
/** Leader duties run every this many ticks. */
const DUTY_TICKS = 5;
/** Retention and key compaction run every this many duty rounds. */
const MAINTENANCE_ROUNDS = 40;
const METADATA_GROUP = 0;

export class CairnNode implements NodeApi {
  private readonly runtime: GroupRuntime;
  private readonly meta: MetadataGroup;
  private readonly partitions = new Map<number, PartitionGroup>();
  /** Partition groups opening, or stopped and waiting to open again: reconcile leaves them be. */
  private readonly starting = new Set<number>();
  /** Groups whose next open verifies all of their storage and repairs what fails (DESIGN §6). */
  private readonly repairOnOpen = new Set<number>();
  /**
   * After group 0 restarted, the catalog is rebuilt from its snapshot and log: until it is
   * applied again this far it is only a prefix of what this node acted on, and reconciling
   * against it would stop (and delete) partitions it does not list yet.
   */
  private catalogFloor = 0;
  /** Groups whose retention or compaction is running. */
  private readonly maintaining = new Set<number>();
  private reconciling: Promise<void> | null = null;
  private reconcileAgain = false;
  private readonly startedAt: number;
  /** Group 0 was repaired through this index: the join horizon is taken once it is applied. */
  private horizonAt = 0;
  private stopped = false;
  private subscribers = 0;
  private stopDuties: (() => void) | null = null;
  private readonly id: NodeId;

  private constructor(private readonly o: CairnNodeOptions) {
    this.id = o.config.nodeId;
    this.startedAt = o.clock.now();
    this.runtime = new GroupRuntime({
      nodeId: this.id,
      clock: o.clock,
      transport: o.transport,
      log: o.log,
      tickMs: o.config.raft.tickMs,
      onFatal: (err) => this.fatal(err),
      onGroupRestart: (g, why) => this.onGroupRestart(g, why),
      onPersist: o.onPersist,
      onRepaired: (g, bound) => this.onRepaired(g.id, bound),
      observer: o.applyObserver,
      beforeProcess: () => {
        for (const p of this.partitions.values()) {
          try {
            p.drain();
          } catch (err) {
            // The leader's tail view reads its log: damage there stops this group, not the node.
            if (!(err instanceof StoreCorruption)) throw err;
            p.group.halt({ cause: 'damage', detail: err.message });
          }
        }
      },
    });
    this.meta = new MetadataGroup(
      o.core,
      (cmd, _result, index) => this.onCatalogApplied(cmd, index),
      (s) => this.onMetadataRole(s),
    );
  }

  /** Opens group 0 (bootstrapping a new cluster's first entry if needed) and starts the node. */
  static async start(o: CairnNodeOptions): Promise<CairnNode> {
    const node = new CairnNode(o);
    await node.openMetadataGroup();
    node.updatePeers();
    node.runtime.start();
    node.scheduleDuties();
    node.requestReconcile();
    return node;
  }

  private raftOptions(): Partial<RaftOptions> {
    const c = this.o.config;
    return {
      electionTimeoutTicks: c.raft.electionTicks,
      heartbeatTicks: c.raft.heartbeatTicks,
      maxSizePerMsgBytes: c.limits.maxAppendEntriesBytes,
      snapshotChunkBytes: c.limits.snapshotChunkBytes,
      maxUncommittedBytes: Math.max(
        c.limits.maxPendingAppendBytesPerPartition * 2,
        c.limits.maxBatchBytes * 4,
      ),
    };
  }

  /**
   * Opens group 0's store and starts the group. Damage found while starting it (reading
   * entry 1 or the configuration entries) marks the store as repairing and opens it again,
   * verified in full.
   */
  private async openMetadataGroup(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const repair = this.repairOnOpen.has(METADATA_GROUP);
      const { store, opened } = await this.o.stores.open(METADATA_GROUP, undefined, { repair });
      this.repairOnOpen.delete(METADATA_GROUP);
      try {
        await this.startMetadataGroup(store, opened);
        return;
      } catch (err) {
        if (attempt >= OPEN_ATTEMPTS) {
          await store.close().catch(() => {});
          throw err;
        }
        await this.closeForRepair(METADATA_GROUP, store, opened, err);
        this.meta.state = MetadataState.empty();
      }
    }
  }

  private async startMetadataGroup(store: GroupStore, opened: OpenedState): Promise<void> {
    const c = this.o.config;
    const fresh = opened.hardState === undefined && opened.snapshot === undefined && store.lastIndex() === 0;
    let conf: ConfState = { voters: [], learners: [] };
    // A group being repaired learns its log from the leader, entry 1 included.
    if (fresh && !c.join && opened.lostEntries === undefined) {
      // A new cluster: every initial node writes the same entries 1 and 2, so they agree on
      // them without an election. Entry 1 is the configuration (the initial members as
      // voters) and entry 2 the first catalog. The configuration is a config entry of the
      // log like any later one, so a node that gets the log from a leader — a wiped node
      // rejoining — learns that it is a voter from the log itself.
      const cmd: MetaCommand = {
        type: 'bootstrap',
        clusterId: c.clusterId,
        members: c.members.map((m) => ({ id: m.id, apiAddress: m.apiAddress, peerAddress: m.peerAddress })),
      };
      const voters = c.members.map((m) => m.id).sort((a, b) => a - b);
      store.write({
        truncateFrom: undefined,
        entries: [
          { index: 1, term: 1, type: 'config', data: encodeConfState({ voters, learners: [] }) },
          { index: 2, term: 1, type: 'normal', data: encodeMetaEntry(this.o.core, cmd) },
        ],
      });
      store.setHardState({ term: 1, vote: 0, commit: 2 });
      await store.sync();
      opened.hardState = { term: 1, vote: 0, commit: 2 };
    }
    if (opened.snapshot !== undefined) {
      conf = opened.snapshot.conf;
      this.meta.restore(opened.snapshot, opened.snapshotState!);
    } else if (store.lastIndex() >= 1) {
      // A log from before the configuration entry: entry 1 was the bootstrap command, and
      // the configuration before it the initial members it names. (A node that rejoins such
      // a cluster learns it only at its next start: new clusters write entry 1 as above.)
      const first = store.entries(1, 2, Number.MAX_SAFE_INTEGER)[0]!;
      if (first.type === 'normal') {
        const cmd = decodeMetaEntry(this.o.core, first.data);
        if (cmd.type === 'bootstrap')
          conf = { voters: cmd.members.map((m) => m.id).sort((a, b) => a - b), learners: [] };
      }
    }
    const lostEntries = await this.lostEntriesAtStart(METADATA_GROUP, store, opened, fresh);
    const group = new RaftGroup(METADATA_GROUP, this.runtime.host, store, this.meta, {
      conf,
      hardState: opened.hardState,
      applied: opened.snapshot?.index ?? 0,
      snapshot: opened.snapshot,
      partialSnapshot: opened.partialSnapshot,
      lostEntries,
      random: () => this.o.random.next(),
      options: this.raftOptions(),
    });
    this.meta.group = group;
    this.runtime.add(group);
  }

  // --- catalog reactions ----------------------------------------------------------------

  private onCatalogApplied(cmd: MetaCommand | null, index: number): void {
    if (this.horizonAt > 0 && index >= this.horizonAt) this.takeJoinHorizon();
    if (this.catalogFloor > 0 && index >= this.catalogFloor) {
      this.catalogFloor = 0;
      this.requestReconcile();
    }
    if (cmd === null) {
      this.updatePeers();
      this.requestReconcile();
      return;
    }
    switch (cmd.type) {
      case 'bootstrap':
      case 'addMember':
      case 'forgetMember':
      case 'setMemberState':
        this.updatePeers();
        break;
      case 'createStream':
      case 'deleteStream':
      case 'removeMember':
      case 'setReplicas':
        this.updatePeers();
        this.requestReconcile();
        break;
      case 'allocateProducerIds':
        break;
    }
  }

  private onMetadataRole(_s: SoftState): void {}

  /** Peer addresses: every member of the catalog, or the configured ones until the catalog is known. */
  private updatePeers(): void {
    const peers = new Map<NodeId, string>();
    if (this.meta.state.clusterId === '')
      for (const m of this.o.config.members) peers.set(m.id, m.peerAddress);
    for (const m of this.meta.state.memberList()) peers.set(m.id, m.peerAddress);
    peers.delete(this.id);
    this.o.transport.setPeers(peers);
  }

  private requestReconcile(): void {
    if (this.stopped) return;
    if (this.reconciling !== null) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = this.reconcileGroups()
      .catch((err) => {
        // A group that could not be started or removed now (a disk error, a directory a
        // lingering handle keeps) is tried again later, not left until the catalog changes:
        // the catalog would name this node a replica of a group it never hosts.
        this.o.log.error({ err }, 'reconciling partition groups failed; trying again later');
        if (!this.stopped) this.o.clock.setTimer(this.restartDelayMs(), () => this.requestReconcile());
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
  private async reconcileGroups(): Promise<void> {
    const state = this.meta.state;
    if (state.clusterId === '') return; // not caught up with group 0 yet
    if (this.catalogFloor > 0) return; // group 0 restarted and is not yet where it was
    // A group with data here starts too, even if the catalog has moved it away: until the
    // move completes this node may still be one of its voters (the group then stops below
    // once its own configuration no longer has this node).
    const onDisk = new Set(await this.o.stores.list());
    for (const s of state.streamList()) {
      for (let i = 0; i < s.partitions.length; i++) {
        const p = s.partitions[i]!;
        if (
          (p.replicas.includes(this.id) || onDisk.has(p.groupId)) &&
          !this.partitions.has(p.groupId) &&
          !this.starting.has(p.groupId)
        ) {
          await this.startPartition(s, i);
        }
      }
    }
    for (const [groupId, pg] of this.partitions) {
      const where = this.meta.state.partitionOfGroup(groupId);
      let gone = where === undefined;
      if (!gone) {
        const p = where!.stream.partitions[where!.partition]!;
        const conf = pg.group.conf();
        gone =
          !p.replicas.includes(this.id) && !conf.voters.includes(this.id) && !conf.learners.includes(this.id);
      }
      if (gone) await this.stopPartition(groupId, true);
    }
    // Data of groups deleted while this node was down.
    const known = new Set<number>();
    for (const s of this.meta.state.streamList()) for (const p of s.partitions) known.add(p.groupId);
    const next = this.meta.state.catalog().nextGroupId;
    for (const id of await this.o.stores.list()) {
      if (id !== METADATA_GROUP && id < next && !known.has(id) && !this.partitions.has(id)) {
        this.o.log.info({ group: id }, 'removing data of a deleted partition');
        await this.o.stores.remove(id);
      }
    }
  }

  private async startPartition(s: StreamMeta, partition: number): Promise<void> {
    const meta = s.partitions[partition]!;
    this.starting.add(meta.groupId);
    try {
      const repair = this.repairOnOpen.has(meta.groupId);
      const { store, opened } = await this.o.stores.open(meta.groupId, s.config.segmentBytes, { repair });
      this.repairOnOpen.delete(meta.groupId);
      if (this.stopped) {
        await store.close();
        return;
      }
      const pg = new PartitionGroup({
        stream: s.name,
        partition,
        groupId: meta.groupId,
        core: this.o.core,
        clock: this.o.clock,
        limits: this.o.config.limits,
        addressOf: (id) => this.meta.state.member(id)?.apiAddress ?? '',
        schedule: () => this.runtime.schedule(),
      });
      const fresh =
        opened.hardState === undefined && opened.snapshot === undefined && store.lastIndex() === 0;
      // The group's history starts at index 0 with the replicas it was created with.
      const conf: ConfState = opened.snapshot?.conf ?? {
        voters: [...meta.initialReplicas].sort((a, b) => a - b),
        learners: [],
      };
      const lostEntries = await this.lostEntriesAtStart(meta.groupId, store, opened, fresh);
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
          random: () => this.o.random.next(),
          options: this.raftOptions(),
        });
      } catch (err) {
        await this.afterFailedStart(meta.groupId, store, opened, err);
        return;
      }
      pg.group = group;
      this.partitions.set(meta.groupId, pg);
      this.runtime.add(group);
      this.o.log.info({ group: meta.groupId, stream: s.name, partition }, 'partition group started');
    } finally {
      this.starting.delete(meta.groupId);
    }
  }

  /**
   * What the group must repair before it votes (DESIGN §6): what storage's marker says, or,
   * for a fresh group on a joining node (a wiped disk, or a node added later), its whole
   * log. That second case is made durable (the repair marker) before the group starts: once
   * the group persists a term or a vote it is no longer fresh at its next start, and without
   * the marker it would vote, with an empty log, after a crash before its repair finished.
   */
  private async lostEntriesAtStart(
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
  private mayHaveHeld(groupId: number): boolean {
    const r = this.o.joinRecord;
    if (r === undefined) return this.o.config.join;
    return r.horizon === 0 || groupId < r.horizon;
  }

  /** A group finished repairing; group 0's repair on a joined node leads to the join horizon. */
  private onRepaired(groupId: number, bound: number): void {
    if (groupId !== METADATA_GROUP || this.o.joinRecord?.horizon !== 0) return;
    this.horizonAt = Math.max(1, bound);
    if (this.meta.group.applied >= this.horizonAt) this.takeJoinHorizon();
  }

  /**
   * Group 0 is applied through its repair bound: every stream created before this node's
   * disk was new is in the catalog, so no group from nextGroupId on was ever held here.
   */
  private takeJoinHorizon(): void {
    this.horizonAt = 0;
    const r = this.o.joinRecord;
    if (r === undefined || r.horizon !== 0) return;
    const horizon = this.meta.state.catalog().nextGroupId;
    r.setHorizon(horizon).then(
      () => this.o.log.info({ horizon }, 'joined: groups from here on were never held by this directory'),
      (err: unknown) =>
        this.o.log.warn({ err }, 'could not record the join horizon; new groups are still repaired'),
    );
  }

  /**
   * A group whose start read damaged entries is marked as repairing (its whole log counts
   * as possibly acknowledged), closed, and opened again later, verified in full.
   */
  private async afterFailedStart(
    groupId: number,
    store: GroupStore,
    opened: OpenedState,
    err: unknown,
  ): Promise<void> {
    await this.closeForRepair(groupId, store, opened, err);
    this.o.onGroupRestart?.('damage');
    this.o.clock.setTimer(this.restartDelayMs(), () => this.requestReconcile());
  }

  /**
   * After a group's start failed: damage marks the store as repairing (its whole log counts
   * as possibly acknowledged) and closes it, for its next open to verify it in full; any
   * other error closes it and propagates.
   */
  private async closeForRepair(
    groupId: number,
    store: GroupStore,
    opened: OpenedState,
    err: unknown,
  ): Promise<void> {
    if (!(err instanceof StoreCorruption)) {
      await store.close().catch(() => {});
      throw err;
    }
    this.o.log.warn({ group: groupId, err: err.message }, 'damage found while starting the group');
    await store.markLostEntries(Math.max(store.lastIndex(), opened.hardState?.commit ?? 0, 1));
    await store.close();
    this.repairOnOpen.add(groupId);
  }

  /** A group stopped itself (damage, a refused snapshot): start it again from storage. */
  private onGroupRestart(g: RaftGroup, why: GroupRestart): void {
    if (this.stopped) return;
    this.o.onGroupRestart?.(why.cause);
    this.restartGroup(g, why).catch((err) => this.fatal(err));
  }

  private async restartGroup(g: RaftGroup, why: GroupRestart): Promise<void> {
    const id = g.id;
    const metadata = id === METADATA_GROUP;
    if (metadata) {
      if (this.meta.group !== g) return;
    } else {
      const pg = this.partitions.get(id);
      if (pg?.group !== g) return;
      this.partitions.delete(id);
      pg.stop();
      this.starting.add(id);
    }
    this.runtime.remove(id);
    this.o.log.warn({ group: id, cause: why.cause, detail: why.detail }, 'restarting the group from storage');
    try {
      if (why.cause === 'damage') {
        // Whatever the log held may have been acknowledged: the marker covers all of it
        // (durably) before the reopen cuts the log at the damage.
        const s = g.core.status();
        await g.store.markLostEntries(Math.max(g.store.lastIndex(), s.commit, 1));
        this.repairOnOpen.add(id);
      }
      await g.store.close().catch((err) => this.o.log.warn({ group: id, err }, 'closing the store failed'));
      // Not at once: a fault that keeps striking must not spin.
      await this.sleep(this.restartDelayMs());
    } finally {
      if (!metadata) this.starting.delete(id);
    }
    if (this.stopped) return;
    if (metadata) {
      this.catalogFloor = Math.max(this.catalogFloor, g.applied);
      this.meta.state = MetadataState.empty();
      await this.openMetadataGroup();
      this.updatePeers();
    } else this.requestReconcile();
  }

  private restartDelayMs(): number {
    return this.o.config.raft.electionTicks * this.o.config.raft.tickMs;
  }

  private async stopPartition(groupId: number, removeData: boolean): Promise<void> {
    const pg = this.partitions.get(groupId);
    if (pg === undefined) return;
    this.partitions.delete(groupId);
    this.runtime.remove(groupId);
    pg.group.stop('the partition no longer lives on this node');
    pg.stop();
    await pg.group.store.close();
    if (removeData) await this.o.stores.remove(groupId);
    this.o.log.info({ group: groupId, removeData }, 'partition group stopped');
  }

  // --- leader duties ----------------------------------------------------------------------

  private scheduleDuties(): void {
    const every = this.o.config.raft.tickMs * DUTY_TICKS;
    let round = 0;
    const run = () => {
      if (this.stopped) return;
      try {
        this.metadataDuties();
        for (const pg of this.partitions.values()) this.partitionDuties(pg);
        this.snapshotDuties();
        if (++round % MAINTENANCE_ROUNDS === 0) this.maintenance();
      } catch (err) {
        this.o.log.error({ err }, 'leader duties failed');
      }
      this.stopDuties = this.o.clock.setTimer(every, run);
    };
    this.stopDuties = this.o.clock.setTimer(every, run);
  }

  /** Group-0 leader: members joining become learners, then voters, then active. */
  private metadataDuties(): void {
    const g = this.meta.group;
    if (!g.isLeader) return;
    const state = this.meta.state;
    const wanted = state.memberList().filter((m) => m.state !== 'leaving');
    const change = convergeStep(
      g.conf(),
      wanted.map((m) => m.id),
      // Voters the catalog no longer knows (forgotten) go; leaving ones are RemoveNode's to take out.
      (id) => state.member(id) === undefined,
    );
    if (change !== undefined) {
      if (change.type !== 'remove' || change.node !== this.id) this.confChange(g, change);
      return;
    }
    const joined = wanted.find((m) => m.state === 'joining' && g.conf().voters.includes(m.id));
    if (joined !== undefined) {
      this.proposeMeta({ type: 'setMemberState', id: joined.id, state: 'active' }).catch(() => {});
    }
  }

  /** Partition leader: make the group's configuration follow the catalog's desired replicas. */
  private partitionDuties(pg: PartitionGroup): void {
    const g = pg.group;
    if (!g.isLeader) return;
    const where = this.meta.state.partitionOfGroup(g.id);
    if (where === undefined) return;
    const desired = where.stream.partitions[where.partition]!.replicas;
    const change = convergeStep(g.conf(), desired, (id) => !desired.includes(id));
    if (change === undefined) return;
    if (change.type === 'remove' && change.node === this.id) {
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

  private bestTransferTarget(g: RaftGroup, among: NodeId[]): NodeId {
    const s = g.core.status();
    let best: { id: NodeId; match: number } | undefined;
    for (const p of s.progress) {
      if (p.id === this.id || p.learner || !among.includes(p.id) || !s.conf.voters.includes(p.id)) continue;
      if (best === undefined || p.match > best.match) best = { id: p.id, match: p.match };
    }
    return best?.id ?? 0;
  }

  private confChange(g: RaftGroup, change: ConfChange): void {
    const r = g.core.proposeConfChange(change);
    this.runtime.markDirty(g);
    if (r.ok) this.o.log.info({ group: g.id, change }, 'membership change proposed');
    else if (r.reason !== 'changePending' && r.reason !== 'notCaughtUp' && r.reason !== 'leaderNotReady') {
      this.o.log.debug(
        { group: g.id, change, reason: r.reason, detail: r.detail },
        'membership change refused',
      );
    }
  }

  private snapshotDuties(): void {
    const every = this.o.config.limits.snapshotIntervalEntries;
    const groups: [RaftGroup, GroupMachine & { snapshotState(): Uint8Array }][] = [
      [this.meta.group, this.meta],
    ];
    for (const pg of this.partitions.values()) groups.push([pg.group, pg]);
    for (const [g, m] of groups) {
      const since = g.applied - (g.store.firstIndex() - 1);
      if (since >= every) {
        g.takeSnapshot(m.snapshotState()).catch((err) =>
          this.o.log.error({ err, group: g.id }, 'snapshot failed'),
        );
      }
    }
  }

  /**
   * Retention and key compaction of each local partition, by its stream's policy. Every
   * replica maintains its own storage; only data below the last snapshot is touched.
   */
  private maintenance(): void {
    const now = this.o.clock.wallMs();
    for (const pg of this.partitions.values()) {
      const where = this.meta.state.partitionOfGroup(pg.group.id);
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
        .catch((err) => this.o.log.warn({ err, group: pg.group.id }, 'retention or compaction failed'))
        .finally(() => this.maintaining.delete(pg.group.id));
    }
  }

  // --- helpers ----------------------------------------------------------------------------

  /** A member is live when this node heard from it within two election timeouts. */
  private isLive(id: NodeId): boolean {
    const c = this.o.config.raft;
    return this.runtime.heardWithin(id, 2 * c.electionTicks * c.tickMs);
  }

  private addressOf(id: NodeId): string {
    return this.meta.state.member(id)?.apiAddress ?? '';
  }

  private metadataNotLeader(): CairnError {
    const leader = this.meta.group.leader;
    return notLeader('the metadata group', leader, leader === 0 ? '' : this.addressOf(leader));
  }

  private timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.o.clock.setTimer(ms, () =>
        reject(new CairnError('TIMEOUT', `${what} did not finish in ${ms} ms; its outcome is unknown`)),
      );
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        (e) => {
          cancel();
          reject(e);
        },
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.o.clock.setTimer(ms, resolve));
  }

  /** Proposes a catalog command on the group-0 leader and resolves with its applied result. */
  private async proposeMeta(cmd: MetaCommand): Promise<MetaResult> {
    const g = this.meta.group;
    if (!g.isLeader) throw this.metadataNotLeader();
    const { result, applied } = g.propose([encodeMetaEntry(this.o.core, cmd)]);
    if (!result.ok) {
      if (result.reason === 'notLeader' || result.reason === 'transferring') throw this.metadataNotLeader();
      throw unavailable(`the metadata group refused the change: ${result.reason}`);
    }
    return (await this.timeout(
      applied[0]!,
      this.o.config.limits.requestTimeoutMs,
      'the metadata change',
    )) as MetaResult;
  }

  private async proposeMetaOk(cmd: MetaCommand): Promise<MetaResult & { ok: true }> {
    const r = await this.proposeMeta(cmd);
    if (!r.ok) throw r.error;
    return r;
  }

  /** The stream, confirmed with group 0 (ReadIndex) before saying it does not exist. */
  private async findStream(name: string): Promise<StreamMeta> {
    if (typeof name !== 'string' || name === '') throw invalidRequest('a stream name is required');
    let s = this.meta.state.stream(name);
    if (s === undefined) {
      // Maybe created a moment ago and not applied here yet.
      let confirmed = true;
      try {
        await this.meta.group.readIndex(this.o.config.limits.requestTimeoutMs);
      } catch {
        confirmed = false;
      }
      s = this.meta.state.stream(name);
      // STREAM_NOT_FOUND is final for a client; without a quorum to confirm it (e.g. a node
      // just restarted, behind on the catalog) this node cannot know.
      if (s === undefined && !confirmed)
        throw unavailable(`cannot confirm whether stream '${name}' exists right now; retry`);
    }
    if (s === undefined) throw streamNotFound(name);
    return s;
  }

  private async localPartition(stream: string, partition: number): Promise<PartitionGroup> {
    const s = await this.findStream(stream);
    if (!Number.isInteger(partition) || partition < 0 || partition >= s.partitions.length) {
      throw invalidRequest(
        `stream '${stream}' has partitions 0..${s.partitions.length - 1}, not ${partition}`,
      );
    }
    const p = s.partitions[partition]!;
    const pg = this.partitions.get(p.groupId);
    if (pg !== undefined) return pg;
    // Not a replica here: point at one that is (it knows the leader).
    const other = p.replicas.find((id) => id !== this.id && this.meta.state.member(id) !== undefined) ?? 0;
    throw notLeader(
      `partition ${stream}/${partition} (not a replica here)`,
      0,
      other === 0 ? '' : this.addressOf(other),
    );
  }

  private checkName(name: string, what: string): void {
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes === 0 || bytes > this.o.config.limits.maxNameBytes || !STREAM_NAME.test(name)) {
      throw invalidRequest(
        `${what} must be 1-${this.o.config.limits.maxNameBytes} characters of [A-Za-z0-9._-]`,
      );
    }
  }

  // --- NodeApi: data plane ----------------------------------------------------------------

  async append(input: AppendInput): Promise<AppendResult> {
    const started = this.o.clock.now();
    const limits = this.o.config.limits;
    const s = await this.findStream(input.stream);
    let partition: number;
    if (input.partitionKey !== undefined) {
      partition = (this.o.core.xxhash32(input.partitionKey, 0) >>> 0) % s.partitions.length;
    } else if (input.partition !== undefined) {
      partition = input.partition;
    } else {
      throw invalidRequest('an append needs a partition or a partition key');
    }
    if (
      input.expectedOffset !== undefined &&
      (!Number.isSafeInteger(input.expectedOffset) || input.expectedOffset < 0)
    ) {
      throw invalidRequest('expectedOffset must be ≥ 0');
    }
    const pg = await this.localPartition(input.stream, partition);
    let batch: CheckedBatch;
    if (input.batch !== undefined && input.records === undefined) {
      batch = checkClientBatch(this.o.core, input.batch, limits);
    } else if (input.records !== undefined && input.batch === undefined) {
      batch = buildBatch(this.o.core, input.records, input.producer, this.o.clock.wallMs(), limits);
    } else {
      throw invalidRequest('an append needs either records or a batch');
    }
    const result = await this.timeout(
      pg.append(batch, input.expectedOffset),
      limits.requestTimeoutMs,
      'the append',
    );
    this.o.onAppend?.((this.o.clock.now() - started) / 1000, batch.bytes.length);
    return result;
  }

  async read(input: ReadInput): Promise<ReadResult> {
    if (!Number.isSafeInteger(input.offset) || input.offset < 0) throw invalidRequest('offset must be ≥ 0');
    const pg = await this.localPartition(input.stream, input.partition);
    const r = await pg.read(
      input.offset,
      input.maxBytes,
      input.maxRecords,
      input.maxWaitMs,
      input.linearizable,
      input.decode,
    );
    this.o.onRead?.(r.batches.length);
    return r;
  }

  async *subscribe(input: SubscribeInput, signal: AbortSignal): AsyncGenerator<SubscribeChunk> {
    const pg = await this.localPartition(input.stream, input.partition);
    if (this.subscribers >= this.o.config.limits.maxSubscribers) {
      throw limitExceeded('subscribers on this node', this.o.config.limits.maxSubscribers);
    }
    let from: number;
    if ('offset' in input.from) {
      from = input.from.offset;
      if (!Number.isSafeInteger(from) || from < 0) throw invalidRequest('offset must be ≥ 0');
      const hw = pg.highWatermark();
      const start = pg.logStartOffset();
      if (from < start || from > hw) {
        throw new CairnError('OFFSET_OUT_OF_RANGE', `offset ${from} is outside [${start}, ${hw}]`, {
          logStartOffset: start,
          highWatermark: hw,
        });
      }
    } else {
      from = input.from.position === 'earliest' ? pg.logStartOffset() : pg.highWatermark();
    }
    const maxBytes = Math.min(
      input.maxBytesPerMessage || this.o.config.limits.maxReadBytes,
      this.o.config.limits.maxReadBytes,
    );
    this.subscribers++;
    try {
      for await (const chunk of pg.subscribe(from, maxBytes, input.decode, signal)) {
        this.o.onRead?.(chunk.batches.length);
        yield chunk;
      }
    } finally {
      this.subscribers--;
    }
  }

  async initProducer(): Promise<{ producerId: number; producerEpoch: number }> {
    const r = await this.proposeMetaOk({ type: 'allocateProducerIds', count: 1 });
    return { producerId: r.value as number, producerEpoch: 0 };
  }

  async commitOffset(input: OffsetCommitInput): Promise<void> {
    this.checkName(input.group, 'a consumer group name');
    if (!Number.isSafeInteger(input.offset) || input.offset < 0) throw invalidRequest('offset must be ≥ 0');
    if (Buffer.byteLength(input.metadata, 'utf8') > this.o.config.limits.maxOffsetMetadataBytes) {
      throw new CairnError('RECORD_TOO_LARGE', 'offset metadata is too long', {
        limit: this.o.config.limits.maxOffsetMetadataBytes,
      });
    }
    const pg = await this.localPartition(input.stream, input.partition);
    await this.timeout(
      pg.commitOffset({ group: input.group, offset: input.offset, metadata: input.metadata }),
      this.o.config.limits.requestTimeoutMs,
      'the offset commit',
    );
  }

  async fetchOffset(
    group: string,
    stream: string,
    partition: number,
  ): Promise<{ offset: number; metadata: string }> {
    this.checkName(group, 'a consumer group name');
    const pg = await this.localPartition(stream, partition);
    if (!pg.group.isLeader) {
      const leader = pg.group.leader;
      throw notLeader(`partition ${stream}/${partition}`, leader, this.addressOf(leader));
    }
    await pg.group.readIndex(this.o.config.limits.requestTimeoutMs);
    const o = pg.state.committedOffset(group);
    return o ?? { offset: -1, metadata: '' };
  }

  // --- NodeApi: admin ---------------------------------------------------------------------

  async createStream(name: string, given: Partial<StreamConfig>): Promise<StreamInfo> {
    const limits = this.o.config.limits;
    this.checkName(name, 'a stream name');
    if (!this.meta.group.isLeader) throw this.metadataNotLeader();
    const state = this.meta.state;
    const active = state.memberList().filter((m) => m.state === 'active').length;
    const config: StreamConfig = {
      partitions: given.partitions ?? 1,
      replicationFactor: given.replicationFactor ?? Math.min(3, active),
      retentionBytes: given.retentionBytes ?? 0,
      retentionMs: given.retentionMs ?? 0,
      compacted: given.compacted ?? false,
      deleteRetentionMs: given.deleteRetentionMs ?? 0,
      segmentBytes: given.segmentBytes ?? 0,
    };
    if (!Number.isInteger(config.partitions) || config.partitions < 1)
      throw invalidRequest('partitions must be ≥ 1');
    if (config.partitions > limits.maxPartitionsPerStream) {
      throw limitExceeded(`${config.partitions} partitions in one stream`, limits.maxPartitionsPerStream);
    }
    if (
      !Number.isInteger(config.replicationFactor) ||
      config.replicationFactor < 1 ||
      config.replicationFactor > active
    ) {
      throw invalidRequest(`replication factor must be in [1, ${active}] (the active nodes)`);
    }
    for (const k of ['retentionBytes', 'retentionMs', 'deleteRetentionMs', 'segmentBytes'] as const) {
      if (!Number.isSafeInteger(config[k]) || config[k] < 0) throw invalidRequest(`${k} must be ≥ 0`);
    }
    if (state.stream(name) !== undefined)
      throw new CairnError('STREAM_EXISTS', `stream '${name}' already exists`);
    if (state.streamList().length >= limits.maxStreams)
      throw limitExceeded('streams in the cluster', limits.maxStreams);
    if (state.partitionCount() + config.partitions > limits.maxPartitionsTotal) {
      throw limitExceeded('partitions in the cluster', limits.maxPartitionsTotal);
    }
    const placement = placeReplicas(state, config.partitions, config.replicationFactor, (id) =>
      this.isLive(id),
    );
    const r = await this.proposeMetaOk({ type: 'createStream', name, config, placement });
    const s = r.value as StreamMeta;
    // Answer once the partitions hosted here have a leader, so the stream is usable at once.
    await this.waitUntil(
      () =>
        s.partitions.every(
          (p) => !p.replicas.includes(this.id) || (this.partitions.get(p.groupId)?.group.leader ?? 0) !== 0,
        ),
      limits.requestTimeoutMs,
    ).catch(() => {});
    return this.streamInfo(this.meta.state.stream(name) ?? s);
  }

  async deleteStream(name: string): Promise<void> {
    await this.proposeMetaOk({ type: 'deleteStream', name });
  }

  async listStreams(): Promise<StreamInfo[]> {
    return this.meta.state.streamList().map((s) => this.streamInfo(s));
  }

  async describeStream(name: string): Promise<StreamInfo> {
    return this.streamInfo(await this.findStream(name));
  }

  private streamInfo(s: StreamMeta): StreamInfo {
    return {
      name: s.name,
      config: { ...s.config },
      partitions: s.partitions.map((p, i) => {
        const pg = this.partitions.get(p.groupId);
        return {
          partition: i,
          groupId: p.groupId,
          replicas: [...p.replicas],
          leader: pg?.group.leader ?? 0,
          logStartOffset: pg?.logStartOffset() ?? 0,
          highWatermark: pg?.highWatermark() ?? 0,
        };
      }),
    };
  }

  private nodeInfo(m: Member): NodeInfo {
    return { id: m.id, apiAddress: m.apiAddress, peerAddress: m.peerAddress, state: m.state };
  }

  async metadata(): Promise<ClusterMetadata> {
    const st = this.meta.state;
    return {
      clusterId: st.clusterId || this.o.config.clusterId,
      nodes: st.memberList().map((m) => this.nodeInfo(m)),
      streams: st.streamList().map((s) => this.streamInfo(s)),
      metadataLeader: this.meta.group.leader,
    };
  }

  nodeStatus(): NodeStatus {
    const self = this.meta.state.member(this.id);
    const groups: GroupStatus[] = [this.groupStatus(this.meta.group, '', 0)];
    for (const pg of this.partitions.values()) {
      const where = this.meta.state.partitionOfGroup(pg.group.id);
      groups.push(this.groupStatus(pg.group, where?.stream.name ?? '', where?.partition ?? 0));
    }
    return {
      node: self
        ? this.nodeInfo(self)
        : {
            id: this.id,
            apiAddress: this.o.config.apiAddress,
            peerAddress: this.o.config.peerAddress,
            state: 'joining',
          },
      pid: this.o.pid ?? 0,
      uptimeMs: Math.round(this.o.clock.now() - this.startedAt),
      groups,
    };
  }

  private groupStatus(g: RaftGroup, stream: string, partition: number): GroupStatus {
    const s = g.core.status();
    const role: GroupRole = s.role === 'follower' && s.conf.learners.includes(this.id) ? 'learner' : s.role;
    const followerLag = new Map<NodeId, number>();
    for (const p of s.progress)
      if (p.id !== this.id) followerLag.set(p.id, Math.max(0, s.lastIndex - p.match));
    return {
      groupId: g.id,
      stream,
      partition,
      role,
      term: s.term,
      leader: s.leader,
      commitIndex: s.commit,
      appliedIndex: g.applied,
      lastIndex: s.lastIndex,
      followerLag,
      needsRepair: s.recoveringUntil !== 0,
    };
  }

  async clusterStatus(): Promise<ClusterStatus> {
    const members = this.meta.state.memberList();
    const timeoutMs = Math.min(2_000, this.o.config.limits.requestTimeoutMs);
    const statuses = await Promise.all(
      members.map(async (m): Promise<MemberStatus> => {
        const node = this.nodeInfo(m);
        if (m.id === this.id) return { node, healthy: true, error: '', status: this.nodeStatus() };
        try {
          const status = await this.timeout(this.o.peerStatus(node, timeoutMs), timeoutMs + 100, 'status');
          return { node, healthy: true, error: '', status };
        } catch (err) {
          return { node, healthy: false, error: asCairnError(err).message, status: undefined };
        }
      }),
    );
    return { clusterId: this.meta.state.clusterId || this.o.config.clusterId, members: statuses };
  }

  /** Polls `cond` every tick until it holds, or rejects with TIMEOUT after `ms`. */
  private async waitUntil(cond: () => boolean, ms: number): Promise<void> {
    const deadline = this.o.clock.now() + ms;
    while (!cond()) {
      if (this.stopped) throw unavailable('the node is stopping');
      if (this.o.clock.now() >= deadline)
        throw new CairnError('TIMEOUT', `not done within ${ms} ms; still in progress`);
      await this.sleep(this.o.config.raft.tickMs);
    }
  }

  async addNode(id: NodeId, apiAddress: string, peerAddress: string): Promise<NodeInfo> {
    if (!isNodeId(id)) throw invalidRequest('node id must be a positive integer');
    if (!isAddress(apiAddress) || !isAddress(peerAddress))
      throw invalidRequest('addresses must be host:port');
    if (!this.meta.group.isLeader) throw this.metadataNotLeader();
    const existing = this.meta.state.member(id);
    if (existing?.state === 'leaving') throw invalidRequest(`node ${id} is being removed`);
    if (existing === undefined) await this.proposeMetaOk({ type: 'addMember', id, apiAddress, peerAddress });
    else if (existing.apiAddress !== apiAddress || existing.peerAddress !== peerAddress) {
      throw invalidRequest(`node ${id} is already a member with other addresses`);
    }
    // The duties add it as a learner, promote it once caught up, and mark it active.
    await this.waitUntil(
      () => this.meta.state.member(id)?.state === 'active',
      this.o.config.limits.membershipTimeoutMs,
    );
    return this.nodeInfo(this.meta.state.member(id)!);
  }

  async removeNode(id: NodeId): Promise<void> {
    const limits = this.o.config.limits;
    if (!this.meta.group.isLeader) throw this.metadataNotLeader();
    const m = this.meta.state.member(id);
    if (m === undefined) throw invalidRequest(`node ${id} is not a member`);
    if (m.state !== 'leaving') {
      const others = this.meta.state.memberList().filter((x) => x.id !== id && x.state === 'active');
      if (others.length === 0) throw invalidRequest('cannot remove the last node');
      await this.proposeMetaOk({
        type: 'removeMember',
        id,
        moves: planRemoval(this.meta.state, id, (x) => this.isLive(x)),
      });
    }
    // Wait until no partition group anywhere still has the node (the partition leaders move
    // replicas off it), as the members' statuses show.
    await this.waitUntilAsync(async () => !(await this.anyGroupHas(id)), limits.membershipTimeoutMs);
    const g = this.meta.group;
    if (id === this.id) {
      // The metadata leader is leaving: hand group 0 to another voter; the client retries there.
      const to = this.bestTransferTarget(
        g,
        g.conf().voters.filter((v) => v !== id),
      );
      if (to !== 0) g.core.transferLeadership(to);
      this.runtime.markDirty(g);
      await this.waitUntil(() => !g.isLeader, limits.requestTimeoutMs).catch(() => {});
      throw this.metadataNotLeader();
    }
    await this.waitUntilAsync(async () => {
      if (!g.isLeader) throw this.metadataNotLeader();
      const conf = g.conf();
      if (!conf.voters.includes(id) && !conf.learners.includes(id)) return true;
      this.confChange(g, { type: 'remove', node: id });
      return false;
    }, limits.membershipTimeoutMs);
    if (this.meta.state.member(id) !== undefined) await this.proposeMetaOk({ type: 'forgetMember', id });
  }

  private async waitUntilAsync(cond: () => Promise<boolean>, ms: number): Promise<void> {
    const deadline = this.o.clock.now() + ms;
    while (!(await cond())) {
      if (this.stopped) throw unavailable('the node is stopping');
      if (this.o.clock.now() >= deadline)
        throw new CairnError('TIMEOUT', `not done within ${ms} ms; still in progress`);
      await this.sleep(Math.max(this.o.config.raft.tickMs * DUTY_TICKS, 50));
    }
  }

  /**
   * Whether some partition may still have `id` as a member: for every partition, its
   * current leader (the highest-term leader among the members' statuses) must be another
   * node and must not replicate to `id`. A partition whose leader cannot be seen right now
   * counts as "maybe": only positive evidence ends the wait.
   */
  private async anyGroupHas(id: NodeId): Promise<boolean> {
    const status = await this.clusterStatus();
    const leaders = new Map<number, { node: NodeId; term: number; lag: Map<NodeId, number> }>();
    for (const ms of status.members) {
      for (const g of ms.status?.groups ?? []) {
        if (g.groupId === METADATA_GROUP || g.role !== 'leader') continue;
        const seen = leaders.get(g.groupId);
        if (seen === undefined || g.term > seen.term)
          leaders.set(g.groupId, { node: ms.node.id, term: g.term, lag: g.followerLag });
      }
    }
    for (const s of this.meta.state.streamList()) {
      for (const p of s.partitions) {
        const l = leaders.get(p.groupId);
        if (l === undefined || l.node === id || l.lag.has(id)) return true;
      }
    }
    return false;
  }

  async transferLeader(stream: string, partition: number, toNode: NodeId): Promise<NodeId> {
    let g: RaftGroup;
    let what: string;
    if (stream === '') {
      g = this.meta.group;
      what = 'the metadata group';
    } else {
      g = (await this.localPartition(stream, partition)).group;
      what = `partition ${stream}/${partition}`;
    }
    if (!g.isLeader) throw notLeader(what, g.leader, this.addressOf(g.leader));
    const voters = g.conf().voters;
    const to = toNode === 0 ? this.bestTransferTarget(g, voters) : toNode;
    if (to === this.id) return this.id;
    if (to === 0) throw invalidRequest(`${what} has no other voter to lead`);
    const r = g.core.transferLeadership(to);
    this.runtime.markDirty(g);
    if (!r.ok) throw invalidRequest(`cannot transfer ${what} to node ${to}: ${r.reason}`);
    const electionMs = this.o.config.raft.tickMs * this.o.config.raft.electionTicks * 3;
    await this.waitUntil(
      () => g.leader !== this.id && g.leader !== 0,
      Math.max(electionMs, this.o.config.limits.requestTimeoutMs),
    );
    return g.leader;
  }

  // --- life cycle -------------------------------------------------------------------------

  private fatal(err: unknown): void {
    this.o.log.fatal({ err }, 'storage failed; the node stops');
    void this.stop();
    this.o.onFatal?.(err);
  }

  /** Stops every group and closes their stores (pending fsyncs finish first). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopDuties?.();
    this.runtime.stop();
    await this.reconciling?.catch(() => {});
    const closing: Promise<void>[] = [];
    for (const pg of this.partitions.values()) {
      pg.group.stop('the node is stopping');
      pg.stop();
      closing.push(pg.group.store.close());
    }
    this.meta.group.stop('the node is stopping');
    closing.push(this.meta.group.store.close());
    await Promise.allSettled(closing);
  }

  /** The catalog as this node knows it (tests, status). */
  catalogMembers(): Member[] {
    return this.meta.state.memberList();
  }

  /** Where the catalog, as far as this node has applied it, places each partition group. */
  placement(): { groupId: number; replicas: NodeId[] }[] {
    return this.meta.state
      .streamList()
      .flatMap((s) => s.partitions.map((p) => ({ groupId: p.groupId, replicas: [...p.replicas] })));
  }

  /** Runs `fn` against group `id` (tests). */
  groupForTest(id: number): RaftGroup | undefined {
    return id === METADATA_GROUP ? this.meta.group : this.partitions.get(id)?.group;
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
