// What this node says about itself and the cluster: each hosted group's role, term, commit
// and followers' lag (NodeStatus), and every member's status asked over the peers
// (ClusterStatus; a member that does not answer in time is reported unhealthy).
import type { NodeId } from '../../../raft/src/index.js';
import { asCairnError } from '../errors.js';
import type { RaftGroup } from '../group/raft-group.js';
import type {
  ClusterStatus,
  GroupRole,
  GroupStatus,
  MemberStatus,
  NodeInfo,
  NodeStatus,
} from '../node-api.js';
import type { Member } from '../state/metadata.js';
import type { Catalog } from './catalog.js';
import type { NodeContext } from './context.js';
import type { GroupRegistry } from './group-registry.js';

export function nodeInfo(m: Member): NodeInfo {
  const n: NodeInfo = { id: m.id, apiAddress: m.apiAddress, peerAddress: m.peerAddress, state: m.state };
  if (m.kafkaAddress !== undefined) n.kafkaAddress = m.kafkaAddress;
  return n;
}

export class Status {
  private readonly startedAt: number;

  constructor(
    private readonly ctx: NodeContext,
    private readonly catalog: Catalog,
    private readonly groups: GroupRegistry,
  ) {
    this.startedAt = ctx.o.clock.now();
  }

  nodeStatus(): NodeStatus {
    const c = this.ctx.o.config;
    const self = this.catalog.state.member(this.ctx.id);
    const groups: GroupStatus[] = [this.groupStatus(this.catalog.group, '', 0)];
    for (const pg of this.groups.all()) {
      const where = this.catalog.state.partitionOfGroup(pg.group.id);
      groups.push(this.groupStatus(pg.group, where?.stream.name ?? '', where?.partition ?? 0));
    }
    return {
      node: self
        ? nodeInfo(self)
        : { id: this.ctx.id, apiAddress: c.apiAddress, peerAddress: c.peerAddress, state: 'joining' },
      pid: this.ctx.o.pid ?? 0,
      uptimeMs: Math.round(this.ctx.o.clock.now() - this.startedAt),
      groups,
    };
  }

  private groupStatus(g: RaftGroup, stream: string, partition: number): GroupStatus {
    const s = g.core.status();
    const id = this.ctx.id;
    const role: GroupRole = s.role === 'follower' && s.conf.learners.includes(id) ? 'learner' : s.role;
    const followerLag = new Map<NodeId, number>();
    for (const p of s.progress) if (p.id !== id) followerLag.set(p.id, Math.max(0, s.lastIndex - p.match));
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
    const o = this.ctx.o;
    const members = this.catalog.state.memberList();
    const timeoutMs = Math.min(2_000, o.config.limits.requestTimeoutMs);
    const statuses = await Promise.all(
      members.map(async (m): Promise<MemberStatus> => {
        const node = nodeInfo(m);
        if (m.id === this.ctx.id) return { node, healthy: true, error: '', status: this.nodeStatus() };
        try {
          const status = await this.ctx.timeout(o.peerStatus(node, timeoutMs), timeoutMs + 100, 'status');
          return { node, healthy: true, error: '', status };
        } catch (err) {
          return { node, healthy: false, error: asCairnError(err).message, status: undefined };
        }
      }),
    );
    return { clusterId: this.catalog.state.clusterId || o.config.clusterId, members: statuses };
  }
}
