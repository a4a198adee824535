// The leader's view of each member's replication (etcd-io/raft's tracker, in our words).
// See raft/DESIGN-NOTES.md for the state pictures.
//
//   probe      one append at a time; wait for its answer (or a heartbeat answer) before the next.
//   replicate  optimistic pipelining: next runs ahead of match, bounded by Inflights.
//   snapshot   the follower needs entries the log no longer holds; a chunked transfer runs.
//
// Invariant: 0 ≤ match < next (match = highest index known to match and be durable there).

import type { NodeId, SnapshotMeta } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * A ring of the append messages in flight to one follower: the last index each carried and
 * its entry bytes. Fixed capacity; typed arrays, so tracking a message allocates nothing.
 * Invariant: lastIndexes of live slots increase from oldest to newest.
 */
export class Inflights {
  private readonly lastIndexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(
    readonly maxMsgs: number,
    readonly maxBytes: number,
  ) {
    this.lastIndexes = new Float64Array(maxMsgs);
    this.sizes = new Float64Array(maxMsgs);
  }

  full(): boolean {
    return this.count >= this.maxMsgs || this.bytes >= this.maxBytes;
  }

  add(lastIndex: number, bytes: number): void {
    // Callers check full() first; a slot is always free here.
    const slot = (this.start + this.count) % this.maxMsgs;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index ≤ index: the follower acknowledged them. */
  freeLE(index: number): void {
    while (this.count > 0 && this.lastIndexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxMsgs;
      this.count--;
    }
    if (this.count === 0) this.bytes = 0;
  }

  /** Frees the oldest message (heartbeat answered while full: let one append through). */
  freeFirst(): void {
    if (this.count === 0) return;
    this.freeLE(this.lastIndexes[this.start]!);
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

/** A chunked InstallSnapshot to one follower (leader side). */
export interface SnapshotSend {
  meta: SnapshotMeta;
  /** Bytes [0, ackedOffset) the follower confirmed written. */
  ackedOffset: number;
  /** Bytes [0, sentOffset) sent. Invariant: ackedOffset ≤ sentOffset ≤ meta.size. */
  sentOffset: number;
  /** Ticks since the last progress; at snapshotStallTicks the leader resends from ackedOffset. */
  idleTicks: number;
  /** Every byte was sent and acknowledged: waiting for the follower's install answer. */
  finished: boolean;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe state: an append is out and unanswered; send nothing more until an answer. */
  probeSent = false;
  /** Send an append even if it carries no entries (a probe after a heartbeat answer). */
  forceAppend = true;
  /** Commit index carried by the last append sent; a larger commit is worth an empty append. */
  sentCommit = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Highest read round (heartbeat readSeq) the member answered. */
  readSeqAcked = 0;
  isLearner: boolean;
  snapshot: SnapshotSend | undefined = undefined;
  /**
   * The member is repairing lost entries (its answers carry a token): the bound it was
   * given, a no-op we appended when we learned of the repair, sent with every append and
   * heartbeat until the repair is done; 0 otherwise.
   */
  repairBound = 0;
  /** The token of the repair in progress (AppendResponse.repairing); 0 when none. */
  repairToken = 0;
  /** The token of the last repair we saw finish: answers still carrying it are stale. */
  repairDone = 0;
  readonly inflights: Inflights;

  constructor(
    readonly id: NodeId,
    next: number,
    isLearner: boolean,
    maxInflightMsgs: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  /**
   * The follower reports its log ends at `logEnd`, below its match: it lost entries it had
   * acknowledged. Forget the match (0 is always a safe under-estimate for commit counting)
   * and probe from its end.
   */
  lostEntries(logEnd: number): void {
    this.match = 0;
    this.becomeProbe();
    this.next = logEnd + 1;
  }

  becomeProbe(): void {
    // From snapshot: the follower will have at least the snapshot once it installs it.
    if (this.state === 'snapshot' && this.snapshot) {
      this.next = Math.max(this.match + 1, this.snapshot.meta.index + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.forceAppend = true;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  becomeSnapshot(meta: SnapshotMeta, resumeOffset: number): void {
    this.state = 'snapshot';
    this.probeSent = false;
    this.inflights.reset();
    this.snapshot = {
      meta,
      ackedOffset: resumeOffset,
      sentOffset: resumeOffset,
      idleTicks: 0,
      finished: false,
    };
  }

  /** The member acknowledged `index` (matching, durable). Returns whether match advanced. */
  maybeUpdate(index: number): boolean {
    let advanced = false;
    if (index > this.match) {
      this.match = index;
      advanced = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return advanced;
  }

  /**
   * The member rejected an append with prevIndex `rejected`; `hintNext` is where the leader
   * thinks the logs may agree + 1. Returns false for a stale rejection (changes nothing).
   */
  maybeDecrTo(rejected: number, hintNext: number): boolean {
    if (this.state === 'replicate') {
      // Answers to appends sent before the follower was known to match are stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the outstanding probe (prevIndex = next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    if (rejected <= this.match) {
      // The follower no longer holds what it acknowledged: it lost entries (DESIGN §6;
      // impossible without storage corruption). Forget the match (0 is always a safe
      // under-estimate for commit counting) and probe downwards from the hint.
      this.match = 0;
    }
    this.next = Math.max(Math.min(rejected, hintNext), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Nothing more may be sent now (snapshot chunks have their own window). */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
