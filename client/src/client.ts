// CairnClient: one object per application, holding the gRPC channels, the cluster's
// metadata and the producer. Every method fails with a CairnClientError.
import { create } from '@bufbuild/protobuf';
import { type Core, createCore } from '../../core-wasm/src/index.js';
import {
  AddNodeRequestSchema,
  AdminService,
  ClusterStatusRequestSchema,
  CommitOffsetRequestSchema,
  CreateStreamRequestSchema,
  DeleteStreamRequestSchema,
  DescribeStreamRequestSchema,
  FetchOffsetRequestSchema,
  ListStreamsRequestSchema,
  ReadRequestSchema,
  RemoveNodeRequestSchema,
  StartPosition,
  StreamService,
  SubscribeRequestSchema,
  type SubscribeResponse,
  TransferLeaderRequestSchema,
} from '../../proto/gen/cairn/v1/cairn_pb.js';
import { decodeBatches } from './batches.js';
import { clusterStatus, nodeInfo, streamInfo, toNumber } from './convert.js';
import { CairnClientError, errorFromGrpc, invalidRequest } from './errors.js';
import { type Materialized, type MaterializeOptions, materialize, type Reducer } from './materialize.js';
import { backoffMs, type ClientOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Producer } from './producer.js';
import { type CallPolicy, Router, sleep, type Target, verdictOf } from './router.js';
import { Channels } from './rpc.js';
import type {
  AppendOptions,
  ClusterMetadata,
  ClusterStatus,
  CommittedOffset,
  ConsumedRecord,
  NodeInfo,
  ProduceRecord,
  ReadOptions,
  ReadResult,
  RecordPosition,
  StreamConfig,
  StreamInfo,
  SubscribeOptions,
} from './types.js';

/** Membership changes wait for the cluster to converge; the node's own limit is 60 s. */
const MEMBERSHIP_CALL_TIMEOUT_MS = 90_000;

function checkPartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0)
    throw invalidRequest(`partition must be an integer ≥ 0, not ${partition}`);
}

function checkOffset(offset: number, what = 'offset'): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw invalidRequest(`${what} must be an integer ≥ 0, not ${offset}`);
}

export class CairnClient {
  readonly options: ResolvedOptions;
  readonly core: Core;
  private readonly channels: Channels;
  private readonly router: Router;
  private readonly producer: Producer;
  /** Aborted by close(): ends subscriptions and materialized views. */
  private readonly closing = new AbortController();

  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.core = options.core ?? createCore();
    this.channels = new Channels(this.options.maxReceiveMessageBytes);
    this.router = new Router(this.options, this.channels);
    this.producer = new Producer(this.options, this.core, this.router, this.channels);
  }

  /** A call's retry policy; close() ends its retries (with the caller's own signal, if any). */
  private policy(extra: Partial<CallPolicy> = {}): CallPolicy {
    const closing = this.closing.signal;
    const signal = extra.signal === undefined ? closing : AbortSignal.any([extra.signal, closing]);
    return { retryUnknown: true, deadline: Date.now() + this.options.retryTimeoutMs, ...extra, signal };
  }

  /**
   * A routed call that may not simply be repeated when an attempt's outcome is unknown:
   * it is repeated anyway, and if a repeat then fails with an error that an earlier
   * attempt's success would explain (`explained`), `recover` answers instead.
   */
  private async uncertainCall<T>(
    target: Target,
    attempt: (address: string, timeoutMs: number) => Promise<T>,
    explained: (err: CairnClientError) => boolean,
    recover: () => Promise<T>,
    attemptTimeoutMs?: number,
  ): Promise<T> {
    let uncertain = false;
    try {
      return await this.router.call(
        target,
        this.policy(attemptTimeoutMs === undefined ? {} : { attemptTimeoutMs }),
        async (address, timeoutMs) => {
          try {
            return await attempt(address, timeoutMs);
          } catch (err) {
            const e = err as CairnClientError;
            if (verdictOf(e, false) === 'fail' && verdictOf(e, true) === 'retry') uncertain = true;
            throw e;
          }
        },
      );
    } catch (err) {
      if (uncertain && err instanceof CairnClientError && explained(err)) return recover();
      throw err;
    }
  }

  // --- cluster ----------------------------------------------------------------------------

  /** Nodes, streams and leaders, fresh from a node. */
  metadata(): Promise<ClusterMetadata> {
    return this.router.refresh();
  }

  /** The partition a key's records go to (xxHash32 of the key mod the stream's partitions). */
  async partitionFor(stream: string, key: Uint8Array | string): Promise<number> {
    const s = await this.router.stream(stream);
    if (s === undefined) throw new CairnClientError('STREAM_NOT_FOUND', `stream '${stream}' does not exist`);
    const bytes = typeof key === 'string' ? new TextEncoder().encode(key) : key;
    return this.producer.partitionOf(bytes, s.partitions.length);
  }

  // --- producer ---------------------------------------------------------------------------

  /**
   * Appends one record, or several (then the result has one position per record, in
   * order). Resolves once the records are committed (fsynced on a majority). Records of
   * one call that go to the same partition are appended together, in one batch.
   */
  append(stream: string, record: ProduceRecord, options?: AppendOptions): Promise<RecordPosition>;
  append(stream: string, records: ProduceRecord[], options?: AppendOptions): Promise<RecordPosition[]>;
  async append(
    stream: string,
    records: ProduceRecord | ProduceRecord[],
    options: AppendOptions = {},
  ): Promise<RecordPosition | RecordPosition[]> {
    if (Array.isArray(records)) return this.producer.append(stream, records, options);
    const [position] = await this.producer.append(stream, [records], options);
    return position!;
  }

  /** Sends every batch still lingering and waits until all appends made so far have settled. */
  flush(): Promise<void> {
    return this.producer.flush();
  }

  // --- reader -----------------------------------------------------------------------------

  /** Reads committed records of one partition from an offset (decoded and verified here). */
  async read(stream: string, partition: number, options: ReadOptions): Promise<ReadResult> {
    return this.readWith(stream, partition, options, undefined);
  }

  private async readWith(
    stream: string,
    partition: number,
    o: ReadOptions,
    signal: AbortSignal | undefined,
  ): Promise<ReadResult> {
    checkPartition(partition);
    checkOffset(o.offset);
    const maxWaitMs = o.maxWaitMs ?? 0;
    const maxRecords = o.maxRecords ?? 0;
    for (const [k, v] of [
      ['maxWaitMs', maxWaitMs],
      ['maxRecords', maxRecords],
      ['maxBytes', o.maxBytes ?? 0],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
        throw invalidRequest(`${k} must be an integer in [0, 2^32), not ${v}`);
    }
    const req = create(ReadRequestSchema, {
      stream,
      partition,
      offset: BigInt(o.offset),
      maxBytes: o.maxBytes ?? 0,
      maxRecords,
      maxWaitMs,
      linearizable: o.linearizable ?? false,
      decode: false,
    });
    const replica = o.linearizable ? 'leader' : (o.replica ?? 'leader');
    const policy = this.policy({
      deadline: Date.now() + this.options.retryTimeoutMs + maxWaitMs,
      attemptTimeoutMs: this.options.requestTimeoutMs + maxWaitMs,
      signal,
    });
    const res = await this.router.call(
      { kind: 'partition', stream, partition, replica },
      policy,
      (address, timeoutMs) =>
        this.channels.unary(address, StreamService, 'read', req, timeoutMs, policy.signal),
    );
    const decoded = decodeBatches(this.core, res.batches, partition, o.offset, maxRecords);
    const serverNext = toNumber(res.nextOffset, 'next offset');
    return {
      records: decoded.records,
      // Cut short here: continue at the first record not returned. Otherwise the server's
      // next offset, which also steps over control batches.
      nextOffset: decoded.truncated ? decoded.endOffset : Math.max(o.offset, serverNext),
      highWatermark: toNumber(res.highWatermark, 'high watermark'),
      logStartOffset: toNumber(res.logStartOffset, 'log start offset'),
    };
  }

  /**
   * The partition's first held offset and its high watermark (one past the last committed
   * offset), confirmed by the leader (a linearizable read).
   */
  async offsets(
    stream: string,
    partition: number,
  ): Promise<{ logStartOffset: number; highWatermark: number }> {
    // The proto has no call for just the range, but a linearizable read beyond any offset
    // is refused (after the leader confirmed it leads) with exactly these facts, and moves
    // no data: a read at a real offset returns at least one whole batch.
    try {
      const r = await this.read(stream, partition, { offset: Number.MAX_SAFE_INTEGER, linearizable: true });
      return { logStartOffset: r.logStartOffset, highWatermark: r.highWatermark };
    } catch (err) {
      if (
        err instanceof CairnClientError &&
        err.code === 'OFFSET_OUT_OF_RANGE' &&
        err.facts.highWatermark >= 0
      )
        return { logStartOffset: err.facts.logStartOffset, highWatermark: err.facts.highWatermark };
      throw err;
    }
  }

  /**
   * The records of one partition as they commit, as an async iterator. It pulls: the
   * server sends only as fast as the loop consumes (gRPC flow control). It survives leader
   * changes and node restarts: it resumes on any replica at the offset after the last
   * record it yielded, so no offset is skipped or repeated. It ends when `signal` aborts
   * or the client closes, and throws when the partition cannot be followed for
   * retryTimeoutMs in a row or on an error that no retry can fix (a deleted stream,
   * records removed by retention before they were read).
   */
  subscribe(stream: string, options: SubscribeOptions = {}): AsyncGenerator<ConsumedRecord, void, undefined> {
    const partition = options.partition ?? 0;
    checkPartition(partition);
    const from = options.from ?? 'latest';
    if (typeof from === 'number') checkOffset(from, 'from');
    else if (from !== 'earliest' && from !== 'latest')
      throw invalidRequest(`from must be an offset, 'earliest' or 'latest', not '${String(from)}'`);
    return this.follow(stream, partition, from, options);
  }

  private async *follow(
    stream: string,
    partition: number,
    from: number | 'earliest' | 'latest',
    options: SubscribeOptions,
  ): AsyncGenerator<ConsumedRecord, void, undefined> {
    const signals = [this.closing.signal, ...(options.signal ? [options.signal] : [])];
    const stopped = () => signals.some((s) => s.aborted);
    // 'latest' is pinned to a concrete offset at once, so a reconnect before the first
    // record cannot skip records appended in between.
    let next: number | undefined =
      from === 'latest'
        ? (await this.offsets(stream, partition)).highWatermark
        : from === 'earliest'
          ? undefined
          : from;
    let failingSince = 0;
    let failures = 0;
    while (!stopped()) {
      const address = this.router.pick({ kind: 'partition', stream, partition, replica: 'leader' });
      const req = create(SubscribeRequestSchema, {
        stream,
        partition,
        from:
          next === undefined
            ? { case: 'position', value: StartPosition.EARLIEST }
            : { case: 'offset', value: BigInt(next) },
        maxBytesPerMessage: options.maxBytesPerMessage ?? this.options.subscribeMaxBytesPerMessage,
        decode: false,
      });
      let call: ReturnType<Channels['serverStream']> | undefined;
      const cancel = () => call?.cancel();
      for (const s of signals) s.addEventListener('abort', cancel, { once: true });
      let err: CairnClientError | undefined;
      try {
        call = this.channels.serverStream(address, StreamService, 'subscribe', req);
        for await (const msg of call as AsyncIterable<SubscribeResponse>) {
          failures = 0;
          failingSince = 0;
          const d = decodeBatches(this.core, msg.batches, partition, next ?? 0);
          for (const r of d.records) {
            if (next !== undefined && r.offset < next) continue;
            next = r.offset + 1;
            yield r;
            if (stopped()) return;
          }
        }
        // The server ended the stream (it stopped serving the partition): go on elsewhere.
        err = new CairnClientError('UNAVAILABLE', `${address} ended the subscription`);
      } catch (e) {
        if (stopped()) return;
        err = errorFromGrpc(e, address);
      } finally {
        for (const s of signals) s.removeEventListener('abort', cancel);
        call?.cancel();
      }
      if (stopped()) return;
      // Decide whether the failure is worth another attempt.
      switch (err.code) {
        case 'NOT_LEADER':
          this.router.noteLeader(stream, partition, err);
          break;
        case 'OFFSET_OUT_OF_RANGE': {
          // Below the log start, records were removed before we read them: resuming would
          // skip them. Beyond the end: a replica that has not caught up yet (wait, or try
          // another), unless the leader says the offset is beyond its end too.
          if (next === undefined || err.facts.highWatermark < 0 || next < err.facts.logStartOffset) throw err;
          const { highWatermark } = await this.offsets(stream, partition);
          if (next > highWatermark) throw err;
          this.router.noteFailure(address);
          break;
        }
        case 'UNAVAILABLE':
        case 'TIMEOUT':
        case 'INTERNAL':
          this.router.noteFailure(address);
          break;
        default:
          throw err;
      }
      failures++;
      if (failingSince === 0) failingSince = Date.now();
      if (Date.now() - failingSince > this.options.retryTimeoutMs) throw err;
      if (
        err.code !== 'NOT_LEADER' ||
        err.facts.leaderAddress === '' ||
        failures > this.options.maxImmediateRedirects
      )
        await sleep(backoffMs(this.options, failures), this.closing.signal);
    }
  }

  // --- consumer offsets -------------------------------------------------------------------

  /** Stores `group`'s position in a partition: the next offset it will read. */
  async commitOffset(
    group: string,
    stream: string,
    partition: number,
    offset: number,
    metadata = '',
  ): Promise<void> {
    checkPartition(partition);
    checkOffset(offset);
    const req = create(CommitOffsetRequestSchema, {
      group,
      stream,
      partition,
      offset: BigInt(offset),
      metadata,
    });
    // Repeating a commit stores the same value again: safe when an attempt's outcome is unknown.
    await this.router.call(
      { kind: 'partition', stream, partition, replica: 'leader' },
      this.policy(),
      (a, t) => this.channels.unary(a, StreamService, 'commitOffset', req, t),
    );
  }

  /** `group`'s stored position in a partition; offset -1 when it has committed none. */
  async fetchOffset(group: string, stream: string, partition: number): Promise<CommittedOffset> {
    checkPartition(partition);
    const req = create(FetchOffsetRequestSchema, { group, stream, partition });
    const res = await this.router.call(
      { kind: 'partition', stream, partition, replica: 'leader' },
      this.policy(),
      (a, t) => this.channels.unary(a, StreamService, 'fetchOffset', req, t),
    );
    return { offset: toNumber(res.offset, 'offset'), metadata: res.metadata };
  }

  // --- admin ------------------------------------------------------------------------------

  /**
   * Creates a stream (defaults: 1 partition, replication factor min(3, active nodes)).
   * Resolves once its partitions have leaders.
   */
  async createStream(name: string, config: Partial<StreamConfig> = {}): Promise<StreamInfo> {
    const n = (k: keyof StreamConfig) => {
      const v = config[k];
      if (v === undefined) return 0;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
        throw invalidRequest(`${k} must be an integer ≥ 0, not ${String(v)}`);
      return v;
    };
    const req = create(CreateStreamRequestSchema, {
      name,
      config: {
        partitions: n('partitions'),
        replicationFactor: n('replicationFactor'),
        retentionBytes: BigInt(n('retentionBytes')),
        retentionMs: BigInt(n('retentionMs')),
        compacted: config.compacted ?? false,
        deleteRetentionMs: BigInt(n('deleteRetentionMs')),
        segmentBytes: BigInt(n('segmentBytes')),
      },
    });
    const info = await this.uncertainCall(
      { kind: 'metadata' },
      (a, t) => this.channels.unary(a, AdminService, 'createStream', req, t).then(streamInfo),
      // An earlier attempt may have created it: then the stream is ours if it is as asked.
      (err) => err.code === 'STREAM_EXISTS',
      async () => {
        const s = await this.describeStream(name);
        const asked = n('partitions');
        if (asked !== 0 && s.config.partitions !== asked)
          throw new CairnClientError('STREAM_EXISTS', `stream '${name}' already exists with other settings`);
        return s;
      },
    );
    void this.router.refresh().catch(() => {});
    return info;
  }

  async deleteStream(name: string): Promise<void> {
    const req = create(DeleteStreamRequestSchema, { name });
    await this.uncertainCall(
      { kind: 'metadata' },
      (a, t) => this.channels.unary(a, AdminService, 'deleteStream', req, t).then(() => undefined),
      (err) => err.code === 'STREAM_NOT_FOUND',
      async () => undefined,
    );
    void this.router.refresh().catch(() => {});
  }

  async listStreams(): Promise<StreamInfo[]> {
    const req = create(ListStreamsRequestSchema);
    const res = await this.router.call({ kind: 'metadata' }, this.policy(), (a, t) =>
      this.channels.unary(a, AdminService, 'listStreams', req, t),
    );
    return res.streams.map(streamInfo);
  }

  async describeStream(name: string): Promise<StreamInfo> {
    const req = create(DescribeStreamRequestSchema, { name });
    // The metadata leader has every catalog change applied (a follower may lag).
    const res = await this.router.call({ kind: 'metadata' }, this.policy(), (a, t) =>
      this.channels.unary(a, AdminService, 'describeStream', req, t),
    );
    return streamInfo(res);
  }

  /** Every member's status, as one node collects it (ClusterStatus). */
  async status(): Promise<ClusterStatus> {
    const res = await this.router.call({ kind: 'any' }, this.policy(), (a, t) =>
      this.channels.unary(a, AdminService, 'clusterStatus', create(ClusterStatusRequestSchema), t),
    );
    return clusterStatus(res);
  }

  /**
   * Adds a node (started with --join) to the cluster; resolves once it is an active
   * member. Repeating it for a node already added is harmless.
   */
  async addNode(node: { id: number; apiAddress: string; peerAddress: string }): Promise<NodeInfo> {
    const req = create(AddNodeRequestSchema, node);
    const res = await this.router.call(
      { kind: 'metadata' },
      this.policy({
        deadline: Date.now() + MEMBERSHIP_CALL_TIMEOUT_MS,
        attemptTimeoutMs: MEMBERSHIP_CALL_TIMEOUT_MS,
      }),
      (a, t) => this.channels.unary(a, AdminService, 'addNode', req, t),
    );
    void this.router.refresh().catch(() => {});
    return nodeInfo(res.node);
  }

  /** Removes a node: its replicas move elsewhere first; resolves once it is gone. */
  async removeNode(id: number): Promise<void> {
    const req = create(RemoveNodeRequestSchema, { id });
    await this.uncertainCall(
      { kind: 'metadata' },
      (a, t) => this.channels.unary(a, AdminService, 'removeNode', req, t).then(() => undefined),
      (err) => err.code === 'INVALID_REQUEST' && /not a member/.test(err.message),
      async () => undefined,
      MEMBERSHIP_CALL_TIMEOUT_MS,
    );
    void this.router.refresh().catch(() => {});
  }

  /**
   * Moves a partition's leadership (stream '' = the metadata group) to `toNode`, or to the
   * most caught-up follower when toNode is 0. Resolves with the new leader's id.
   */
  async transferLeader(stream: string, partition: number, toNode = 0): Promise<number> {
    checkPartition(partition);
    const req = create(TransferLeaderRequestSchema, { stream, partition, toNode });
    const target: Target =
      stream === '' ? { kind: 'metadata' } : { kind: 'partition', stream, partition, replica: 'leader' };
    const res = await this.router.call(target, this.policy(), (a, t) =>
      this.channels.unary(a, AdminService, 'transferLeader', req, t),
    );
    void this.router.refresh().catch(() => {});
    return res.leader;
  }

  // --- materialized state -----------------------------------------------------------------

  /**
   * Keeps a state folded from one partition's records: loads the newest snapshot, reads
   * the log from the snapshot's offset on, and follows new records as they commit.
   */
  materialize<S>(stream: string, reducer: Reducer<S>, options: MaterializeOptions<S>): Materialized<S> {
    return materialize(
      {
        read: (partition, o, signal) => this.readWith(stream, partition, o, signal),
        offsets: (partition) => this.offsets(stream, partition),
        closing: this.closing.signal,
        backoffMs: (n) => backoffMs(this.options, n),
      },
      stream,
      reducer,
      options,
    );
  }

  /**
   * Fails appends still waiting, ends subscriptions and materialized views, and closes
   * the connections. Call flush() first to wait for appends in progress.
   */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    this.producer.close(new CairnClientError('UNAVAILABLE', 'the client was closed'));
    // Let subscription loops see the abort before their channels go away.
    await new Promise((r) => setImmediate(r));
    this.channels.close();
  }
}
