// Linearizable reads by ReadIndex (thesis §6.4). The leader records its commit index for
// each read, then confirms it is still leader by a round of heartbeats: each round has a
// number (readSeq) carried by the heartbeats and echoed in their answers. A read taken
// with round s may be served once a quorum of voters has answered round s or a later one.
// Rounds are shared: all reads of one turn ride on one round of heartbeats.

import type { NodeId } from './types.js';

export interface PendingRead {
  context: number;
  /** Who asked: this node, or the follower that forwarded it. */
  from: NodeId;
  /** The leader's commit index when the read arrived: the read may be served after applying it. */
  index: number;
  /** The heartbeat round that confirms it. */
  seq: number;
}

/** FIFO of reads awaiting their round. Invariant: seq is non-decreasing from head to tail. */
export class ReadQueue {
  private items: PendingRead[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(r: PendingRead): void {
    this.items.push(r);
  }

  /** Removes and returns every read whose round ≤ confirmedSeq. */
  popConfirmed(confirmedSeq: number): PendingRead[] {
    const start = this.head;
    while (this.head < this.items.length && this.items[this.head]!.seq <= confirmedSeq) this.head++;
    const out = this.items.slice(start, this.head);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return out;
  }

  /** Removes and returns every read (leadership lost). */
  drain(): PendingRead[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }
}
