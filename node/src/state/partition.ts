// The partition state machine: what a partition knows beyond its log's bytes — the next
// offset, the idempotent producers' recent sequences, and consumer groups' committed
// offsets.
//
// Two instances live on a partition leader:
//   - the *applied* state: every committed entry applied in order (on every replica);
//   - the *tail* view: the applied state plus every entry in the leader's log that is not
//     applied yet (appended but uncommitted, including what it just proposed). The leader
//     checks sequences and expectedOffset against the tail, never the applied state alone:
//     two racing appends with the same sequence (or the same expectedOffset) would both
//     pass a check against the applied state, because neither is applied yet.
// The tail is rebuilt from the applied state and the log when a node becomes leader, and
// dropped when it stops leading. Both are the same class, fed the same facts.
//
// Apply never refuses: the log is the truth, and a committed batch was checked by the
// leader that proposed it. It only records.
import { Packr } from 'msgpackr';
import { CairnError } from '../errors.js';

/** The facts of one appended batch that the state machine needs (read from its v2 header). */
export interface BatchFacts {
  /** The Raft index of the entry holding the batch. */
  index: number;
  baseOffset: number;
  lastOffset: number;
  /** -1 for a producer without identity. */
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** A consumer group's position, carried by a control batch of type CONSUMER_OFFSET_CONTROL_TYPE. */
export interface OffsetCommit {
  group: string;
  offset: number;
  metadata: string;
}

/** One remembered batch of a producer. */
export interface SequenceRange {
  firstSeq: number;
  lastSeq: number;
  baseOffset: number;
  lastOffset: number;
  /** Raft index of the batch's entry: a duplicate of an uncommitted batch waits for it. */
  index: number;
}

export interface ProducerEntry {
  epoch: number;
  /** Oldest first; at most `producerBatchesRemembered`. */
  batches: SequenceRange[];
}

/** What checking an append against a state found. */
export type AppendCheck =
  | { kind: 'ok' }
  /** The same batch (producer, epoch, sequences) is already in the log. */
  | { kind: 'duplicate'; original: SequenceRange }
  | { kind: 'refused'; error: CairnError };

export interface PartitionLimits {
  maxProducersPerPartition: number;
  producerBatchesRemembered: number;
  maxConsumerGroupsPerPartition: number;
}

/** Kafka's sequences are int32 and wrap from 2^31 - 1 to 0. */
const SEQ_MODULUS = 2 ** 31;

export function addSequence(seq: number, delta: number): number {
  return (seq + delta) % SEQ_MODULUS;
}

export interface PartitionSnapshotState {
  nextOffset: number;
  appliedIndex: number;
  /** [producerId, epoch, batches] in least-recently-used-first order. */
  producers: [number, number, SequenceRange[]][];
  offsets: [string, number, string][];
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export class PartitionState {
  /** One past the last offset of the last entry applied. */
  nextOffset = 0;
  /** Raft index of the last entry applied. */
  appliedIndex = 0;
  /** Insertion order is recency: a touched producer moves to the end; the first is evicted. */
  private readonly producers = new Map<number, ProducerEntry>();
  private readonly offsets = new Map<string, { offset: number; metadata: string }>();

  constructor(private readonly limits: PartitionLimits) {}

  clone(): PartitionState {
    const c = new PartitionState(this.limits);
    c.nextOffset = this.nextOffset;
    c.appliedIndex = this.appliedIndex;
    for (const [id, p] of this.producers)
      c.producers.set(id, { epoch: p.epoch, batches: p.batches.map((b) => ({ ...b })) });
    for (const [g, o] of this.offsets) c.offsets.set(g, { ...o });
    return c;
  }

  producer(id: number): ProducerEntry | undefined {
    return this.producers.get(id);
  }

  producerCount(): number {
    return this.producers.size;
  }

  committedOffset(group: string): { offset: number; metadata: string } | undefined {
    return this.offsets.get(group);
  }

  /**
   * Checks an append of `recordCount` records by a producer (id -1: none) against this
   * state: the producer's epoch and sequence, and `expectedOffset` when given.
   */
  check(
    producerId: number,
    producerEpoch: number,
    baseSequence: number,
    recordCount: number,
    expectedOffset: number | undefined,
  ): AppendCheck {
    if (producerId >= 0) {
      const seqCheck = this.checkSequence(producerId, producerEpoch, baseSequence, recordCount);
      // A duplicate answers with the original, whatever the expected offset says now.
      if (seqCheck.kind !== 'ok') return seqCheck;
    }
    if (expectedOffset !== undefined && expectedOffset !== this.nextOffset) {
      return {
        kind: 'refused',
        error: new CairnError(
          'EXPECTED_OFFSET_MISMATCH',
          `expected next offset ${expectedOffset}, but it is ${this.nextOffset}`,
          { actualOffset: this.nextOffset },
        ),
      };
    }
    return { kind: 'ok' };
  }

  private checkSequence(
    producerId: number,
    epoch: number,
    baseSequence: number,
    recordCount: number,
  ): AppendCheck {
    const p = this.producers.get(producerId);
    // Unknown producer (new, or forgotten by the LRU bound): accept any sequence. A
    // forgotten producer's very old retry cannot be recognised; the bound makes that rare.
    if (p === undefined) return { kind: 'ok' };
    if (epoch < p.epoch) {
      return {
        kind: 'refused',
        error: new CairnError(
          'PRODUCER_FENCED',
          `producer ${producerId} epoch ${epoch} is older than ${p.epoch}`,
        ),
      };
    }
    if (epoch > p.epoch) {
      if (baseSequence === 0) return { kind: 'ok' };
      return {
        kind: 'refused',
        error: new CairnError(
          'OUT_OF_ORDER_SEQUENCE',
          `producer ${producerId}: a new epoch ${epoch} must start at sequence 0, not ${baseSequence}`,
        ),
      };
    }
    const lastSeq = addSequence(baseSequence, recordCount - 1);
    for (const b of p.batches) {
      if (b.firstSeq === baseSequence && b.lastSeq === lastSeq) return { kind: 'duplicate', original: b };
    }
    const last = p.batches[p.batches.length - 1];
    if (last === undefined) return { kind: 'ok' };
    const expected = addSequence(last.lastSeq, 1);
    if (baseSequence === expected) return { kind: 'ok' };
    // Behind the expected sequence (modulo wrap-around): already used, but not by one of the
    // remembered batches, so the original offsets are no longer known.
    const behind = (expected - baseSequence + SEQ_MODULUS) % SEQ_MODULUS;
    if (behind <= SEQ_MODULUS / 2) {
      return {
        kind: 'refused',
        error: new CairnError(
          'DUPLICATE_SEQUENCE',
          `producer ${producerId} sequence ${baseSequence} was already appended (original offsets no longer known)`,
          { baseOffset: -1, lastOffset: -1 },
        ),
      };
    }
    return {
      kind: 'refused',
      error: new CairnError(
        'OUT_OF_ORDER_SEQUENCE',
        `producer ${producerId}: expected sequence ${expected}, got ${baseSequence}`,
      ),
    };
  }

  /** Records an appended data batch (normal entry). Precondition: entries come in log order. */
  applyBatch(f: BatchFacts): void {
    this.advance(f.index, f.lastOffset);
    if (f.producerId < 0) return;
    let p = this.producers.get(f.producerId);
    if (p === undefined || f.producerEpoch > p.epoch) {
      p = { epoch: f.producerEpoch, batches: [] };
    }
    // Recency: re-insert at the end.
    this.producers.delete(f.producerId);
    this.producers.set(f.producerId, p);
    p.batches.push({
      firstSeq: f.baseSequence,
      lastSeq: addSequence(f.baseSequence, f.recordCount - 1),
      baseOffset: f.baseOffset,
      lastOffset: f.lastOffset,
      index: f.index,
    });
    if (p.batches.length > this.limits.producerBatchesRemembered) p.batches.shift();
    if (this.producers.size > this.limits.maxProducersPerPartition) {
      this.producers.delete(this.producers.keys().next().value!);
    }
  }

  /**
   * Records a consumer group's committed offset (a control batch of its own type).
   * Precondition: the leader checked the group limit (`canStoreOffset`) before proposing.
   */
  applyOffsetCommit(index: number, lastOffset: number, c: OffsetCommit): void {
    this.advance(index, lastOffset);
    this.offsets.set(c.group, { offset: c.offset, metadata: c.metadata });
  }

  /** Records an entry that only consumes offsets (Raft no-op, configuration). */
  applyOther(index: number, lastOffset: number): void {
    this.advance(index, lastOffset);
  }

  /** Whether one more group's offset fits (existing groups always do). */
  canStoreOffset(group: string): boolean {
    return this.offsets.has(group) || this.offsets.size < this.limits.maxConsumerGroupsPerPartition;
  }

  private advance(index: number, lastOffset: number): void {
    // Invariant: entries are applied in index order, each past the previous one's offsets.
    if (index !== this.appliedIndex + 1) {
      throw new Error(`partition state: entry ${index} applied after ${this.appliedIndex}`);
    }
    if (lastOffset + 1 < this.nextOffset) {
      throw new Error(
        `partition state: entry ${index} ends at offset ${lastOffset}, before ${this.nextOffset}`,
      );
    }
    this.appliedIndex = index;
    this.nextOffset = lastOffset + 1;
  }

  /** Installs the state from a snapshot (replacing everything). */
  restore(s: PartitionSnapshotState): void {
    this.nextOffset = s.nextOffset;
    this.appliedIndex = s.appliedIndex;
    this.producers.clear();
    for (const [id, epoch, batches] of s.producers) this.producers.set(id, { epoch, batches });
    this.offsets.clear();
    for (const [g, offset, metadata] of s.offsets) this.offsets.set(g, { offset, metadata });
  }

  snapshot(): PartitionSnapshotState {
    return {
      nextOffset: this.nextOffset,
      appliedIndex: this.appliedIndex,
      producers: [...this.producers].map(([id, p]) => [id, p.epoch, p.batches.map((b) => ({ ...b }))]),
      offsets: [...this.offsets].map(([g, o]) => [g, o.offset, o.metadata]),
    };
  }
}

export function encodePartitionSnapshot(s: PartitionSnapshotState): Uint8Array {
  return packr.pack(s);
}

export function decodePartitionSnapshot(bytes: Uint8Array): PartitionSnapshotState {
  const s = packr.unpack(bytes) as PartitionSnapshotState;
  if (
    typeof s !== 'object' ||
    s === null ||
    !Number.isSafeInteger(s.nextOffset) ||
    !Array.isArray(s.producers) ||
    !Array.isArray(s.offsets)
  ) {
    throw new Error('partition snapshot state is malformed');
  }
  return s;
}
