// The messages Raft cores exchange. The driver carries them between nodes (serializing
// them as it likes) and hands each to the recipient's step(). Every message names its
// sender's term: a message from a higher term makes the recipient adopt that term
// (Raft §5.1), one from a lower term is answered or dropped (see RaftCore.step).

import type { Entry, NodeId, SnapshotMeta } from './types.js';

interface Envelope {
  /** The sender's current term (for a pre-vote request: the term the sender would campaign in). */
  term: number;
  from: NodeId;
  to: NodeId;
}

/** AppendEntries (Raft §5.3), also a probe (no entries) and the carrier of the commit index. */
export interface AppendMessage extends Envelope {
  type: 'append';
  /** The entry just before `entries` in the leader's log, which the follower must hold. */
  prevIndex: number;
  prevTerm: number;
  /** Consecutive entries: entries[k].index === prevIndex + 1 + k. Shared, never mutated. */
  entries: readonly Entry[];
  /** The leader's commit index when the message was made. */
  commit: number;
  /** To a follower repairing lost entries: how far it must hold our log before it votes again. */
  repairBound?: number;
  /** With repairBound: the follower's `repairing` token it answers (a bound for an earlier loss is not one). */
  repairToken?: number;
}

/** The answer to an append (or to a completed snapshot install). */
export interface AppendResponse extends Envelope {
  type: 'appendResponse';
  /**
   * On success: the follower's log matches the leader's through `index` and holds it durably.
   * On reject: the `prevIndex` of the rejected append.
   */
  index: number;
  reject: boolean;
  /** On reject: the follower's guess at the last index where the logs may agree (≤ index). */
  hintIndex: number;
  /** On reject: the follower's term at hintIndex (0 if unknown), so the leader can skip a whole term. */
  hintTerm: number;
  /**
   * The follower is repairing lost entries (DESIGN §6): what it acknowledged before may be
   * gone, and it may have forgotten its term. A token drawn at each loss (> 0), which the
   * bound must carry back; every answer carries it until the repair is done.
   */
  repairing?: number;
}

/** Leader liveness and ReadIndex confirmation (thesis §6.4). */
export interface HeartbeatMessage extends Envelope {
  type: 'heartbeat';
  /** min(follower's known match, leader commit): an index the follower surely holds. */
  commit: number;
  /** The leader's latest read round; echoed back to confirm leadership for reads up to it. */
  readSeq: number;
  /** As AppendMessage.repairBound and repairToken. */
  repairBound?: number;
  repairToken?: number;
}

export interface HeartbeatResponse extends Envelope {
  type: 'heartbeatResponse';
  readSeq: number;
  /**
   * Present when the heartbeat's commit (≤ what this follower acknowledged) lies past the
   * end of its log: the index its log ends at. It lost entries it acknowledged (a wiped or
   * damaged disk), and the leader, which would otherwise only send heartbeats to a follower
   * it believes matched, probes it again and re-sends what it lacks.
   */
  logEnd?: number;
  /** As AppendResponse.repairing. */
  repairing?: number;
}

/** RequestVote (Raft §5.2), or a pre-vote (thesis §9.6) when `pre`. */
export interface VoteMessage extends Envelope {
  type: 'vote';
  pre: boolean;
  lastIndex: number;
  lastTerm: number;
  /** Campaign started by a leadership transfer: voters ignore their leader lease (thesis §3.10). */
  transfer: boolean;
}

export interface VoteResponse extends Envelope {
  type: 'voteResponse';
  pre: boolean;
  granted: boolean;
}

/**
 * One chunk of InstallSnapshot (Raft §7), bytes [offset, offset + length) of the snapshot
 * named by meta (index, term).
 *
 * The core never holds snapshot bytes: it emits chunks with `data` empty and `length` set,
 * and the driver fills `data` with exactly `length` bytes read from its snapshot before it
 * sends the message (or, if it no longer has that snapshot, drops the message and calls
 * reportSnapshot(to, false)). A received chunk must carry data.length === length.
 */
export interface SnapshotChunkMessage extends Envelope {
  type: 'snapshotChunk';
  meta: SnapshotMeta;
  offset: number;
  length: number;
  /** offset + length === meta.size: the last chunk. */
  done: boolean;
  data: Uint8Array;
}

/** The follower's progress on receiving a snapshot: bytes [0, offset) are written. */
export interface SnapshotAckMessage extends Envelope {
  type: 'snapshotAck';
  /** The snapshot (meta.index, meta.term) the ack is about. */
  index: number;
  snapshotTerm: number;
  offset: number;
  /** The follower did not take the chunk it got (gap or unknown transfer): resend from `offset`. */
  rewind: boolean;
}

/** Leadership transfer: the leader tells a caught-up target to campaign now (thesis §3.10). */
export interface TimeoutNowMessage extends Envelope {
  type: 'timeoutNow';
}

/** A follower forwards a linearizable read to the leader (thesis §6.4). */
export interface ReadIndexMessage extends Envelope {
  type: 'readIndex';
  context: number;
}

export interface ReadIndexResponse extends Envelope {
  type: 'readIndexResponse';
  context: number;
  /** The read may be served once the follower has applied through this index. */
  index: number;
  /** The leader could not serve it (it lost leadership, or it is overloaded). */
  reject: boolean;
}

export type Message =
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | VoteMessage
  | VoteResponse
  | SnapshotChunkMessage
  | SnapshotAckMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponse;

export type MessageType = Message['type'];

/**
 * Whether a message may leave only once the durable work of its Ready (and of every earlier
 * Ready) is on disk. Each such message asserts something about durable state:
 * - `vote` (not pre): the candidate's own term and self-vote must survive a crash, or it
 *   could vote again in the same term.
 * - `voteResponse` (not pre): a granted vote must be durable, or after a crash the voter
 *   could grant a second candidate in the same term (two leaders in one term).
 * - `appendResponse`: a success says the entries are durable; the leader counts it toward
 *   commit. (Rejects go the same way, so responses to one leader stay in order.)
 * - `snapshotAck`: says the chunk's bytes are written.
 * Everything else (the leader's appends, heartbeats, chunks, pre-votes, reads) depends on
 * nothing unwritten and may go at once; in particular the leader sends appends before its
 * own fsync (thesis §10.2.1), counting itself only after persisted().
 */
export function needsPersist(m: Message): boolean {
  switch (m.type) {
    case 'vote':
    case 'voteResponse':
      return !m.pre;
    case 'appendResponse':
    case 'snapshotAck':
      return true;
    case 'append':
    case 'heartbeat':
    case 'heartbeatResponse':
    case 'snapshotChunk':
    case 'timeoutNow':
    case 'readIndex':
    case 'readIndexResponse':
      return false;
  }
}
