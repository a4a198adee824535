// Every limit the node enforces, in one place, with its unit in its name. A node's
// configuration may override any of them (config.ts); the defaults are here.

export interface Limits {
  /** One record's key + value + headers, as encoded in its batch. */
  maxRecordBytes: number;
  /** One appended batch (what one Append adds to the log). */
  maxBatchBytes: number;
  /** Records in one Append. */
  maxRecordsPerAppend: number;
  /** One gRPC request or response message on the public API. */
  maxRequestBytes: number;
  /** Batch bytes one Read or one Subscribe message returns at most. */
  maxReadBytes: number;
  /** Longest long-poll wait a Read may ask for. */
  maxReadWaitMs: number;
  /** Streams in the cluster. */
  maxStreams: number;
  /** Partitions of one stream. */
  maxPartitionsPerStream: number;
  /** Partitions of all streams together. */
  maxPartitionsTotal: number;
  /** Stream and consumer group names, in UTF-8 bytes. */
  maxNameBytes: number;
  /** The metadata string stored with a consumer offset, in UTF-8 bytes. */
  maxOffsetMetadataBytes: number;
  /** Consumer groups with a stored offset, per partition. */
  maxConsumerGroupsPerPartition: number;
  /** Idempotent producers remembered per partition (least recently used forgotten first). */
  maxProducersPerPartition: number;
  /** Batches remembered per producer for duplicate detection (Kafka keeps 5). */
  producerBatchesRemembered: number;
  /** Appends waiting for commit per partition, in bytes: beyond it new appends get UNAVAILABLE. */
  maxPendingAppendBytesPerPartition: number;
  /** Open Subscribe streams per node. */
  maxSubscribers: number;
  /** Subscribe messages written but not yet taken by the client, per subscriber (flow control). */
  maxSubscriberBufferedBytes: number;
  /** How long an Append or admin call waits for its commit before answering TIMEOUT. */
  requestTimeoutMs: number;

  /** One frame between nodes (encoded), enforced on send and on receive. */
  maxPeerFrameBytes: number;
  /** Frames queued for one peer, in bytes; beyond it frames are dropped (Raft retries). */
  maxPeerQueueBytes: number;
  /** Entries' bytes in one Raft AppendEntries message. */
  maxAppendEntriesBytes: number;
  /** Bytes of one snapshot chunk. */
  snapshotChunkBytes: number;
  /** A group takes a snapshot once this many entries were applied since its last one. */
  snapshotIntervalEntries: number;
  /** How long AddNode and RemoveNode wait for the cluster to converge before answering TIMEOUT. */
  membershipTimeoutMs: number;
}

const MiB = 1024 * 1024;

export const defaultLimits: Readonly<Limits> = Object.freeze({
  maxRecordBytes: 1 * MiB,
  maxBatchBytes: 4 * MiB,
  maxRecordsPerAppend: 100_000,
  maxRequestBytes: 8 * MiB,
  maxReadBytes: 4 * MiB,
  maxReadWaitMs: 60_000,
  maxStreams: 1_000,
  maxPartitionsPerStream: 256,
  maxPartitionsTotal: 4_096,
  maxNameBytes: 249, // Kafka's topic name limit
  maxOffsetMetadataBytes: 4_096,
  maxConsumerGroupsPerPartition: 10_000,
  maxProducersPerPartition: 10_000,
  producerBatchesRemembered: 5,
  maxPendingAppendBytesPerPartition: 64 * MiB,
  maxSubscribers: 1_000,
  maxSubscriberBufferedBytes: 8 * MiB,
  requestTimeoutMs: 10_000,
  maxPeerFrameBytes: 64 * MiB,
  maxPeerQueueBytes: 128 * MiB,
  maxAppendEntriesBytes: 4 * MiB,
  snapshotChunkBytes: 1 * MiB,
  snapshotIntervalEntries: 10_000,
  membershipTimeoutMs: 60_000,
});

/** Raft timing. A tick is the unit the Raft core counts in; the Clock fires one every tickMs. */
export interface RaftTiming {
  tickMs: number;
  /** Base election timeout; the core randomizes in [electionTicks, 2 × electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
}

export const defaultRaftTiming: Readonly<RaftTiming> = Object.freeze({
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 2,
});
