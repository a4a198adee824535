// Every limit and timing of the Raft core, in one place, with units in the names.
// Ticks are the driver's clock: the core counts calls to tick() and nothing else.

import { check, isCount } from './errors.js';

export interface RaftOptions {
  /**
   * A follower or candidate that hears nothing from a leader for a random number of ticks in
   * [electionTimeoutTicks, 2 × electionTimeoutTicks) starts an election. Also the leader's
   * CheckQuorum period, the length of a follower's "leader lease" during which it ignores vote
   * requests (thesis §4.2.3), and the time a leadership transfer may take before it is abandoned.
   */
  electionTimeoutTicks: number;
  /** The leader sends heartbeats every heartbeatTicks ticks. Must be < electionTimeoutTicks. */
  heartbeatTicks: number;
  /** Run a pre-election (thesis §9.6) before incrementing the term. */
  preVote: boolean;
  /**
   * A leader that has not heard from a quorum within an election timeout steps down (thesis
   * §6.2), and a node that heard from a leader within an election timeout ignores vote
   * requests (thesis §4.2.3). Needed for "a removed server cannot disrupt the cluster".
   */
  checkQuorum: boolean;
  /** Upper bound on the entry bytes in one append message (at least one entry is always sent). */
  maxSizePerMsgBytes: number;
  /** Append messages in flight to one follower in the replicate state. */
  maxInflightMsgs: number;
  /** Entry bytes in flight to one follower in the replicate state. */
  maxInflightBytes: number;
  /** Entry bytes handed to the driver for applying and not yet confirmed by applied(). */
  maxApplyBytes: number;
  /** Entry bytes the leader holds uncommitted before it refuses proposals ('overloaded'). */
  maxUncommittedBytes: number;
  /** Read requests waiting on the leader before new ones are refused ('overloaded'). */
  maxPendingReads: number;
  /** Bytes of snapshot data in one InstallSnapshot chunk. */
  snapshotChunkBytes: number;
  /** Snapshot chunks in flight to one follower. */
  maxInflightSnapshotChunks: number;
  /** Ticks without progress on a snapshot transfer before the leader resends from the acked offset. */
  snapshotStallTicks: number;
  /**
   * A learner may be promoted to voter only when its log is within this many entries of the
   * leader's (and holds every committed entry, whatever this is).
   */
  promotionMaxLagEntries: number;
}

export const DEFAULT_OPTIONS: Readonly<RaftOptions> = Object.freeze({
  electionTimeoutTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxSizePerMsgBytes: 1 << 20,
  maxInflightMsgs: 256,
  maxInflightBytes: 32 << 20,
  maxApplyBytes: 16 << 20,
  maxUncommittedBytes: 256 << 20,
  maxPendingReads: 4096,
  snapshotChunkBytes: 1 << 20,
  maxInflightSnapshotChunks: 4,
  snapshotStallTicks: 20,
  promotionMaxLagEntries: 1000,
});

/** Defaults overlaid with `given`; throws RaftError('invalidConfig') on any bad value. */
export function resolveOptions(given: Partial<RaftOptions> | undefined): RaftOptions {
  const o: RaftOptions = { ...DEFAULT_OPTIONS, ...(given ?? {}) };
  const positive: (keyof RaftOptions)[] = [
    'electionTimeoutTicks',
    'heartbeatTicks',
    'maxSizePerMsgBytes',
    'maxInflightMsgs',
    'maxInflightBytes',
    'maxApplyBytes',
    'maxUncommittedBytes',
    'maxPendingReads',
    'snapshotChunkBytes',
    'maxInflightSnapshotChunks',
    'snapshotStallTicks',
  ];
  for (const k of positive) {
    const v = o[k];
    check(isCount(v) && v > 0, 'invalidConfig', `${k} must be a positive integer, got ${String(v)}`);
  }
  check(isCount(o.promotionMaxLagEntries), 'invalidConfig', 'promotionMaxLagEntries must be an integer ≥ 0');
  check(
    o.heartbeatTicks < o.electionTimeoutTicks,
    'invalidConfig',
    `heartbeatTicks (${o.heartbeatTicks}) must be < electionTimeoutTicks (${o.electionTimeoutTicks})`,
  );
  check(typeof o.preVote === 'boolean' && typeof o.checkQuorum === 'boolean', 'invalidConfig', 'flags');
  return o;
}
