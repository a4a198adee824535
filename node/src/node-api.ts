// What a Cairn node offers, in plain TypeScript (numbers, Uint8Arrays): the methods of
// CairnNode. The gRPC server (api/server.ts) is a thin adapter from the public proto to
// these; the simulator calls them directly, without gRPC. Every method fails with a
// CairnError (errors.ts).
import type { DecodedRecord, RecordInput } from '../../core-wasm/src/index.js';
import type { MemberState, NodeId, StreamConfig } from './state/metadata.js';

export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

export interface AppendInput {
  stream: string;
  /** Exactly one of partition and partitionKey. */
  partition?: number;
  partitionKey?: Uint8Array;
  /** Exactly one of records and batch. */
  records?: RecordInput[];
  batch?: Uint8Array;
  /** With records only; a batch carries its own identity. */
  producer?: ProducerIdentity;
  expectedOffset?: number;
}

export interface AppendResult {
  partition: number;
  baseOffset: number;
  lastOffset: number;
}

export interface ReadInput {
  stream: string;
  partition: number;
  offset: number;
  /** 0 = the node's limit. */
  maxBytes: number;
  /** 0 = no bound beyond maxBytes. */
  maxRecords: number;
  maxWaitMs: number;
  linearizable: boolean;
  decode: boolean;
}

export interface ReadResult {
  /** Stored data batches back to back (control batches left out). */
  batches: Uint8Array;
  records: DecodedRecord[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

export type StartFrom = { offset: number } | { position: 'earliest' | 'latest' };

export interface SubscribeInput {
  stream: string;
  partition: number;
  from: StartFrom;
  maxBytesPerMessage: number;
  decode: boolean;
}

export interface SubscribeChunk {
  batches: Uint8Array;
  records: DecodedRecord[];
  nextOffset: number;
  highWatermark: number;
}

export interface OffsetCommitInput {
  group: string;
  stream: string;
  partition: number;
  offset: number;
  metadata: string;
}

export interface PartitionInfo {
  partition: number;
  groupId: number;
  replicas: NodeId[];
  /** As this node knows it; 0 when unknown. */
  leader: NodeId;
  logStartOffset: number;
  highWatermark: number;
}

export interface StreamInfo {
  name: string;
  config: StreamConfig;
  partitions: PartitionInfo[];
}

export interface NodeInfo {
  id: NodeId;
  apiAddress: string;
  peerAddress: string;
  /** The Kafka listener's advertised address, when the catalog has it. */
  kafkaAddress?: string;
  state: MemberState;
}

export interface ClusterMetadata {
  clusterId: string;
  nodes: NodeInfo[];
  streams: StreamInfo[];
  metadataLeader: NodeId;
}

export type GroupRole = 'follower' | 'candidate' | 'preCandidate' | 'leader' | 'learner';

export interface GroupStatus {
  groupId: number;
  /** '' for the metadata group. */
  stream: string;
  partition: number;
  role: GroupRole;
  term: number;
  leader: NodeId;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** On a leader: how far each follower's match index is behind the leader's last index. */
  followerLag: Map<NodeId, number>;
  needsRepair: boolean;
}

export interface NodeStatus {
  node: NodeInfo;
  pid: number;
  uptimeMs: number;
  groups: GroupStatus[];
}

export interface MemberStatus {
  node: NodeInfo;
  healthy: boolean;
  error: string;
  status: NodeStatus | undefined;
}

export interface ClusterStatus {
  clusterId: string;
  members: MemberStatus[];
}

/** The operations of a node; CairnNode implements them. */
export interface NodeApi {
  append(input: AppendInput): Promise<AppendResult>;
  read(input: ReadInput): Promise<ReadResult>;
  /** Pull-based: the caller asks for the next chunk only when it can take it (flow control). */
  subscribe(input: SubscribeInput, signal: AbortSignal): AsyncIterable<SubscribeChunk>;
  initProducer(): Promise<{ producerId: number; producerEpoch: number }>;
  commitOffset(input: OffsetCommitInput): Promise<void>;
  fetchOffset(
    group: string,
    stream: string,
    partition: number,
  ): Promise<{ offset: number; metadata: string }>;

  createStream(name: string, config: Partial<StreamConfig>): Promise<StreamInfo>;
  deleteStream(name: string): Promise<void>;
  listStreams(): Promise<StreamInfo[]>;
  describeStream(name: string): Promise<StreamInfo>;
  metadata(): Promise<ClusterMetadata>;
  nodeStatus(): NodeStatus;
  clusterStatus(): Promise<ClusterStatus>;
  addNode(id: NodeId, apiAddress: string, peerAddress: string): Promise<NodeInfo>;
  removeNode(id: NodeId): Promise<void>;
  /** Empty stream = the metadata group; toNode 0 = the leader picks. Resolves with the new leader. */
  transferLeader(stream: string, partition: number, toNode: NodeId): Promise<NodeId>;
}
