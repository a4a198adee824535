// The plain types of the client's public surface. Offsets, ids and sizes are JavaScript
// numbers (int64 on the wire): a partition never reaches 2^53 offsets, and core-wasm, which
// decodes the batches, uses numbers too. Keys, values and header values are bytes; the
// producer also takes strings and encodes them as UTF-8.

export type Bytes = Uint8Array;

export interface ProduceHeader {
  key: string;
  value: Bytes | string | null;
}

/** A record to append. */
export interface ProduceRecord {
  /** Chooses the partition (xxHash32 of the key bytes mod partitions) unless one is given. */
  key?: Bytes | string | null;
  /** null = a tombstone (a compacted stream drops the key). */
  value: Bytes | string | null;
  headers?: ProduceHeader[];
  /** Milliseconds since the Unix epoch; default: the time the batch is built. */
  timestamp?: number;
}

export interface AppendOptions {
  /** Append to this partition, whatever the records' keys. */
  partition?: number;
  /**
   * Conditional append: succeeds only if the partition's next offset equals this
   * (EXPECTED_OFFSET_MISMATCH otherwise, with the actual next offset in the error's facts).
   * The records of the call go in one batch, alone, to one partition.
   */
  expectedOffset?: number;
}

/** Where an appended record landed. */
export interface RecordPosition {
  partition: number;
  offset: number;
}

export interface RecordHeader {
  key: string;
  value: Bytes | null;
}

/** A record read back. */
export interface ConsumedRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: Bytes | null;
  value: Bytes | null;
  headers: RecordHeader[];
}

export interface ReadOptions {
  /** First offset to return (records below it in the first batch are skipped). */
  offset: number;
  /** Upper bound on batch bytes the server returns (0 = the server's limit). */
  maxBytes?: number;
  /** Upper bound on records returned (0 = none beyond maxBytes). */
  maxRecords?: number;
  /** Wait up to this long for records when none is available at `offset` (long poll). */
  maxWaitMs?: number;
  /** Serve only after the leader confirms it still leads (ReadIndex): sees every committed append. */
  linearizable?: boolean;
  /**
   * Which replica serves the read: 'leader' (default; reads see every append acknowledged
   * to this client) or 'any' (spreads load; a follower may lag behind the leader).
   */
  replica?: 'leader' | 'any';
}

export interface ReadResult {
  records: ConsumedRecord[];
  /** Offset to read from next (past any control batches, which are never returned). */
  nextOffset: number;
  /** One past the last committed offset, as the serving replica knows it. */
  highWatermark: number;
  /** First offset still held (retention removed earlier ones). */
  logStartOffset: number;
}

export type StartFrom = number | 'earliest' | 'latest';

export interface SubscribeOptions {
  partition?: number;
  /** An offset, 'earliest' (the first held) or 'latest' (only records appended from now on). Default 'latest'. */
  from?: StartFrom;
  /** Bytes of batches per server message (default: the client's subscribeMaxBytesPerMessage). */
  maxBytesPerMessage?: number;
  /** Ends the iteration (it returns normally). */
  signal?: AbortSignal;
}

export interface StreamConfig {
  partitions: number;
  replicationFactor: number;
  /** 0 = unlimited. */
  retentionBytes: number;
  retentionMs: number;
  compacted: boolean;
  deleteRetentionMs: number;
  /** 0 = the server's default. */
  segmentBytes: number;
}

export interface PartitionInfo {
  partition: number;
  groupId: number;
  replicas: number[];
  /** As the answering node knows it; 0 when unknown. */
  leader: number;
  logStartOffset: number;
  highWatermark: number;
}

export interface StreamInfo {
  name: string;
  config: StreamConfig;
  partitions: PartitionInfo[];
}

export type NodeState = 'active' | 'joining' | 'leaving' | 'unknown';

export interface NodeInfo {
  id: number;
  apiAddress: string;
  peerAddress: string;
  state: NodeState;
}

export type GroupRole = 'follower' | 'candidate' | 'pre-candidate' | 'leader' | 'learner' | 'unknown';

export interface GroupStatus {
  groupId: number;
  /** '' for the metadata group. */
  stream: string;
  partition: number;
  role: GroupRole;
  term: number;
  leader: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** On a leader: node id → how many entries its log is behind the leader's. */
  followerLag: Record<number, number>;
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
  /** Why the member did not answer, when unhealthy. */
  error: string;
  status: NodeStatus | undefined;
}

export interface ClusterStatus {
  clusterId: string;
  members: MemberStatus[];
}

export interface ClusterMetadata {
  clusterId: string;
  nodes: NodeInfo[];
  streams: StreamInfo[];
  /** Leader of the metadata group; 0 when unknown. */
  metadataLeader: number;
}

export interface CommittedOffset {
  /** -1 when the group has committed nothing for this partition. */
  offset: number;
  metadata: string;
}
