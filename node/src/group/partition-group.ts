// One partition on this node: its Raft group's state machine (PartitionState), the
// leader's tail view, the queue of appends waiting for the end of the turn, reads and
// subscriptions.
//
// Appends: a client's append is checked, then queued; at the start of the next turn
// (drain) every queued append is checked against the tail view in arrival order, stamped
// with the offsets the tail predicts, and proposed in one core.propose() — one Raft Ready,
// one storage write, one fsync, one AppendEntries per follower for the whole turn. Its
// promise resolves when the entry is applied (committed on a majority, fsynced).
import type { Core, DecodedRecord } from '../../../core-wasm/src/index.js';
import type { Entry, SnapshotMeta, SoftState } from '../../../raft/src/index.js';
import { CairnError, invalidRequest, notLeader, unavailable } from '../errors.js';
import type { Limits } from '../limits.js';
import type { AppendResult, ReadResult, SubscribeChunk } from '../node-api.js';
import type { Clock } from '../seams/clock.js';
import {
  buildOffsetCommitBatch,
  type CheckedBatch,
  classifyBatch,
  isControlBatchAt,
} from '../state/batches.js';
import {
  decodePartitionSnapshot,
  encodePartitionSnapshot,
  type OffsetCommit,
  PartitionState,
} from '../state/partition.js';
import type { GroupMachine, RaftGroup } from './raft-group.js';
import { StoreCorruption } from './store.js';

/** An append or offset commit waiting for the end of the turn. */
interface Queued {
  kind: 'append' | 'offsetCommit';
  batch: CheckedBatch;
  expectedOffset: number | undefined;
  /** For offset commits: the commit (its consumer group's slot must fit). */
  offsetCommit: OffsetCommit | undefined;
  resolve(r: AppendResult): void;
  reject(e: CairnError): void;
}

/** What an applied entry yields to its proposer. */
interface AppliedOffsets {
  baseOffset: number;
  lastOffset: number;
}

export interface PartitionGroupOptions {
  stream: string;
  partition: number;
  groupId: number;
  core: Core;
  clock: Clock;
  limits: Limits;
  /** The leader's API address for NOT_LEADER answers ('' when unknown). */
  addressOf(nodeId: number): string;
  /** The runtime should run a turn (the queue has work). */
  schedule(): void;
}

const BATCH_LENGTH_AT = 8;
const BATCH_LOG_OVERHEAD = 12;
const RECORD_COUNT_AT = 57;

export class PartitionGroup implements GroupMachine {
  group!: RaftGroup;
  readonly state: PartitionState;
  /** Leader only: applied state + every entry in the log not yet applied. */
  private tail: PartitionState | null = null;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  /** Resolved whenever the applied state advances (long polls, subscribers). */
  private advanced: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly o: PartitionGroupOptions) {
    this.state = new PartitionState(o.limits);
  }

  get name(): string {
    return `${this.o.stream}/${this.o.partition}`;
  }

  /** One past the last committed (applied) offset, as this replica knows it. */
  highWatermark(): number {
    return this.state.nextOffset;
  }

  logStartOffset(): number {
    return this.group.store.logStartOffset();
  }

  private notLeaderError(): CairnError {
    const leader = this.group.leader;
    return notLeader(`partition ${this.name}`, leader, leader === 0 ? '' : this.o.addressOf(leader));
  }

  // --- appends ----------------------------------------------------------------------------

  /** Queues a checked batch; resolves with its offsets once committed. */
  append(batch: CheckedBatch, expectedOffset: number | undefined): Promise<AppendResult> {
    return this.enqueue('append', batch, expectedOffset, undefined);
  }

  commitOffset(c: OffsetCommit): Promise<AppendResult> {
    const batch = buildOffsetCommitBatch(this.o.core, c, this.o.clock.wallMs());
    return this.enqueue(
      'offsetCommit',
      {
        bytes: batch,
        recordCount: 1,
        producerId: -1,
        producerEpoch: -1,
        baseSequence: -1,
        lastOffsetDelta: 0,
      },
      undefined,
      c,
    );
  }

  private enqueue(
    kind: Queued['kind'],
    batch: CheckedBatch,
    expectedOffset: number | undefined,
    offsetCommit: OffsetCommit | undefined,
  ): Promise<AppendResult> {
    if (this.stopped)
      return Promise.reject(unavailable(`partition ${this.name} is not served here any more`));
    if (!this.group.isLeader) return Promise.reject(this.notLeaderError());
    if (this.queuedBytes + batch.bytes.length > this.o.limits.maxPendingAppendBytesPerPartition) {
      return Promise.reject(unavailable(`partition ${this.name} has too many appends waiting; retry`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, batch, expectedOffset, offsetCommit, resolve, reject });
      this.queuedBytes += batch.bytes.length;
      this.o.schedule();
    });
  }

  /**
   * Start of a turn: check every queued append against the tail in order, stamp it, and
   * propose them all at once. Appends refused by a check fail alone; the rest go on.
   */
  drain(): void {
    if (this.queue.length === 0) return;
    const queued = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.stopped || !this.group.isLeader) {
      for (const q of queued)
        q.reject(this.stopped ? unavailable(`partition ${this.name} stopped`) : this.notLeaderError());
      return;
    }
    // Hand the core's own pending entries (a new leader's no-op, a configuration change) to
    // storage first, so that the tail can account for them: they take indexes and offsets.
    this.group.process();
    this.group.markDirty();
    if (!this.group.isLeader) {
      for (const q of queued) q.reject(this.notLeaderError());
      return;
    }
    const tail = this.tailView();
    const term = this.group.core.currentTerm;
    let index = this.group.core.lastIndex;
    // Invariant: the tail reflects every entry of the leader's log. If it cannot (storage
    // did not take the core's entries this turn), nothing is proposed on a wrong prediction.
    if (tail.appliedIndex !== index) {
      this.tail = null;
      for (const q of queued)
        q.reject(unavailable(`partition ${this.name} is catching up its own log; retry`));
      return;
    }
    const accepted: Queued[] = [];
    const data: Uint8Array[] = [];
    for (const q of queued) {
      const b = q.batch;
      if (q.offsetCommit !== undefined && !tail.canStoreOffset(q.offsetCommit.group)) {
        q.reject(
          new CairnError(
            'LIMIT_EXCEEDED',
            `partition ${this.name} stores offsets of at most ${this.o.limits.maxConsumerGroupsPerPartition} groups`,
            {
              limit: this.o.limits.maxConsumerGroupsPerPartition,
            },
          ),
        );
        continue;
      }
      const check = tail.check(
        b.producerId,
        b.producerEpoch,
        b.baseSequence,
        b.recordCount,
        q.expectedOffset,
      );
      if (check.kind === 'refused') {
        q.reject(check.error);
        continue;
      }
      if (check.kind === 'duplicate') {
        this.answerDuplicate(q, b, check.original);
        continue;
      }
      // Stamp what storage will stamp (it re-stamps the same values; pair-asserted at apply).
      index++;
      const baseOffset = tail.nextOffset;
      this.o.core.stampBatch(b.bytes, 0, baseOffset, term);
      const lastOffset = baseOffset + b.lastOffsetDelta;
      if (q.offsetCommit !== undefined) {
        tail.applyOffsetCommit(index, lastOffset, q.offsetCommit);
      } else {
        tail.applyBatch({
          index,
          baseOffset,
          lastOffset,
          producerId: b.producerId,
          producerEpoch: b.producerEpoch,
          baseSequence: b.baseSequence,
          recordCount: b.recordCount,
        });
      }
      accepted.push(q);
      data.push(b.bytes);
    }
    if (data.length === 0) return;
    const { result, applied } = this.group.propose(data);
    if (!result.ok) {
      // The tail advanced for entries that were not appended: rebuild it from the log.
      this.tail = null;
      const err =
        result.reason === 'notLeader' || result.reason === 'transferring'
          ? this.notLeaderError()
          : unavailable(`partition ${this.name}: ${result.reason}; retry`);
      for (const q of accepted) q.reject(err);
      return;
    }
    // Invariant: the core put the entries where the tail predicted them.
    if (result.firstIndex !== index - data.length + 1 || result.term !== term) {
      throw new Error(
        `partition ${this.name}: proposed at ${result.firstIndex}/${result.term}, tail predicted ${index - data.length + 1}/${term}`,
      );
    }
    accepted.forEach((q, k) => {
      applied[k]!.then(
        (r) => {
          const o = r as AppliedOffsets;
          q.resolve({ partition: this.o.partition, baseOffset: o.baseOffset, lastOffset: o.lastOffset });
        },
        (e: CairnError) => q.reject(e),
      );
    });
  }

  /** A retry of a batch already in the log: answer with the original's offsets once it is committed. */
  private answerDuplicate(
    q: Queued,
    b: CheckedBatch,
    original: { baseOffset: number; lastOffset: number; index: number; firstSeq: number; lastSeq: number },
  ): void {
    const fail = () =>
      new CairnError(
        'DUPLICATE_SEQUENCE',
        `producer ${b.producerId} sequence ${b.baseSequence} was already appended`,
        {
          baseOffset: original.baseOffset,
          lastOffset: original.lastOffset,
        },
      );
    if (original.index <= this.group.applied) {
      q.reject(fail());
      return;
    }
    // Still in flight: it is in this leader's log, so it commits unless leadership is lost;
    // check once applied that the entry at that index is still the original.
    this.group.waitApplied(original.index).then(() => {
      const p = this.state.producer(b.producerId);
      const same = p?.batches.some((x) => x.index === original.index && x.firstSeq === original.firstSeq);
      q.reject(same ? fail() : this.notLeaderError());
    });
  }

  private tailView(): PartitionState {
    // Built from the applied state plus every entry after it in the log, then extended with
    // entries appended since (the leader's log is never truncated while it leads, so this
    // stays exact until leadership ends).
    const store = this.group.store;
    // A tail built before a snapshot compacted the log past it cannot be extended (the
    // entries are gone); the applied state is at least at the snapshot: start from it.
    let tail = this.tail;
    if (tail === null || tail.appliedIndex < store.firstIndex() - 1) tail = this.state.clone();
    for (let lo = tail.appliedIndex + 1, hi = store.lastIndex() + 1; lo < hi; ) {
      const entries = store.entries(lo, hi, 4 << 20);
      for (const e of entries) this.applyTo(tail, e);
      lo += entries.length;
    }
    this.tail = tail;
    return tail;
  }

  // --- the state machine ------------------------------------------------------------------

  apply(entry: Entry): AppliedOffsets {
    const before = this.state.nextOffset;
    const r = this.applyTo(this.state, entry);
    // Pair assertion with drain()/storage: offsets are contiguous across entries.
    if (r.baseOffset !== before) {
      throw new Error(
        `partition ${this.name}: entry ${entry.index} starts at offset ${r.baseOffset}, expected ${before}`,
      );
    }
    const waiting = this.advanced;
    this.advanced = [];
    for (const w of waiting) w();
    return r;
  }

  private applyTo(s: PartitionState, e: Entry): AppliedOffsets {
    if (e.type !== 'normal') {
      // Raft's own entries are stored as one-record control batches: one offset each.
      const offset = s.nextOffset;
      s.applyOther(e.index, offset);
      return { baseOffset: offset, lastOffset: offset };
    }
    const c = classifyBatch(this.o.core, e.index, e.data);
    switch (c.kind) {
      case 'data':
        s.applyBatch(c.facts);
        return { baseOffset: c.facts.baseOffset, lastOffset: c.facts.lastOffset };
      case 'offsetCommit': {
        const base = s.nextOffset;
        s.applyOffsetCommit(e.index, c.lastOffset, c.commit);
        return { baseOffset: base, lastOffset: c.lastOffset };
      }
      case 'control': {
        const base = s.nextOffset;
        s.applyOther(e.index, c.lastOffset);
        return { baseOffset: base, lastOffset: c.lastOffset };
      }
    }
  }

  onSoftState(s: SoftState): void {
    if (s.role !== 'leader') {
      this.tail = null;
      const queued = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      for (const q of queued) q.reject(this.notLeaderError());
    }
  }

  restore(_meta: SnapshotMeta, state: Uint8Array): void {
    this.state.restore(decodePartitionSnapshot(state));
    this.tail = null;
    const waiting = this.advanced;
    this.advanced = [];
    for (const w of waiting) w();
  }

  snapshotState(): Uint8Array {
    return encodePartitionSnapshot(this.state.snapshot());
  }

  // --- reads ------------------------------------------------------------------------------

  /** Resolves when the applied state advances, or after `ms`, or when `signal` aborts. */
  private waitForData(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let cancel = () => {};
      const done = () => {
        cancel();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.advanced.push(done);
      if (ms !== Number.POSITIVE_INFINITY) cancel = this.o.clock.setTimer(ms, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async read(
    offset: number,
    maxBytes: number,
    maxRecords: number,
    maxWaitMs: number,
    linearizable: boolean,
    decode: boolean,
  ): Promise<ReadResult> {
    if (linearizable) {
      if (!this.group.isLeader) throw this.notLeaderError();
      await this.group.readIndex(this.o.limits.requestTimeoutMs);
    }
    if (maxWaitMs > 0 && offset === this.highWatermark()) {
      await this.waitForData(Math.min(maxWaitMs, this.o.limits.maxReadWaitMs));
    }
    return this.readAt(offset, maxBytes, maxRecords, decode);
  }

  private async readAt(
    offset: number,
    maxBytes: number,
    maxRecords: number,
    decode: boolean,
  ): Promise<ReadResult> {
    if (this.stopped) throw unavailable(`partition ${this.name} is not served here any more`);
    const hw = this.highWatermark();
    const start = this.logStartOffset();
    if (offset < start || offset > hw) {
      throw new CairnError(
        'OFFSET_OUT_OF_RANGE',
        `offset ${offset} is outside [${start}, ${hw}] of ${this.name}`,
        {
          logStartOffset: start,
          highWatermark: hw,
        },
      );
    }
    const limit = Math.min(
      maxBytes === 0 ? this.o.limits.maxReadBytes : maxBytes,
      this.o.limits.maxReadBytes,
    );
    let batches: Uint8Array = new Uint8Array(0);
    let next = offset;
    if (offset < hw) {
      const raw = await this.group.store.read(offset, hw, limit).catch((err) => {
        // The group restarts for repair (the store reported the damage); other replicas serve.
        if (err instanceof StoreCorruption)
          throw unavailable(`this replica of ${this.name} is being repaired; read from another`);
        throw err;
      });
      const kept = keepDataBatches(this.o.core, raw, maxRecords);
      batches = kept.bytes;
      next = Math.max(offset, kept.nextOffset);
    }
    let records: DecodedRecord[] = [];
    if (decode && batches.length > 0) {
      records = decodeAll(this.o.core, batches).filter((r) => r.offset >= offset);
      if (maxRecords > 0 && records.length > maxRecords) {
        // The last batch was cut: the reader continues right after the last record it got,
        // not after the batch (it would skip the records left out).
        records = records.slice(0, maxRecords);
        next = records[records.length - 1]!.offset + 1;
      }
    }
    return { batches, records, nextOffset: next, highWatermark: hw, logStartOffset: this.logStartOffset() };
  }

  /**
   * Committed batches from `from` as they commit, one chunk per pull: the caller asks for
   * the next chunk only when it can take it, so a slow subscriber is never buffered for.
   */
  async *subscribe(
    from: number,
    maxBytes: number,
    decode: boolean,
    signal: AbortSignal,
  ): AsyncGenerator<SubscribeChunk> {
    let next = from;
    while (!signal.aborted) {
      if (this.stopped) throw unavailable(`partition ${this.name} is not served here any more`);
      if (next >= this.highWatermark()) {
        await this.waitForData(Number.POSITIVE_INFINITY, signal);
        continue;
      }
      const r = await this.readAt(next, maxBytes, 0, decode);
      next = r.nextOffset;
      if (r.batches.length === 0 && r.records.length === 0) continue; // only control batches
      yield {
        batches: r.batches,
        records: r.records,
        nextOffset: r.nextOffset,
        highWatermark: r.highWatermark,
      };
    }
  }

  /** Stops serving: queued appends and waiting readers fail. */
  stop(): void {
    this.stopped = true;
    for (const q of this.queue) q.reject(unavailable(`partition ${this.name} is not served here any more`));
    this.queue = [];
    const waiting = this.advanced;
    this.advanced = [];
    for (const w of waiting) w();
  }

  checkReadable(offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalidRequest(`offset ${offset} is not valid`);
  }
}

/**
 * Leaves out control batches (Raft no-ops, configuration, consumer offsets) and stops
 * after `maxRecords` records (0 = no bound). Copies only when something is left out.
 */
function keepDataBatches(
  core: Core,
  buf: Uint8Array,
  maxRecords: number,
): { bytes: Uint8Array; nextOffset: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const keep: [number, number][] = [];
  let nextOffset = -1;
  let records = 0;
  let pos = 0;
  let all = true;
  while (pos + BATCH_LOG_OVERHEAD <= buf.length) {
    const len = BATCH_LOG_OVERHEAD + dv.getInt32(pos + BATCH_LENGTH_AT);
    if (len <= BATCH_LOG_OVERHEAD || pos + len > buf.length) break;
    const h = core.readBatchHeader(buf, pos);
    nextOffset = h.baseOffset + h.lastOffsetDelta + 1;
    if (isControlBatchAt(buf, pos)) {
      all = false;
    } else {
      keep.push([pos, len]);
      records += dv.getInt32(pos + RECORD_COUNT_AT);
    }
    pos += len;
    if (maxRecords > 0 && records >= maxRecords) break;
  }
  if (pos !== buf.length) all = false;
  if (all) return { bytes: buf, nextOffset };
  let total = 0;
  for (const [, len] of keep) total += len;
  const out = new Uint8Array(total);
  let at = 0;
  for (const [p, len] of keep) {
    out.set(buf.subarray(p, p + len), at);
    at += len;
  }
  return { bytes: out, nextOffset };
}

function decodeAll(core: Core, buf: Uint8Array): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  for (let pos = 0; pos + BATCH_LOG_OVERHEAD <= buf.length; ) {
    const len = BATCH_LOG_OVERHEAD + dv.getInt32(pos + BATCH_LENGTH_AT);
    for (const r of core.decodeRecords(buf.subarray(pos, pos + len))) out.push(r);
    pos += len;
  }
  return out;
}
