// The admin side of NodeApi: streams (create, delete, list, describe), cluster metadata,
// membership (AddNode, RemoveNode) and leadership transfer. Each changes the catalog on the
// group-0 leader and then waits for the leader duties to make the groups follow it:
//   AddNode     the duties add the node as a learner, promote it once caught up, mark it active
//   RemoveNode  the partition leaders move replicas off it (planRemoval's moves); then it
//               leaves group 0 and is forgotten, once no partition anywhere has it
import type { NodeId } from '../../../raft/src/index.js';
import { isAddress, isNodeId } from '../config.js';
import { CairnError, invalidRequest, limitExceeded, notLeader } from '../errors.js';
import type { RaftGroup } from '../group/raft-group.js';
import type { GroupRuntime } from '../group/runtime.js';
import type { ClusterMetadata, NodeInfo, StreamInfo } from '../node-api.js';
import { placeReplicas, planRemoval, type StreamConfig, type StreamMeta } from '../state/metadata.js';
import type { Catalog } from './catalog.js';
import { METADATA_GROUP, type NodeContext } from './context.js';
import type { DataPlane } from './data-plane.js';
import type { GroupRegistry } from './group-registry.js';
import type { LeaderDuties } from './leader-duties.js';
import { nodeInfo, type Status } from './status.js';

export class Admin {
  constructor(
    private readonly ctx: NodeContext,
    private readonly runtime: GroupRuntime,
    private readonly catalog: Catalog,
    private readonly groups: GroupRegistry,
    private readonly duties: LeaderDuties,
    private readonly status: Status,
    private readonly data: DataPlane,
  ) {}

  /** A member is live when this node heard from it within two election timeouts. */
  private isLive(id: NodeId): boolean {
    const c = this.ctx.o.config.raft;
    return this.runtime.heardWithin(id, 2 * c.electionTicks * c.tickMs);
  }

  async createStream(name: string, given: Partial<StreamConfig>): Promise<StreamInfo> {
    const limits = this.ctx.o.config.limits;
    this.ctx.checkName(name, 'a stream name');
    if (!this.catalog.group.isLeader) throw this.catalog.notLeader();
    const state = this.catalog.state;
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
    const r = await this.catalog.proposeOk({ type: 'createStream', name, config, placement });
    const s = r.value as StreamMeta;
    // Answer once the partitions hosted here have a leader, so the stream is usable at once.
    const id = this.ctx.id;
    await this.ctx
      .waitUntil(
        () =>
          s.partitions.every(
            (p) => !p.replicas.includes(id) || (this.groups.get(p.groupId)?.group.leader ?? 0) !== 0,
          ),
        limits.requestTimeoutMs,
      )
      .catch(() => {});
    return this.streamInfo(this.catalog.state.stream(name) ?? s);
  }

  async deleteStream(name: string): Promise<void> {
    await this.catalog.proposeOk({ type: 'deleteStream', name });
  }

  async listStreams(): Promise<StreamInfo[]> {
    return this.catalog.state.streamList().map((s) => this.streamInfo(s));
  }

  async describeStream(name: string): Promise<StreamInfo> {
    return this.streamInfo(await this.catalog.findStream(name));
  }

  private streamInfo(s: StreamMeta): StreamInfo {
    return {
      name: s.name,
      config: { ...s.config },
      partitions: s.partitions.map((p, i) => {
        const pg = this.groups.get(p.groupId);
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

  async metadata(): Promise<ClusterMetadata> {
    const st = this.catalog.state;
    return {
      clusterId: st.clusterId || this.ctx.o.config.clusterId,
      nodes: st.memberList().map(nodeInfo),
      streams: st.streamList().map((s) => this.streamInfo(s)),
      metadataLeader: this.catalog.group.leader,
    };
  }

  async addNode(id: NodeId, apiAddress: string, peerAddress: string): Promise<NodeInfo> {
    if (!isNodeId(id)) throw invalidRequest('node id must be a positive integer');
    if (!isAddress(apiAddress) || !isAddress(peerAddress))
      throw invalidRequest('addresses must be host:port');
    if (!this.catalog.group.isLeader) throw this.catalog.notLeader();
    const existing = this.catalog.state.member(id);
    if (existing?.state === 'leaving') throw invalidRequest(`node ${id} is being removed`);
    if (existing === undefined)
      await this.catalog.proposeOk({ type: 'addMember', id, apiAddress, peerAddress });
    else if (existing.apiAddress !== apiAddress || existing.peerAddress !== peerAddress) {
      throw invalidRequest(`node ${id} is already a member with other addresses`);
    }
    // The duties add it as a learner, promote it once caught up, and mark it active.
    await this.ctx.waitUntil(
      () => this.catalog.state.member(id)?.state === 'active',
      this.ctx.o.config.limits.membershipTimeoutMs,
    );
    return nodeInfo(this.catalog.state.member(id)!);
  }

  async removeNode(id: NodeId): Promise<void> {
    const limits = this.ctx.o.config.limits;
    if (!this.catalog.group.isLeader) throw this.catalog.notLeader();
    const m = this.catalog.state.member(id);
    if (m === undefined) throw invalidRequest(`node ${id} is not a member`);
    if (m.state !== 'leaving') {
      const others = this.catalog.state.memberList().filter((x) => x.id !== id && x.state === 'active');
      if (others.length === 0) throw invalidRequest('cannot remove the last node');
      await this.catalog.proposeOk({
        type: 'removeMember',
        id,
        moves: planRemoval(this.catalog.state, id, (x) => this.isLive(x)),
      });
    }
    // Wait until no partition group anywhere still has the node (the partition leaders move
    // replicas off it), as the members' statuses show.
    await this.ctx.waitUntilAsync(async () => !(await this.anyGroupHas(id)), limits.membershipTimeoutMs);
    const g = this.catalog.group;
    if (id === this.ctx.id) {
      // The metadata leader is leaving: hand group 0 to another voter; the client retries there.
      const to = this.duties.bestTransferTarget(
        g,
        g.conf().voters.filter((v) => v !== id),
      );
      if (to !== 0) g.core.transferLeadership(to);
      this.runtime.markDirty(g);
      await this.ctx.waitUntil(() => !g.isLeader, limits.requestTimeoutMs).catch(() => {});
      throw this.catalog.notLeader();
    }
    await this.ctx.waitUntilAsync(async () => {
      if (!g.isLeader) throw this.catalog.notLeader();
      const conf = g.conf();
      if (!conf.voters.includes(id) && !conf.learners.includes(id)) return true;
      this.duties.confChange(g, { type: 'remove', node: id });
      return false;
    }, limits.membershipTimeoutMs);
    if (this.catalog.state.member(id) !== undefined)
      await this.catalog.proposeOk({ type: 'forgetMember', id });
  }

  /**
   * Whether some partition may still have `id` as a member: for every partition, its
   * current leader (the highest-term leader among the members' statuses) must be another
   * node and must not replicate to `id`. A partition whose leader cannot be seen right now
   * counts as "maybe": only positive evidence ends the wait.
   */
  private async anyGroupHas(id: NodeId): Promise<boolean> {
    const status = await this.status.clusterStatus();
    const leaders = new Map<number, { node: NodeId; term: number; lag: Map<NodeId, number> }>();
    for (const ms of status.members) {
      for (const g of ms.status?.groups ?? []) {
        if (g.groupId === METADATA_GROUP || g.role !== 'leader') continue;
        const seen = leaders.get(g.groupId);
        if (seen === undefined || g.term > seen.term)
          leaders.set(g.groupId, { node: ms.node.id, term: g.term, lag: g.followerLag });
      }
    }
    for (const s of this.catalog.state.streamList()) {
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
      g = this.catalog.group;
      what = 'the metadata group';
    } else {
      g = (await this.data.localPartition(stream, partition)).group;
      what = `partition ${stream}/${partition}`;
    }
    if (!g.isLeader) throw notLeader(what, g.leader, this.catalog.addressOf(g.leader));
    const voters = g.conf().voters;
    const to = toNode === 0 ? this.duties.bestTransferTarget(g, voters) : toNode;
    if (to === this.ctx.id) return this.ctx.id;
    if (to === 0) throw invalidRequest(`${what} has no other voter to lead`);
    const r = g.core.transferLeadership(to);
    this.runtime.markDirty(g);
    if (!r.ok) throw invalidRequest(`cannot transfer ${what} to node ${to}: ${r.reason}`);
    const raft = this.ctx.o.config.raft;
    const electionMs = raft.tickMs * raft.electionTicks * 3;
    await this.ctx.waitUntil(
      () => g.leader !== this.ctx.id && g.leader !== 0,
      Math.max(electionMs, this.ctx.o.config.limits.requestTimeoutMs),
    );
    return g.leader;
  }
}
