// A Cairn node: wiring. The services under services/ each own one part — the catalog
// (group 0), the group registry (the partition groups hosted here: reconcile, start,
// restart, repair), the leader duties, the data plane, admin and status — composed here one
// way through their constructors, on one group runtime. Everything outside the process
// comes through injected seams (Clock, Random, Transport, stores over a FileSystem, Core),
// so the simulator runs this same class without gRPC.
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
import type { NodeId } from '../../raft/src/index.js';
import type { RaftGroup } from './group/raft-group.js';
import { GroupRuntime } from './group/runtime.js';
import type {
  AppendInput,
  AppendResult,
  ClusterMetadata,
  ClusterStatus,
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
import { Admin } from './services/admin.js';
import { Catalog } from './services/catalog.js';
import { type CairnNodeOptions, METADATA_GROUP, NodeContext } from './services/context.js';
import { DataPlane } from './services/data-plane.js';
import { GroupRegistry } from './services/group-registry.js';
import { LeaderDuties } from './services/leader-duties.js';
import { Repairs } from './services/repairs.js';
import { Status } from './services/status.js';
import type { Member, StreamConfig } from './state/metadata.js';

export type { StoreProvider } from './group/store.js';
export type { CairnNodeOptions } from './services/context.js';
export { convergeStep } from './services/leader-duties.js';

export class CairnNode implements NodeApi {
  private readonly ctx: NodeContext;
  private readonly runtime: GroupRuntime;
  private readonly repairs: Repairs;
  private readonly catalog: Catalog;
  private readonly groups: GroupRegistry;
  private readonly duties: LeaderDuties;
  private readonly status: Status;
  private readonly data: DataPlane;
  private readonly admin: Admin;

  private constructor(o: CairnNodeOptions) {
    const ctx = (this.ctx = new NodeContext(o));
    // The runtime calls back into services made after it: the closures read them when called.
    this.runtime = new GroupRuntime({
      nodeId: ctx.id,
      clock: o.clock,
      transport: o.transport,
      log: o.log,
      tickMs: o.config.raft.tickMs,
      onFatal: (err) => this.fatal(err),
      onGroupRestart: (g, why) => {
        if (ctx.stopped) return;
        o.onGroupRestart?.(why.cause);
        this.groups.restart(g, why).catch((err) => this.fatal(err));
      },
      onPersist: o.onPersist,
      onRepaired: (g, bound) =>
        this.repairs.onRepaired(
          g.id,
          bound,
          this.catalog.group.applied,
          () => this.catalog.state.catalog().nextGroupId,
        ),
      observer: o.applyObserver,
      beforeProcess: () => this.groups.drainAll(),
    });
    this.repairs = new Repairs(ctx);
    this.catalog = new Catalog(ctx, this.runtime, this.repairs);
    this.groups = new GroupRegistry(ctx, this.runtime, this.catalog, this.repairs);
    this.duties = new LeaderDuties(ctx, this.runtime, this.catalog, this.groups);
    this.status = new Status(ctx, this.catalog, this.groups);
    this.data = new DataPlane(ctx, this.catalog, this.groups);
    this.admin = new Admin(ctx, this.runtime, this.catalog, this.groups, this.duties, this.status, this.data);
  }

  /** Opens group 0 (bootstrapping a new cluster's first entry if needed) and starts the node. */
  static async start(o: CairnNodeOptions): Promise<CairnNode> {
    const node = new CairnNode(o);
    await node.catalog.open();
    node.catalog.updatePeers();
    node.runtime.start();
    node.duties.start();
    node.groups.requestReconcile();
    return node;
  }

  // --- NodeApi: data plane ----------------------------------------------------------------

  append(input: AppendInput): Promise<AppendResult> {
    return this.data.append(input);
  }

  read(input: ReadInput): Promise<ReadResult> {
    return this.data.read(input);
  }

  subscribe(input: SubscribeInput, signal: AbortSignal): AsyncGenerator<SubscribeChunk> {
    return this.data.subscribe(input, signal);
  }

  initProducer(): Promise<{ producerId: number; producerEpoch: number }> {
    return this.data.initProducer();
  }

  commitOffset(input: OffsetCommitInput): Promise<void> {
    return this.data.commitOffset(input);
  }

  fetchOffset(
    group: string,
    stream: string,
    partition: number,
  ): Promise<{ offset: number; metadata: string }> {
    return this.data.fetchOffset(group, stream, partition);
  }

  // --- NodeApi: admin and status ----------------------------------------------------------

  createStream(name: string, given: Partial<StreamConfig>): Promise<StreamInfo> {
    return this.admin.createStream(name, given);
  }

  deleteStream(name: string): Promise<void> {
    return this.admin.deleteStream(name);
  }

  listStreams(): Promise<StreamInfo[]> {
    return this.admin.listStreams();
  }

  describeStream(name: string): Promise<StreamInfo> {
    return this.admin.describeStream(name);
  }

  metadata(): Promise<ClusterMetadata> {
    return this.admin.metadata();
  }

  addNode(id: NodeId, apiAddress: string, peerAddress: string): Promise<NodeInfo> {
    return this.admin.addNode(id, apiAddress, peerAddress);
  }

  removeNode(id: NodeId): Promise<void> {
    return this.admin.removeNode(id);
  }

  transferLeader(stream: string, partition: number, toNode: NodeId): Promise<NodeId> {
    return this.admin.transferLeader(stream, partition, toNode);
  }

  nodeStatus(): NodeStatus {
    return this.status.nodeStatus();
  }

  clusterStatus(): Promise<ClusterStatus> {
    return this.status.clusterStatus();
  }

  // --- life cycle -------------------------------------------------------------------------

  private fatal(err: unknown): void {
    this.ctx.o.log.fatal({ err }, 'storage failed; the node stops');
    void this.stop();
    this.ctx.o.onFatal?.(err);
  }

  /** Stops every group and closes their stores (pending fsyncs finish first). */
  async stop(): Promise<void> {
    if (this.ctx.stopped) return;
    this.ctx.stopped = true;
    this.duties.stop();
    this.runtime.stop();
    const closing = await this.groups.stopAll();
    this.catalog.group.stop('the node is stopping');
    closing.push(this.catalog.group.store.close());
    await Promise.allSettled(closing);
  }

  /** The catalog as this node knows it (tests, status). */
  catalogMembers(): Member[] {
    return this.catalog.state.memberList();
  }

  /** Where the catalog, as far as this node has applied it, places each partition group. */
  placement(): { groupId: number; replicas: NodeId[] }[] {
    return this.catalog.state
      .streamList()
      .flatMap((s) => s.partitions.map((p) => ({ groupId: p.groupId, replicas: [...p.replicas] })));
  }

  /** Runs `fn` against group `id` (tests). */
  groupForTest(id: number): RaftGroup | undefined {
    return id === METADATA_GROUP ? this.catalog.group : this.groups.get(id)?.group;
  }
}
