// What the core hands the driver (RaftCore.takeReady) and what the driver owes in return.
// The driver loop, in order, for each Ready:
//
//   1. snapshot: do each item in order. An 'install' must be reflected by the LogReader
//      (log = the snapshot point alone) before the next call into the core.
//   2. logWrite: hand it to storage (truncate, then append) before the next call into the
//      core; the LogReader reflects it at once, while the write and fsync are in flight.
//   3. hardState: write it with (or before) this Ready's entries; one fsync covers both.
//   4. messagesNow: send at once (the leader's appends go out before its own fsync).
//   5. When this Ready's durable work (snapshot chunks/install, entries, hard state) and that
//      of every earlier Ready is durable: send messagesAfterPersist, then call
//      persisted(lastEntry.index, lastEntry.term) for the logWrite's last entry, and
//      snapshotInstalled(meta) for an install once the state machine reflects it too.
//   6. committed: apply in order (any time, even before step 5); call applied(index) after.
//   7. reads: serve a 'ready' read once the state machine has applied through its index.
//
// Entries, messages and snapshot work are shared with the core's callers: the driver may
// keep them but must not mutate them (except filling SnapshotChunkMessage.data).

import type { LogWrite } from './memory-log.js';
import type { Message } from './messages.js';
import type { Entry, HardState, NodeId, SnapshotMeta } from './types.js';

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state worth telling the driver when it changes (for NOT_LEADER redirects, metrics). */
export interface SoftState {
  leader: NodeId;
  role: Role;
}

/** Follower-side snapshot transfer work, in the order it must be done. */
export type SnapshotWork =
  /**
   * Write bytes [offset, offset + data.length) of the incoming snapshot `meta` (chunks come
   * in order, starting at 0). Durable work: its ack is in messagesAfterPersist.
   */
  | { type: 'writeChunk'; meta: SnapshotMeta; offset: number; data: Uint8Array; done: boolean }
  /** Drop the partial bytes of `meta`: a different snapshot is now being received. */
  | { type: 'discardPartial'; meta: SnapshotMeta }
  /**
   * Every byte of `meta` is written: replace the log and the state machine with it. Before
   * the next call into the core the LogReader must show the snapshot point alone
   * (firstIndex = meta.index + 1, lastIndex = meta.index, term(meta.index) = meta.term).
   * When it is durable and the state machine reflects it, call snapshotInstalled(meta).
   */
  | { type: 'install'; meta: SnapshotMeta };

/**
 * The outcome of a linearizable read request made through readIndex(context). A forwarded
 * read whose message the network duplicated may be answered more than once (each answer is
 * valid): the driver acts on the first and ignores contexts it no longer waits for.
 */
export type ReadResult =
  /** Serve the read once the local state machine has applied through `index`. */
  | { type: 'ready'; context: number; index: number }
  /** The read cannot be confirmed; the client may retry (it can also time out on its own). */
  | { type: 'failed'; context: number; reason: 'leaderChanged' | 'overloaded' };

export interface Ready {
  /** Set when the leader or role changed since the last Ready. */
  softState: SoftState | undefined;
  /** Set when term, vote or commit changed: persist it (durable work). */
  hardState: HardState | undefined;
  /** Follower-side snapshot transfer work, in order, before logWrite. */
  snapshot: readonly SnapshotWork[];
  /** Entries to append, after a truncation when truncateFrom is set (durable work). */
  logWrite: LogWrite | undefined;
  /** Messages that may be sent now. */
  messagesNow: readonly Message[];
  /** Messages to send only after this Ready's and every earlier Ready's durable work is durable. */
  messagesAfterPersist: readonly Message[];
  /**
   * Committed entries to apply, in log order, continuing the previous Ready's. Includes
   * 'noop' and 'config' entries (decodeConfState reads the latter; the core has already
   * acted on them). Bounded by maxApplyBytes of unconfirmed apply work.
   */
  committed: readonly Entry[];
  /** Outcomes of read requests. */
  reads: readonly ReadResult[];
  /**
   * Set once a node that reported lost entries (RaftInit.lostEntries, reportLostEntries)
   * holds a leader's log through the repair bound that leader gave it: it may vote and
   * campaign again, and the driver may clear its durable "repair needed" marker. The value
   * is that bound: every entry committed before the repair ended lies at or below it.
   */
  repairedPast: number | undefined;
}

/** propose() and proposeConfChange() outcomes. */
export type ProposeResult =
  | { ok: true; firstIndex: number; lastIndex: number; term: number }
  | { ok: false; reason: ProposeRejection; leader: NodeId; detail?: string };

export type ProposeRejection =
  /** This node is not the leader; `leader` is the one it knows of (0: none). */
  | 'notLeader'
  /** A leadership transfer is under way; retry at the new leader. */
  | 'transferring'
  /** More than maxUncommittedBytes are waiting to commit. */
  | 'overloaded'
  /** Config change: another config entry is not yet committed. */
  | 'changePending'
  /**
   * Config change: the leader has not yet committed an entry of its own term. Any proposal:
   * a leader elected by its own vote alone has not yet persisted its no-op (its term).
   */
  | 'leaderNotReady'
  /** Config change: the learner's log lags by more than promotionMaxLagEntries. */
  | 'notCaughtUp'
  /** Config change: not a valid single-server change of the current configuration (see detail). */
  | 'invalidChange';

export type ReadRequestResult = { ok: true } | { ok: false; reason: 'noLeader' | 'overloaded' };

export type TransferResult =
  | { ok: true }
  | { ok: false; reason: 'notLeader' | 'self' | 'unknownNode' | 'learner'; leader: NodeId };
