// Known bugs planted into the real code by wrapping or replacing methods at run time (never
// by switches in production code), to prove that the simulator's checkers catch them.
// Each `plant*` returns a function that takes the bug out again.

import { PartitionGroup } from '../../node/src/group/partition-group.js';
import { RaftGroup } from '../../node/src/group/raft-group.js';
import { quorumSize, RaftCore } from '../../raft/src/index.js';
import { quorumValue } from '../../raft/src/quorum.js';

type Proto = Record<string, unknown>;

function replace(
  proto: object,
  name: string,
  fn: (original: (...args: unknown[]) => unknown) => unknown,
): () => void {
  const p = proto as Proto;
  const original = p[name] as (...args: unknown[]) => unknown;
  if (typeof original !== 'function') throw new Error(`no method ${name} to plant a bug in`);
  p[name] = fn(original);
  return () => {
    p[name] = original;
  };
}

/**
 * Raft §5.4.2 / Figure 8 broken: the leader commits the largest index a quorum holds
 * whatever its term, so an entry of a previous term can be committed by counting replicas
 * and later be overwritten.
 */
export function plantCommitByCounting(): () => void {
  return replace(
    RaftCore.prototype,
    'maybeCommit',
    () =>
      function (this: {
        voterProgress: { match: number }[];
        quorumValues: Float64Array;
        quorumScratch: Float64Array;
        log: { committed: number };
        commitTo(i: number): void;
      }) {
        const voters = this.voterProgress;
        const n = voters.length;
        if (n === 0) return;
        for (let i = 0; i < n; i++) this.quorumValues[i] = voters[i]!.match;
        const q = quorumValue(this.quorumValues, n, quorumSize(n), this.quorumScratch);
        if (q <= this.log.committed) return; // the current-term check is gone
        this.commitTo(q);
      },
  );
}

/**
 * Durability broken: at the end of a turn the group reports its entries persisted and
 * sends its acknowledgements (and votes) at once, without waiting for the fsync.
 */
export function plantAckBeforeFsync(): () => void {
  return replace(
    RaftGroup.prototype,
    'endTurn',
    () =>
      function (this: {
        slots: unknown[];
        complete(batch: unknown[]): void;
        store: { sync(): Promise<void> };
      }) {
        if (this.slots.length === 0) return;
        const batch = this.slots;
        this.slots = [];
        this.complete(batch);
        this.store.sync().catch(() => {});
      },
  );
}

/** The vote is never persisted: after a restart a node may vote twice in one term. */
export function plantForgetVote(): () => void {
  return replace(
    RaftGroup.prototype,
    'handle',
    (original) =>
      function (
        this: unknown,
        rd: { hardState?: { term: number; vote: number; commit: number } },
        installed: unknown,
      ) {
        const hs = rd.hardState;
        return original.call(
          this,
          hs === undefined ? rd : { ...rd, hardState: { ...hs, vote: 0 } },
          installed,
        );
      },
  );
}

/**
 * A read cut short by maxRecords continues after the whole last batch (the bug the
 * simulator found in PartitionGroup, put back): consumers skip records.
 */
export function plantReadSkipsRestOfBatch(): () => void {
  return replace(
    PartitionGroup.prototype,
    'readAt',
    (original) =>
      async function (this: unknown, offset: number, maxBytes: number, maxRecords: number, decode: boolean) {
        const r = (await original.call(this, offset, maxBytes, 0, decode)) as {
          records: { offset: number }[];
          nextOffset: number;
        };
        if (maxRecords > 0 && r.records.length > maxRecords) r.records = r.records.slice(0, maxRecords);
        return r;
      },
  );
}

/**
 * The commit bound broken on the leader's side: heartbeats carry the leader's whole commit
 * index instead of min(the follower's match, commit), so a follower whose log still ends
 * in an old term's entries past its match commits (and applies) them. The follower's rule
 * (AppendEntries rule 5: never commit past what the leader's message proved) is what
 * min(match, commit) stands in for on a heartbeat, which proves nothing about the log.
 */
export function plantHeartbeatFullCommit(): () => void {
  return replace(
    RaftCore.prototype,
    'broadcastHeartbeat',
    () =>
      function (this: {
        peers: { id: number }[];
        term: number;
        id: number;
        readSeq: number;
        log: { committed: number };
        msgsNow: unknown[];
      }) {
        for (const pr of this.peers)
          this.msgsNow.push({
            type: 'heartbeat',
            term: this.term,
            from: this.id,
            to: pr.id,
            commit: this.log.committed,
            readSeq: this.readSeq,
          });
      },
  );
}

/**
 * Seed 1014's bug: a node repairing lost entries ends its repair once it holds its own
 * bound from a leader — for a wiped disk the marker's 1 — rather than the bound the leader
 * gives it, and votes with a log missing committed entries.
 */
export function plantRepairEndsAtOwnBound(): () => void {
  return replace(
    RaftCore.prototype,
    'checkRepair',
    () =>
      function (this: {
        recoveringUntil: number;
        repairBound: number;
        leaderMatched: number;
        repairedPast: number | undefined;
        log: { persisted: number };
      }) {
        const x = this.recoveringUntil;
        if (x !== 0 && this.leaderMatched >= x && this.log.persisted >= x) {
          this.recoveringUntil = 0;
          this.repairBound = 0;
          this.repairedPast = x;
        }
      },
  );
}
