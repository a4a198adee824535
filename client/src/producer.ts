// The producer: appends from many callers, batched per partition, sent to the partition
// leaders, retried across leader changes without ever appending a record twice.
//
// Batching. Each partition has one open batch collecting records. It is sealed when it
// reaches maxBatchBytes, or when its linger time is over *and* the partition can send it
// right away; while every in-flight slot is taken it keeps growing, so a busy partition
// sends fewer, larger batches (the same group commit the node does). The records of one
// append() call for one partition always go in one batch (so they are appended together).
//
// Idempotence (DESIGN §6). The client gets a producer id (InitProducer); each partition
// has an epoch and a sequence counter. A batch takes the next sequences when it is first
// sent and keeps them on every retry, so a retry of a batch that did land is answered
// DUPLICATE_SEQUENCE with the original offsets, which counts as success. The partition
// checks sequences against everything in its log (committed or not), in arrival order.
//
// Sequencing rules (why each one):
//   - Up to maxInFlightPerPartition batches are sent at once, in sequence order; the
//     partition remembers a producer's last 5 batches, so the default of 5 keeps every
//     retry recognisable.
//   - Until the partition has acknowledged one batch of this (id, epoch), one batch at a
//     time: a partition accepts any sequence from a producer it does not know, so a
//     second batch could land before a refused first one and then look like a duplicate.
//   - After any failed attempt, nothing new is sent until every in-flight batch has been
//     answered (recovery). Then the batches are dealt with head first, one at a time: a
//     transient failure is resent with the same identity until it lands, is refused, or
//     its delivery time runs out.
//   - A refused batch (e.g. EXPECTED_OFFSET_MISMATCH) used no sequence numbers. If no later
//     batch was ever sent, the counter simply goes back; otherwise later batches were sent
//     with sequences that are now wrong, and copies of them may still reach a leader, so
//     the partition moves to a new epoch and starts again at 0: a late copy with the old
//     epoch is then either out of order (before the new epoch's first batch lands) or
//     fenced (after). The same bump follows a batch given up on (its outcome is unknown,
//     so its sequences may or may not be used) and OUT_OF_ORDER_SEQUENCE at the head.
//   - Copies of a batch still travelling after the client gave up on them are the residual
//     risk every idempotent producer carries (Kafka's too); the epoch bump bounds it.
import { create } from '@bufbuild/protobuf';
import type { Core, RecordInput } from '../../core-wasm/src/index.js';
import {
  AppendRequestSchema,
  InitProducerRequestSchema,
  StreamService,
} from '../../proto/gen/cairn/v1/cairn_pb.js';
import { toRecordInput } from './batches.js';
import { toNumber } from './convert.js';
import { CairnClientError, invalidRequest } from './errors.js';
import { backoffMs, type ResolvedOptions } from './options.js';
import { noLeaderAsUnavailable, type Router } from './router.js';
import type { Channels } from './rpc.js';
import type { AppendOptions, ProduceRecord, RecordPosition } from './types.js';

/** Kafka's sequences are int32 and wrap from 2^31 - 1 to 0 (the node wraps the same way). */
const SEQUENCE_MODULUS = 2 ** 31;
/** The batch header holds the epoch as an int16. */
const MAX_PRODUCER_EPOCH = 32_767;

interface Waiter {
  /** Index of the caller's first record in the batch, and how many it has. */
  start: number;
  count: number;
  resolve(offsets: number[]): void;
  reject(err: CairnClientError): void;
}

interface Identity {
  producerId: number;
  epoch: number;
  baseSequence: number;
}

class OutBatch {
  readonly records: RecordInput[] = [];
  readonly waiters: Waiter[] = [];
  bytes = 0;
  expectedOffset: number | undefined;
  /** Assigned at the first send; cleared when the partition moves to a new epoch. */
  identity: Identity | undefined;
  encoded: Uint8Array | undefined;
  state: 'queued' | 'inflight' | 'failed' = 'queued';
  sends = 0;
  /** Failed attempts in a row (for the backoff) and NOT_LEADER redirects followed at once. */
  failures = 0;
  redirects = 0;
  lastError: CairnClientError | undefined;
  /** After this (Date.now()), a transient failure fails the batch instead of a retry. */
  deadline = 0;
}

/** The producer identity state of one partition. */
interface SequenceState {
  producerId: number;
  epoch: number;
  next: number;
  /** The partition has acknowledged a batch of this (id, epoch). */
  confirmed: boolean;
}

type Recovery = 'retry' | 'refuse' | 'resequence' | 'landedUnknown';

class PartitionSender {
  private open: OutBatch | undefined;
  private lingerDue = false;
  private lingerTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** Sealed and not yet settled, in sequence order (in-flight ones included). */
  private readonly queue: OutBatch[] = [];
  private inFlight = 0;
  private recovering = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private seq: SequenceState | undefined;
  private fetchingIdentity = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly p: Producer,
    readonly stream: string,
    readonly partition: number,
  ) {}

  get busy(): boolean {
    return this.open !== undefined || this.queue.length > 0;
  }

  add(
    records: { input: RecordInput; bytes: number }[],
    expectedOffset: number | undefined,
  ): Promise<number[]> {
    const o = this.p.o;
    const bytes = records.reduce((n, r) => n + r.bytes, 0);
    if (expectedOffset !== undefined) {
      // A conditional append is its own batch: the condition is about exactly these records.
      this.seal();
      const b = new OutBatch();
      b.expectedOffset = expectedOffset;
      const done = this.join(b, records, bytes);
      this.enqueue(b);
      this.pump();
      return done;
    }
    if (this.open !== undefined && this.open.bytes + bytes > o.maxBatchBytes) this.seal();
    this.open ??= new OutBatch();
    const done = this.join(this.open, records, bytes);
    if (this.open.bytes >= o.maxBatchBytes) this.seal();
    else this.armLinger();
    this.pump();
    return done;
  }

  private join(
    b: OutBatch,
    records: { input: RecordInput; bytes: number }[],
    bytes: number,
  ): Promise<number[]> {
    return new Promise((resolve, reject) => {
      b.waiters.push({ start: b.records.length, count: records.length, resolve, reject });
      for (const r of records) b.records.push(r.input);
      b.bytes += bytes;
    });
  }

  private armLinger(): void {
    if (this.lingerTimer !== undefined || this.lingerDue) return;
    const fire = () => {
      this.lingerTimer = undefined;
      this.lingerDue = true;
      this.pump();
    };
    // lingerMs 0: appends made in the same event-loop turn still share a batch.
    this.lingerTimer = this.p.o.lingerMs > 0 ? setTimeout(fire, this.p.o.lingerMs) : setImmediate(fire);
  }

  private clearLinger(): void {
    if (this.lingerTimer !== undefined) {
      clearTimeout(this.lingerTimer as NodeJS.Timeout);
      clearImmediate(this.lingerTimer as NodeJS.Immediate);
    }
    this.lingerTimer = undefined;
    this.lingerDue = false;
  }

  private seal(): void {
    if (this.open === undefined) return;
    this.enqueue(this.open);
    this.open = undefined;
    this.clearLinger();
  }

  private enqueue(b: OutBatch): void {
    b.deadline = Date.now() + this.p.o.deliveryTimeoutMs;
    this.queue.push(b);
  }

  /** Seals the open batch now (flush). */
  flushOpen(): void {
    this.lingerDue = true;
    this.pump();
  }

  whenIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private limit(): number {
    if (this.seq !== undefined && !this.seq.confirmed) return 1;
    return this.p.o.maxInFlightPerPartition;
  }

  /** Sends what may be sent now. Called after every change. */
  pump(): void {
    if (this.retryTimer !== undefined) return;
    if (this.p.o.idempotent && this.seq === undefined) {
      if (this.busy) this.fetchIdentity();
      return;
    }
    if (this.recovering) {
      if (this.inFlight === 0) this.recoverStep();
      return;
    }
    while (!this.recovering && this.inFlight < this.limit()) {
      const next = this.queue.find((b) => b.state === 'queued');
      if (next !== undefined) {
        this.send(next);
        continue;
      }
      // Seal the open batch only when it can go at once; otherwise let it grow.
      if (this.open !== undefined && this.lingerDue) {
        this.seal();
        continue;
      }
      break;
    }
    if (!this.busy) {
      const idle = this.idle;
      this.idle = [];
      for (const f of idle) f();
    }
  }

  private fetchIdentity(): void {
    if (this.fetchingIdentity) return;
    this.fetchingIdentity = true;
    const fresh = this.p.fresh.has(this);
    this.p.identity(fresh).then(
      (id) => {
        this.fetchingIdentity = false;
        this.p.fresh.delete(this);
        this.seq = { producerId: id.producerId, epoch: id.epoch, next: 0, confirmed: false };
        this.pump();
      },
      (err: CairnClientError) => {
        this.fetchingIdentity = false;
        // Without an identity nothing can be sent: fail what waits, keep the partition usable.
        this.seal();
        for (const b of this.queue.splice(0)) this.fail(b, err);
        this.pump();
      },
    );
  }

  private send(b: OutBatch): void {
    const o = this.p.o;
    const seq = this.seq;
    if (seq !== undefined && b.identity === undefined) {
      b.identity = { producerId: seq.producerId, epoch: seq.epoch, baseSequence: seq.next };
      seq.next = (seq.next + b.records.length) % SEQUENCE_MODULUS;
      b.encoded = undefined;
    }
    if (b.encoded === undefined) {
      try {
        b.encoded = this.p.core.encodeBatch(b.records, {
          compression: o.compression,
          // Records without a timestamp take the batch's: the time it is built.
          baseTimestamp: Date.now(),
          producerId: b.identity?.producerId ?? -1,
          producerEpoch: b.identity?.epoch ?? -1,
          baseSequence: b.identity?.baseSequence ?? -1,
        });
      } catch (err) {
        // The records cannot be encoded (e.g. beyond core-wasm's limits): refused here,
        // with the same effect as a refusal by the partition.
        b.state = 'failed';
        b.lastError = invalidRequest(`cannot encode the batch: ${(err as Error).message}`);
        this.recovering = true;
        queueMicrotask(() => this.pump());
        return;
      }
    }
    b.state = 'inflight';
    b.sends++;
    this.inFlight++;
    const address = this.p.router.pick({
      kind: 'partition',
      stream: this.stream,
      partition: this.partition,
      replica: 'leader',
    });
    const req = create(AppendRequestSchema, {
      stream: this.stream,
      target: { case: 'partition', value: this.partition },
      payload: { case: 'batch', value: b.encoded },
      ...(b.expectedOffset !== undefined ? { expectedOffset: BigInt(b.expectedOffset) } : {}),
    });
    this.p.channels.unary(address, StreamService, 'append', req, o.requestTimeoutMs).then(
      (res) =>
        this.settled(b, address, toNumber(res.baseOffset, 'offset'), toNumber(res.lastOffset, 'offset')),
      (err: CairnClientError) => this.settled(b, address, -1, -1, err),
    );
  }

  private settled(b: OutBatch, address: string, base: number, last: number, err?: CairnClientError): void {
    this.inFlight--;
    if (err === undefined) {
      // Only the leader appends: remember who did.
      this.p.router.noteLeaderAddress(this.stream, this.partition, address);
      this.complete(b, base, last);
    } else if (err.code === 'DUPLICATE_SEQUENCE' && err.facts.baseOffset >= 0) {
      // The batch landed on an earlier attempt: the original offsets are the answer.
      this.complete(b, err.facts.baseOffset, err.facts.lastOffset);
    } else {
      b.state = 'failed';
      b.lastError = err;
      b.failures++;
      if (err.code === 'NOT_LEADER') this.p.router.noteLeader(this.stream, this.partition, err);
      else if (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT') this.p.router.noteFailure(address);
      this.recovering = true;
    }
    this.pump();
  }

  private complete(b: OutBatch, base: number, last: number): void {
    const i = this.queue.indexOf(b);
    if (i >= 0) this.queue.splice(i, 1);
    if (this.seq !== undefined && b.identity?.epoch === this.seq.epoch) this.seq.confirmed = true;
    this.p.release(b.bytes);
    // Pair assertion with the batch built: one offset per record, offset deltas 0..n-1.
    if (last - base + 1 !== b.records.length) {
      const e = new CairnClientError(
        'INTERNAL',
        `the partition answered offsets ${base}..${last} for a batch of ${b.records.length} records`,
      );
      for (const w of b.waiters) w.reject(e);
      return;
    }
    for (const w of b.waiters) {
      const offsets = new Array<number>(w.count);
      for (let k = 0; k < w.count; k++) offsets[k] = base + w.start + k;
      w.resolve(offsets);
    }
  }

  private fail(b: OutBatch, err: CairnClientError): void {
    const i = this.queue.indexOf(b);
    if (i >= 0) this.queue.splice(i, 1);
    this.p.release(b.bytes);
    for (const w of b.waiters) w.reject(err);
  }

  private classify(err: CairnClientError): Recovery {
    if (!this.p.o.idempotent) {
      // Without sequences the partition cannot recognise a repeat: retry only refusals.
      if (err.code === 'NOT_LEADER') return 'retry';
      if (err.code === 'UNAVAILABLE' && (err.fromServer || /ECONNREFUSED|No connection/.test(err.message)))
        return 'retry';
      return 'refuse';
    }
    switch (err.code) {
      case 'NOT_LEADER':
      case 'UNAVAILABLE':
      case 'TIMEOUT':
        return 'retry';
      case 'OUT_OF_ORDER_SEQUENCE':
        return 'resequence';
      case 'DUPLICATE_SEQUENCE':
        return 'landedUnknown';
      default:
        return 'refuse';
    }
  }

  /**
   * Recovery, with nothing in flight: settle the head batch, then the next, one at a time,
   * until the head is a batch never sent (everything after it is unsent too).
   */
  private recoverStep(): void {
    for (;;) {
      const head = this.queue[0];
      if (head === undefined || (head.state === 'queued' && head.sends === 0)) {
        this.recovering = false;
        this.pump();
        return;
      }
      if (head.state === 'queued') {
        this.send(head);
        return;
      }
      // head.state === 'failed'
      const err = head.lastError!;
      const action = this.classify(err);
      const expired = Date.now() >= head.deadline;
      switch (action) {
        case 'retry':
          if (expired) {
            // The head may or may not have landed, and so may every later batch that was
            // sent (each follows the head's sequences): none of them can be resent under a
            // new epoch without risking a duplicate, so they all fail as "unknown".
            const last = noLeaderAsUnavailable(err);
            const unknown = new CairnClientError(
              last.code,
              `append not acknowledged within ${this.p.o.deliveryTimeoutMs} ms (its outcome is unknown): ${err.message}`,
              err.facts,
              err.grpcCode,
              err.fromServer,
            );
            for (const b of this.queue.filter((x) => x.sends > 0)) this.fail(b, unknown);
            this.newEpoch();
            continue;
          }
          head.state = 'queued';
          if (
            err.code === 'NOT_LEADER' &&
            err.facts.leaderAddress !== '' &&
            head.redirects < this.p.o.maxImmediateRedirects
          ) {
            head.redirects++;
            this.send(head);
            return;
          }
          head.redirects = 0;
          this.resendLater(head);
          return;
        case 'resequence':
          if (expired) {
            this.fail(head, err);
            this.newEpoch();
            continue;
          }
          // The partition expects other sequences than ours: start a new epoch at 0.
          this.newEpoch();
          head.state = 'queued';
          this.resendLater(head);
          return;
        case 'landedUnknown':
          this.fail(
            head,
            new CairnClientError(
              'DUPLICATE_SEQUENCE',
              `the append was made by an earlier attempt, but its offsets are no longer known: ${err.message}`,
              err.facts,
              err.grpcCode,
              err.fromServer,
            ),
          );
          continue;
        case 'refuse': {
          this.fail(head, err);
          if (err.code === 'PRODUCER_FENCED') {
            // Another producer owns a newer epoch of this id: take a new id.
            this.resetIdentity();
          } else if (head.identity !== undefined && this.seq !== undefined) {
            if (this.queue.some((b) => b.sends > 0)) this.newEpoch();
            else if (head.identity.epoch === this.seq.epoch) this.seq.next = head.identity.baseSequence;
          }
          continue;
        }
      }
    }
  }

  /** Resends the head (state 'queued') after a backoff that grows with its failures. */
  private resendLater(head: OutBatch): void {
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.pump();
      },
      backoffMs(this.p.o, head.failures),
    );
  }

  /** Moves the partition to a new epoch (or a new producer id when epochs run out). */
  private newEpoch(): void {
    if (this.seq === undefined) return;
    for (const b of this.queue) {
      b.identity = undefined;
      b.encoded = undefined;
    }
    if (this.seq.epoch >= MAX_PRODUCER_EPOCH) {
      this.resetIdentity();
      return;
    }
    this.seq = { producerId: this.seq.producerId, epoch: this.seq.epoch + 1, next: 0, confirmed: false };
  }

  private resetIdentity(): void {
    for (const b of this.queue) {
      b.identity = undefined;
      b.encoded = undefined;
    }
    this.seq = undefined;
    this.p.fresh.add(this);
  }

  /** Fails everything waiting (client closed). */
  abort(err: CairnClientError): void {
    this.clearLinger();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.seal();
    for (const b of this.queue.splice(0)) this.fail(b, err);
    const idle = this.idle;
    this.idle = [];
    for (const f of idle) f();
  }
}

export class Producer {
  private readonly senders = new Map<string, PartitionSender>();
  /** Partitions that must use a producer id of their own (fenced, or out of epochs). */
  readonly fresh = new Set<PartitionSender>();
  private shared: Promise<{ producerId: number; epoch: number }> | undefined;
  private buffered = 0;
  private spaceWaiters: { bytes: number; resolve(): void }[] = [];
  private roundRobin = 0;
  private closed = false;

  constructor(
    readonly o: ResolvedOptions,
    readonly core: Core,
    readonly router: Router,
    readonly channels: Channels,
  ) {}

  /** The producer identity; one id shared by every partition unless `fresh` asks for a new one. */
  identity(fresh: boolean): Promise<{ producerId: number; epoch: number }> {
    if (fresh) return this.initProducer();
    if (this.shared === undefined) {
      this.shared = this.initProducer();
      this.shared.catch(() => {
        this.shared = undefined; // try again on the next append
      });
    }
    return this.shared;
  }

  private async initProducer(): Promise<{ producerId: number; epoch: number }> {
    const res = await this.router.call(
      { kind: 'metadata' }, // ids are allocated by the metadata group's leader
      { retryUnknown: true, deadline: Date.now() + this.o.retryTimeoutMs },
      (address, timeoutMs) =>
        this.channels.unary(
          address,
          StreamService,
          'initProducer',
          create(InitProducerRequestSchema),
          timeoutMs,
        ),
    );
    return { producerId: toNumber(res.producerId, 'producer id'), epoch: res.producerEpoch };
  }

  async append(stream: string, records: ProduceRecord[], opts: AppendOptions): Promise<RecordPosition[]> {
    if (this.closed) throw new CairnClientError('UNAVAILABLE', 'the client is closed');
    if (typeof stream !== 'string' || stream === '') throw invalidRequest('a stream name is required');
    if (records.length === 0) throw invalidRequest('an append needs at least one record');
    const inputs = records.map(toRecordInput);
    const limit = this.o.maxRecordBytes;
    const tooBig = inputs.find((r) => r.payload > limit);
    if (tooBig !== undefined) {
      throw new CairnClientError(
        'RECORD_TOO_LARGE',
        `a record is ${tooBig.payload} bytes (key + value + headers); the limit is ${limit}`,
        { limit },
      );
    }
    const { partition, expectedOffset } = opts;
    if (partition !== undefined && (!Number.isInteger(partition) || partition < 0))
      throw invalidRequest(`partition must be an integer ≥ 0, not ${partition}`);
    if (expectedOffset !== undefined && (!Number.isSafeInteger(expectedOffset) || expectedOffset < 0))
      throw invalidRequest(`expectedOffset must be an integer ≥ 0, not ${expectedOffset}`);

    // Partition of each record: the one given, else the key's hash, else round-robin per call.
    const partitions = new Array<number>(inputs.length);
    if (partition !== undefined) {
      partitions.fill(partition);
    } else {
      const s = await this.router.stream(stream);
      if (s === undefined)
        throw new CairnClientError('STREAM_NOT_FOUND', `stream '${stream}' does not exist`);
      const n = s.partitions.length;
      const keyless = this.roundRobin++ % n;
      inputs.forEach((r, i) => {
        partitions[i] =
          r.input.key === null || r.input.key === undefined ? keyless : this.partitionOf(r.input.key, n);
      });
    }
    if (expectedOffset !== undefined && partitions.some((p) => p !== partitions[0])) {
      throw invalidRequest(
        'a conditional append (expectedOffset) must go to one partition; give `partition`',
      );
    }

    const bytes = inputs.reduce((n, r) => n + r.bytes, 0);
    await this.reserve(bytes);
    if (this.closed) {
      this.release(bytes);
      throw new CairnClientError('UNAVAILABLE', 'the client is closed');
    }
    // One sender call per partition, with that partition's records in call order.
    const byPartition = new Map<number, number[]>();
    partitions.forEach((p, i) => {
      let list = byPartition.get(p);
      if (list === undefined) byPartition.set(p, (list = []));
      list.push(i);
    });
    const out = new Array<RecordPosition>(inputs.length);
    await Promise.all(
      [...byPartition].map(async ([p, indexes]) => {
        const offsets = await this.sender(stream, p).add(
          indexes.map((i) => inputs[i]!),
          expectedOffset,
        );
        indexes.forEach((i, k) => {
          out[i] = { partition: p, offset: offsets[k]! };
        });
      }),
    );
    return out;
  }

  /** The partition of a key: xxHash32 (seed 0) of its bytes mod partitions, as the proto documents. */
  partitionOf(key: Uint8Array, partitions: number): number {
    return (this.core.xxhash32(key, 0) >>> 0) % partitions;
  }

  private sender(stream: string, partition: number): PartitionSender {
    const k = `${stream}\u0000${partition}`;
    let s = this.senders.get(k);
    if (s === undefined) this.senders.set(k, (s = new PartitionSender(this, stream, partition)));
    return s;
  }

  private reserve(bytes: number): Promise<void> {
    // A single append larger than the whole buffer still goes, alone.
    if (this.buffered === 0 || this.buffered + bytes <= this.o.maxBufferedBytes) {
      this.buffered += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.spaceWaiters.push({ bytes, resolve }));
  }

  release(bytes: number): void {
    this.buffered -= bytes;
    while (this.spaceWaiters.length > 0) {
      const w = this.spaceWaiters[0]!;
      if (this.buffered !== 0 && this.buffered + w.bytes > this.o.maxBufferedBytes) break;
      this.spaceWaiters.shift();
      this.buffered += w.bytes;
      w.resolve();
    }
  }

  /** Sends every open batch now and waits until everything appended so far has settled. */
  async flush(): Promise<void> {
    const busy = [...this.senders.values()].filter((s) => s.busy);
    for (const s of busy) s.flushOpen();
    await Promise.all(busy.map((s) => s.whenIdle()));
  }

  close(err: CairnClientError): void {
    this.closed = true;
    for (const s of this.senders.values()) s.abort(err);
    for (const w of this.spaceWaiters.splice(0)) w.resolve();
  }
}
