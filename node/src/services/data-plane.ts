// The data plane of NodeApi: appends, reads and subscriptions on the local replica of a
// partition, producer ids, and consumer offsets. Each request is checked here (typed
// INVALID_REQUEST and limit errors), finds its partition through the catalog, and is
// answered by the PartitionGroup hosting it — or NOT_LEADER pointing at a replica that is.
import { CairnError, invalidRequest, limitExceeded, notLeader } from '../errors.js';
import type { PartitionGroup } from '../group/partition-group.js';
import type {
  AppendInput,
  AppendResult,
  OffsetCommitInput,
  ReadInput,
  ReadResult,
  SubscribeChunk,
  SubscribeInput,
} from '../node-api.js';
import { buildBatch, type CheckedBatch, checkClientBatch } from '../state/batches.js';
import type { Catalog } from './catalog.js';
import type { NodeContext } from './context.js';
import type { GroupRegistry } from './group-registry.js';

export class DataPlane {
  private subscribers = 0;

  constructor(
    private readonly ctx: NodeContext,
    private readonly catalog: Catalog,
    private readonly groups: GroupRegistry,
  ) {}

  /** The partition's group on this node, or NOT_LEADER naming a replica that has it. */
  async localPartition(stream: string, partition: number): Promise<PartitionGroup> {
    const s = await this.catalog.findStream(stream);
    if (!Number.isInteger(partition) || partition < 0 || partition >= s.partitions.length) {
      throw invalidRequest(
        `stream '${stream}' has partitions 0..${s.partitions.length - 1}, not ${partition}`,
      );
    }
    const p = s.partitions[partition]!;
    const pg = this.groups.get(p.groupId);
    if (pg !== undefined) return pg;
    // Not a replica here: point at one that is (it knows the leader).
    const other =
      p.replicas.find((id) => id !== this.ctx.id && this.catalog.state.member(id) !== undefined) ?? 0;
    throw notLeader(
      `partition ${stream}/${partition} (not a replica here)`,
      0,
      other === 0 ? '' : this.catalog.addressOf(other),
    );
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const o = this.ctx.o;
    const started = o.clock.now();
    const limits = o.config.limits;
    const s = await this.catalog.findStream(input.stream);
    let partition: number;
    if (input.partitionKey !== undefined) {
      partition = (o.core.xxhash32(input.partitionKey, 0) >>> 0) % s.partitions.length;
    } else if (input.partition !== undefined) {
      partition = input.partition;
    } else {
      throw invalidRequest('an append needs a partition or a partition key');
    }
    if (
      input.expectedOffset !== undefined &&
      (!Number.isSafeInteger(input.expectedOffset) || input.expectedOffset < 0)
    ) {
      throw invalidRequest('expectedOffset must be ≥ 0');
    }
    const pg = await this.localPartition(input.stream, partition);
    let batch: CheckedBatch;
    if (input.batch !== undefined && input.records === undefined) {
      batch = checkClientBatch(o.core, input.batch, limits);
    } else if (input.records !== undefined && input.batch === undefined) {
      batch = buildBatch(o.core, input.records, input.producer, o.clock.wallMs(), limits);
    } else {
      throw invalidRequest('an append needs either records or a batch');
    }
    const result = await this.ctx.timeout(
      pg.append(batch, input.expectedOffset),
      limits.requestTimeoutMs,
      'the append',
    );
    o.onAppend?.((o.clock.now() - started) / 1000, batch.bytes.length);
    return result;
  }

  async read(input: ReadInput): Promise<ReadResult> {
    if (!Number.isSafeInteger(input.offset) || input.offset < 0) throw invalidRequest('offset must be ≥ 0');
    const pg = await this.localPartition(input.stream, input.partition);
    const r = await pg.read(
      input.offset,
      input.maxBytes,
      input.maxRecords,
      input.maxWaitMs,
      input.linearizable,
      input.decode,
    );
    this.ctx.o.onRead?.(r.batches.length);
    return r;
  }

  async *subscribe(input: SubscribeInput, signal: AbortSignal): AsyncGenerator<SubscribeChunk> {
    const limits = this.ctx.o.config.limits;
    const pg = await this.localPartition(input.stream, input.partition);
    if (this.subscribers >= limits.maxSubscribers) {
      throw limitExceeded('subscribers on this node', limits.maxSubscribers);
    }
    let from: number;
    if ('offset' in input.from) {
      from = input.from.offset;
      if (!Number.isSafeInteger(from) || from < 0) throw invalidRequest('offset must be ≥ 0');
      const hw = pg.highWatermark();
      const start = pg.logStartOffset();
      if (from < start || from > hw) {
        throw new CairnError('OFFSET_OUT_OF_RANGE', `offset ${from} is outside [${start}, ${hw}]`, {
          logStartOffset: start,
          highWatermark: hw,
        });
      }
    } else {
      from = input.from.position === 'earliest' ? pg.logStartOffset() : pg.highWatermark();
    }
    const maxBytes = Math.min(input.maxBytesPerMessage || limits.maxReadBytes, limits.maxReadBytes);
    this.subscribers++;
    try {
      for await (const chunk of pg.subscribe(from, maxBytes, input.decode, signal)) {
        this.ctx.o.onRead?.(chunk.batches.length);
        yield chunk;
      }
    } finally {
      this.subscribers--;
    }
  }

  async initProducer(): Promise<{ producerId: number; producerEpoch: number }> {
    const r = await this.catalog.proposeOk({ type: 'allocateProducerIds', count: 1 });
    return { producerId: r.value as number, producerEpoch: 0 };
  }

  async commitOffset(input: OffsetCommitInput): Promise<void> {
    const limits = this.ctx.o.config.limits;
    this.ctx.checkName(input.group, 'a consumer group name');
    if (!Number.isSafeInteger(input.offset) || input.offset < 0) throw invalidRequest('offset must be ≥ 0');
    if (Buffer.byteLength(input.metadata, 'utf8') > limits.maxOffsetMetadataBytes) {
      throw new CairnError('RECORD_TOO_LARGE', 'offset metadata is too long', {
        limit: limits.maxOffsetMetadataBytes,
      });
    }
    const pg = await this.localPartition(input.stream, input.partition);
    await this.ctx.timeout(
      pg.commitOffset({ group: input.group, offset: input.offset, metadata: input.metadata }),
      limits.requestTimeoutMs,
      'the offset commit',
    );
  }

  async fetchOffset(
    group: string,
    stream: string,
    partition: number,
  ): Promise<{ offset: number; metadata: string }> {
    this.ctx.checkName(group, 'a consumer group name');
    const pg = await this.localPartition(stream, partition);
    if (!pg.group.isLeader) {
      const leader = pg.group.leader;
      throw notLeader(`partition ${stream}/${partition}`, leader, this.catalog.addressOf(leader));
    }
    await pg.group.readIndex(this.ctx.o.config.limits.requestTimeoutMs);
    const o = pg.state.committedOffset(group);
    return o ?? { offset: -1, metadata: '' };
  }
}
