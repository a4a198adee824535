// The data the Raft core shares with whoever drives it: log entries, durable state,
// snapshot metadata, and the read-only view of the stored log the core consults.
// This file is the contract between raft/ and node/storage; raft/ imports nothing
// from the rest of Cairn.

/** A node's id in the cluster: a positive integer, unique for the cluster's life. 0 means "none". */
export type NodeId = number;

/**
 * - `normal`: client data; for Cairn, the bytes of one Kafka v2 record batch.
 * - `noop`: the empty entry a new leader appends to commit its predecessors' entries.
 * - `config`: a membership change; `data` is the core's own encoding of it.
 */
export type EntryType = 'normal' | 'noop' | 'config';

/** One Raft log entry. Invariant: entries in a log have consecutive indexes starting at 1. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before the core's messages that depend on it are sent (Raft §5.1, Fig. 2). */
export interface HardState {
  term: number;
  /** Candidate voted for in `term`; 0 for none. */
  vote: NodeId;
  /** Highest index known committed (persisting it is an optimisation, not a safety need). */
  commit: number;
}

/** The cluster membership as of some log index. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Describes a snapshot: the state after applying every entry up to and including `index`. */
export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
  /** Size of the snapshot's data in bytes (the transfer is chunked over this). */
  size: number;
}

/**
 * The log as the core sees it, implemented by node/storage (and by in-memory logs in
 * tests and the simulator).
 *
 * Contract with the driver: when the driver takes entries to persist (or a truncation)
 * from the core's output, it hands them to storage *before the next call into the core*,
 * and from then on this reader reflects them, even while the write and fsync are still in
 * flight. Durability is reported to the core separately ("persisted up to index i in term t").
 * So the core never keeps its own copy of entries it has handed over.
 */
export interface LogReader {
  /** Index of the first entry still held: snapshot index + 1 (1 for a log never compacted). */
  firstIndex(): number;
  /** Index of the last entry; firstIndex() - 1 when the log holds no entries. */
  lastIndex(): number;
  /**
   * Term of the entry at `index`, for firstIndex() - 1 (the snapshot's term, 0 at index 0)
   * through lastIndex(); undefined outside that range.
   */
  term(index: number): number | undefined;
  /**
   * Entries [lo, hi) with firstIndex() ≤ lo ≤ hi ≤ lastIndex() + 1, in order, stopping once
   * their data exceeds `maxBytes` but always returning at least one entry when lo < hi.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
}
