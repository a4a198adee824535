// Generated proto messages → the client's plain types (types.ts), at the API boundary.
import type {
  ClusterStatusResponse,
  GetMetadataResponse,
  GroupStatus as GroupStatusMsg,
  NodeInfo as NodeInfoMsg,
  NodeStatusResponse,
  StreamInfo as StreamInfoMsg,
} from '../../proto/gen/cairn/v1/cairn_pb.js';
import { NodeState as NodeStateMsg, Role } from '../../proto/gen/cairn/v1/cairn_pb.js';
import { CairnClientError } from './errors.js';
import type {
  ClusterMetadata,
  ClusterStatus,
  GroupRole,
  GroupStatus,
  NodeInfo,
  NodeState,
  NodeStatus,
  StreamInfo,
} from './types.js';

/** An int64 from the wire as a number; outside the safe range it is a server bug, reported as INTERNAL. */
export function toNumber(v: bigint, what: string): number {
  if (v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CairnClientError('INTERNAL', `the server sent ${what} ${v}, outside the safe integer range`);
  }
  return Number(v);
}

export function streamInfo(s: StreamInfoMsg): StreamInfo {
  const c = s.config;
  return {
    name: s.name,
    config: {
      partitions: c?.partitions ?? s.partitions.length,
      replicationFactor: c?.replicationFactor ?? 0,
      retentionBytes: toNumber(c?.retentionBytes ?? 0n, 'retention bytes'),
      retentionMs: toNumber(c?.retentionMs ?? 0n, 'retention ms'),
      compacted: c?.compacted ?? false,
      deleteRetentionMs: toNumber(c?.deleteRetentionMs ?? 0n, 'delete retention ms'),
      segmentBytes: toNumber(c?.segmentBytes ?? 0n, 'segment bytes'),
    },
    partitions: s.partitions.map((p) => ({
      partition: p.partition,
      groupId: toNumber(p.groupId, 'group id'),
      replicas: [...p.replicas],
      leader: p.leader,
      logStartOffset: toNumber(p.logStartOffset, 'log start offset'),
      highWatermark: toNumber(p.highWatermark, 'high watermark'),
    })),
  };
}

const nodeStates: Record<NodeStateMsg, NodeState> = {
  [NodeStateMsg.UNSPECIFIED]: 'unknown',
  [NodeStateMsg.ACTIVE]: 'active',
  [NodeStateMsg.JOINING]: 'joining',
  [NodeStateMsg.LEAVING]: 'leaving',
};

const roles: Record<Role, GroupRole> = {
  [Role.UNSPECIFIED]: 'unknown',
  [Role.FOLLOWER]: 'follower',
  [Role.CANDIDATE]: 'candidate',
  [Role.PRE_CANDIDATE]: 'pre-candidate',
  [Role.LEADER]: 'leader',
  [Role.LEARNER]: 'learner',
};

export function nodeInfo(n: NodeInfoMsg | undefined): NodeInfo {
  return {
    id: n?.id ?? 0,
    apiAddress: n?.apiAddress ?? '',
    peerAddress: n?.peerAddress ?? '',
    state: nodeStates[n?.state ?? NodeStateMsg.UNSPECIFIED] ?? 'unknown',
  };
}

function groupStatus(g: GroupStatusMsg): GroupStatus {
  const followerLag: Record<number, number> = {};
  for (const [id, lag] of Object.entries(g.followerLag)) followerLag[Number(id)] = toNumber(lag, 'lag');
  return {
    groupId: toNumber(g.groupId, 'group id'),
    stream: g.stream,
    partition: g.partition,
    role: roles[g.role] ?? 'unknown',
    term: toNumber(g.term, 'term'),
    leader: g.leader,
    commitIndex: toNumber(g.commitIndex, 'commit index'),
    appliedIndex: toNumber(g.appliedIndex, 'applied index'),
    lastIndex: toNumber(g.lastIndex, 'last index'),
    followerLag,
    needsRepair: g.needsRepair,
  };
}

export function nodeStatus(s: NodeStatusResponse): NodeStatus {
  return {
    node: nodeInfo(s.node),
    pid: s.pid,
    uptimeMs: toNumber(s.uptimeMs, 'uptime'),
    groups: s.groups.map(groupStatus),
  };
}

export function clusterStatus(c: ClusterStatusResponse): ClusterStatus {
  return {
    clusterId: c.clusterId,
    members: c.members.map((m) => ({
      node: nodeInfo(m.node),
      healthy: m.healthy,
      error: m.error,
      status: m.status === undefined ? undefined : nodeStatus(m.status),
    })),
  };
}

export function clusterMetadata(m: GetMetadataResponse): ClusterMetadata {
  return {
    clusterId: m.clusterId,
    nodes: m.nodes.map(nodeInfo),
    streams: m.streams.map(streamInfo),
    metadataLeader: m.metadataLeader,
  };
}
