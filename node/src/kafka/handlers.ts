// Each Kafka API on NodeApi: a request of a supported version read field by field (the
// protocol guide's request schema), answered with the response of the same version. A
// topic is a stream, a partition a partition, a broker a node; the stored record batches
// go in and come out as they are, never re-encoded.
import { asCairnError, CairnError } from '../errors.js';
import type { NodeApi, StreamInfo } from '../node-api.js';
import type { Clock } from '../seams/clock.js';
import type { StreamConfig } from '../state/metadata.js';
import { ApiKey, SUPPORTED } from './apis.js';
import { KafkaError, kafkaCode } from './errors.js';
import { KafkaProtocolError, type Reader, Writer } from './protocol.js';

export interface HandlerOptions {
  node: NodeApi;
  clock: Clock;
  /** InitProducer on another node's API (the metadata leader's: producer ids come from the catalog). */
  initProducerAt?(apiAddress: string): Promise<{ producerId: number; producerEpoch: number }>;
  /** This node's id and the address Kafka clients reach it at. */
  nodeId: number;
  advertised: string;
  /** Wait at most this long in a Fetch (the node's own long-poll bound). */
  maxWaitMs: number;
  maxReadBytes: number;
}

const NOT_CONTROLLER = 41;
const COORDINATOR_NOT_AVAILABLE = 15;
/** How long a Metadata request waits for group 0 to have a leader before answering without one. */
const METADATA_LEADER_WAIT_MS = 2_000;
/** Timestamps ListOffsets asks for by name. */
const LATEST = -1;
const EARLIEST = -2;

/** "host:port" or "[v6]:port" → host and port. */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(i + 1)) };
}

export class KafkaHandlers {
  constructor(private readonly o: HandlerOptions) {}

  /** The response body, or null when none is sent (a Produce with acks 0). */
  handle(key: number, version: number, r: Reader): Promise<Writer | null> {
    switch (key) {
      case ApiKey.ApiVersions:
        return Promise.resolve(this.apiVersions(version, r));
      case ApiKey.Metadata:
        return this.metadata(version, r);
      case ApiKey.Produce:
        return this.produce(version, r);
      case ApiKey.Fetch:
        return this.fetch(version, r);
      case ApiKey.ListOffsets:
        return this.listOffsets(version, r);
      case ApiKey.InitProducerId:
        return this.initProducerId(version, r);
      case ApiKey.CreateTopics:
        return this.createTopics(version, r);
      case ApiKey.DeleteTopics:
        return this.deleteTopics(version, r);
      default:
        throw new KafkaProtocolError(`API key ${key} is not supported`);
    }
  }

  // --- ApiVersions -------------------------------------------------------------------------

  apiVersions(version: number, r: Reader): Writer {
    if (version >= 3) {
      r.compactString(); // client software name
      r.compactString(); // and version
      r.skipTags();
    }
    return apiVersionsResponse(version, KafkaError.NONE);
  }

  // --- Metadata ----------------------------------------------------------------------------

  private async metadata(version: number, r: Reader): Promise<Writer> {
    const names = version === 0 ? r.array((x) => x.string()) : r.nullableArray((x) => x.string());
    if (version >= 4) r.bool(); // allow_auto_topic_creation: topics are made by CreateTopics only
    if (version >= 8) {
      r.bool();
      r.bool();
    }
    let meta = await this.o.node.metadata();
    // Right after a start or a leader change group 0 may have no known leader for a moment:
    // wait a little for one (some clients, kafkajs among them, fail outright on a
    // controller they cannot find rather than asking again).
    for (let waited = 0; meta.metadataLeader === 0 && waited < METADATA_LEADER_WAIT_MS; waited += 50) {
      await new Promise<void>((resolve) => this.o.clock.setTimer(50, resolve));
      meta = await this.o.node.metadata();
    }
    const brokers = new Map<number, string>();
    for (const n of meta.nodes) if (n.kafkaAddress) brokers.set(n.id, n.kafkaAddress);
    brokers.set(this.o.nodeId, this.o.advertised);
    const all = names === null || (version === 0 && names.length === 0);
    const streams = new Map(meta.streams.map((s) => [s.name, s]));
    const topics: { name: string; stream: StreamInfo | undefined }[] = all
      ? meta.streams.map((s) => ({ name: s.name, stream: s }))
      : names.map((name) => ({ name, stream: streams.get(name) }));
    // The controller (where CreateTopics and DeleteTopics go) is group 0's leader; -1 while
    // none is known, so clients ask again rather than be sent to a node that would refuse.
    const controller = brokers.has(meta.metadataLeader) ? meta.metadataLeader : -1;

    const w = new Writer();
    if (version >= 3) w.int32(0);
    w.array(
      [...brokers].sort((a, b) => a[0] - b[0]),
      (w, [id, address]) => {
        const { host, port } = splitAddress(address);
        w.int32(id).string(host).int32(port);
        if (version >= 1) w.nullableString(null);
      },
    );
    if (version >= 2) w.nullableString(meta.clusterId);
    if (version >= 1) w.int32(controller);
    w.array(topics, (w, t) => {
      w.int16(t.stream === undefined ? KafkaError.UNKNOWN_TOPIC_OR_PARTITION : KafkaError.NONE).string(
        t.name,
      );
      if (version >= 1) w.bool(false);
      w.array(t.stream?.partitions ?? [], (w, p) => {
        const known = p.leader !== 0 && brokers.has(p.leader);
        w.int16(known ? KafkaError.NONE : KafkaError.LEADER_NOT_AVAILABLE)
          .int32(p.partition)
          .int32(known ? p.leader : -1);
        if (version >= 7) w.int32(-1); // leader epoch: not tracked
        w.array(p.replicas, (w, id) => w.int32(id));
        // In sync: the replicas, as far as this node knows (the leader's view is not asked).
        w.array(p.replicas, (w, id) => w.int32(id));
        if (version >= 5) w.array([], () => {});
      });
      if (version >= 8) w.int32(-2147483648); // authorized operations: not asked for
    });
    if (version >= 8) w.int32(-2147483648);
    return w;
  }

  // --- Produce -----------------------------------------------------------------------------

  private async produce(version: number, r: Reader): Promise<Writer | null> {
    const transactionalId = r.nullableString();
    const acks = r.int16();
    r.int32(); // timeout: the node's own request timeout applies
    const topics = r.array((t) => ({
      name: t.string(),
      partitions: t.array((p) => ({ index: p.int32(), records: p.nullableBytes() })),
    }));
    const badAcks = acks !== 0 && acks !== 1 && acks !== -1;
    // acks 1 is answered as acks -1: an append is acknowledged once a majority has it durable.
    const results = await Promise.all(
      topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map(async (p) => {
            if (badAcks) return { index: p.index, error: KafkaError.INVALID_REQUIRED_ACKS, baseOffset: -1 };
            if (transactionalId !== null)
              return {
                index: p.index,
                error: KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                baseOffset: -1,
              };
            return { index: p.index, ...(await this.appendBatches(t.name, p.index, p.records)) };
          }),
        ),
      })),
    );
    if (acks === 0) return null;
    const w = new Writer();
    w.array(results, (w, t) => {
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.index).int16(p.error).int64(p.baseOffset);
        if (version >= 2) w.int64(-1); // log append time: batches keep their create time
        if (version >= 5) w.int64(-1); // log start offset: not known to the append
        if (version >= 8) w.array([], () => {}).nullableString(null);
      });
    });
    w.int32(0); // throttle time
    return w;
  }

  /** Appends the batches of one partition's records in order; the first one's base offset. */
  private async appendBatches(
    stream: string,
    partition: number,
    records: Uint8Array | null,
  ): Promise<{ error: number; baseOffset: number }> {
    if (records === null || records.length === 0)
      return { error: KafkaError.CORRUPT_MESSAGE, baseOffset: -1 };
    let baseOffset = -1;
    for (let at = 0; at < records.length; ) {
      if (records.length - at < 61) return { error: KafkaError.CORRUPT_MESSAGE, baseOffset: -1 };
      const length = new DataView(records.buffer, records.byteOffset + at + 8, 4).getInt32(0);
      const end = at + 12 + length;
      if (length < 49 || end > records.length) return { error: KafkaError.CORRUPT_MESSAGE, baseOffset: -1 };
      let first: number;
      try {
        first = (await this.o.node.append({ stream, partition, batch: records.subarray(at, end) }))
          .baseOffset;
      } catch (err) {
        const e = asCairnError(err);
        // An exact retry: already appended, at these offsets (the idempotent producer's dedup).
        if (e.code === 'DUPLICATE_SEQUENCE' && (e.facts.baseOffset ?? -1) >= 0) first = e.facts.baseOffset!;
        else return { error: partitionError(err), baseOffset: -1 };
      }
      if (baseOffset === -1) baseOffset = first;
      at = end;
    }
    return { error: KafkaError.NONE, baseOffset };
  }

  // --- Fetch -------------------------------------------------------------------------------

  private async fetch(version: number, r: Reader): Promise<Writer> {
    r.int32(); // replica id: only consumers fetch here
    const maxWaitMs = Math.min(Math.max(r.int32(), 0), this.o.maxWaitMs);
    const minBytes = r.int32();
    let maxBytes = r.int32();
    r.int8(); // isolation level: without transactions, read committed and uncommitted agree
    let sessionId = 0;
    let sessionEpoch = -1;
    if (version >= 7) {
      sessionId = r.int32();
      sessionEpoch = r.int32();
    }
    const wanted = r.array((t) => ({
      topic: t.string(),
      partitions: t.array((p) => {
        const partition = p.int32();
        if (version >= 9) p.int32(); // current leader epoch
        const offset = p.int64();
        if (version >= 5) p.int64(); // the follower's log start: only brokers send it
        return { partition, offset, maxBytes: p.int32() };
      }),
    }));
    if (version >= 7) r.array((t) => ({ topic: t.string(), partitions: t.array((p) => p.int32()) })); // forgotten: no sessions
    if (version >= 11) r.string(); // rack id
    const w = new Writer();
    w.int32(0);
    // Fetch sessions (KIP-227) are not kept: every fetch is a full one, and a client that
    // asks to go on with a session is told it does not exist, so it starts a full one.
    if (version >= 7 && sessionEpoch > 0) {
      w.int16(KafkaError.FETCH_SESSION_ID_NOT_FOUND)
        .int32(sessionId)
        .array([], () => {});
      return w;
    }
    if (maxBytes <= 0) maxBytes = this.o.maxReadBytes;
    let results = await this.readAll(wanted, 0, maxBytes);
    const got = () =>
      results.reduce((n, t) => n + t.partitions.reduce((m, p) => m + (p.records?.length ?? 0), 0), 0);
    if (
      got() < Math.max(minBytes, 1) &&
      maxWaitMs > 0 &&
      results.some((t) => t.partitions.some((p) => p.error === 0))
    ) {
      // Long poll: wait for any partition to get records (or the wait to end), then read again.
      await this.waitForAny(wanted, maxWaitMs);
      results = await this.readAll(wanted, 0, maxBytes);
    }
    if (version >= 7) w.int16(KafkaError.NONE).int32(0);
    w.array(results, (w, t) => {
      w.string(t.topic).array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.error).int64(p.highWatermark).int64(p.highWatermark);
        if (version >= 5) w.int64(p.logStartOffset);
        w.array([], () => {}); // aborted transactions: none
        if (version >= 11) w.int32(-1);
        w.nullableBytes(p.records);
      });
    });
    return w;
  }

  private readAll(
    wanted: { topic: string; partitions: { partition: number; offset: number; maxBytes: number }[] }[],
    waitMs: number,
    maxBytes: number,
  ) {
    let budget = maxBytes;
    // One partition after another, so the response's byte budget is spent in request order
    // (Kafka's rule: the first partition with data is returned even past the budget).
    return (async () => {
      const out = [];
      for (const t of wanted) {
        const partitions = [];
        for (const p of t.partitions) {
          const limit = Math.min(p.maxBytes, this.o.maxReadBytes);
          if (budget <= 0 || limit <= 0) {
            partitions.push({
              partition: p.partition,
              error: 0,
              highWatermark: -1,
              logStartOffset: -1,
              records: null,
            });
            continue;
          }
          try {
            const res = await this.o.node.read({
              stream: t.topic,
              partition: p.partition,
              offset: p.offset,
              maxBytes: Math.min(limit, budget),
              maxRecords: 0,
              maxWaitMs: waitMs,
              linearizable: false,
              decode: false,
            });
            budget -= res.batches.length;
            partitions.push({
              partition: p.partition,
              error: 0,
              highWatermark: res.highWatermark,
              logStartOffset: res.logStartOffset,
              records: res.batches,
            });
          } catch (err) {
            const e = asCairnError(err);
            partitions.push({
              partition: p.partition,
              error: partitionError(err),
              highWatermark: e.facts.highWatermark ?? -1,
              logStartOffset: e.facts.logStartOffset ?? -1,
              records: null,
            });
          }
        }
        out.push({ topic: t.topic, partitions });
      }
      return out;
    })();
  }

  /** Resolves once one of the partitions has records past its fetch offset, or after `ms`. */
  private async waitForAny(
    wanted: { topic: string; partitions: { partition: number; offset: number }[] }[],
    ms: number,
  ): Promise<void> {
    const polls = wanted.flatMap((t) =>
      t.partitions.map((p) =>
        this.o.node
          .read({
            stream: t.topic,
            partition: p.partition,
            offset: p.offset,
            maxBytes: 1,
            maxRecords: 1,
            maxWaitMs: ms,
            linearizable: false,
            decode: false,
          })
          .then(
            () => {},
            // A partition that fails now is answered with its error; it does not end the wait.
            () => new Promise<void>(() => {}),
          ),
      ),
    );
    let cancel = () => {};
    await Promise.race([
      ...polls,
      new Promise<void>((resolve) => (cancel = this.o.clock.setTimer(ms, resolve))),
    ]);
    cancel();
  }

  // --- ListOffsets -------------------------------------------------------------------------

  private async listOffsets(version: number, r: Reader): Promise<Writer> {
    r.int32(); // replica id
    if (version >= 2) r.int8(); // isolation level
    const topics = r.array((t) => ({
      name: t.string(),
      partitions: t.array((p) => {
        const partition = p.int32();
        if (version >= 4) p.int32(); // current leader epoch
        return { partition, timestamp: p.int64() };
      }),
    }));
    const results = await Promise.all(
      topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map((p) => this.offsetFor(t.name, p.partition, p.timestamp)),
        ),
      })),
    );
    const w = new Writer();
    if (version >= 2) w.int32(0);
    w.array(results, (w, t) => {
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.error).int64(p.timestamp).int64(p.offset);
        if (version >= 4) w.int32(-1);
      });
    });
    return w;
  }

  private async offsetFor(
    stream: string,
    partition: number,
    timestamp: number,
  ): Promise<{ partition: number; error: number; timestamp: number; offset: number }> {
    const none = { partition, timestamp: -1, offset: -1 };
    try {
      // A read of nothing at the log start tells the bounds of this replica's log.
      const info = await this.o.node.describeStream(stream);
      const p = info.partitions[partition];
      if (p === undefined) return { ...none, error: KafkaError.UNKNOWN_TOPIC_OR_PARTITION };
      if (!p.replicas.includes(this.o.nodeId)) return { ...none, error: KafkaError.NOT_LEADER_OR_FOLLOWER };
      if (timestamp === LATEST) return { partition, error: 0, timestamp: -1, offset: p.highWatermark };
      if (timestamp === EARLIEST) return { partition, error: 0, timestamp: -1, offset: p.logStartOffset };
      if (timestamp < 0) return { ...none, error: KafkaError.INVALID_REQUEST };
      // The first record at or after `timestamp`: a scan from the log start (no time index yet).
      for (let at = p.logStartOffset; at < p.highWatermark; ) {
        const res = await this.o.node.read({
          stream,
          partition,
          offset: at,
          maxBytes: this.o.maxReadBytes,
          maxRecords: 0,
          maxWaitMs: 0,
          linearizable: false,
          decode: true,
        });
        for (const rec of res.records)
          if (rec.offset >= at && rec.timestamp >= timestamp)
            return { partition, error: 0, timestamp: rec.timestamp, offset: rec.offset };
        if (res.nextOffset <= at) break;
        at = res.nextOffset;
      }
      return { ...none, error: 0 };
    } catch (err) {
      return { ...none, error: partitionError(err) };
    }
  }

  // --- InitProducerId ----------------------------------------------------------------------

  private async initProducerId(_version: number, r: Reader): Promise<Writer> {
    const transactionalId = r.nullableString();
    r.int32(); // transaction timeout
    const w = new Writer().int32(0);
    if (transactionalId !== null)
      return w.int16(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED).int64(-1).int16(-1);
    try {
      let p: { producerId: number; producerEpoch: number };
      try {
        p = await this.o.node.initProducer();
      } catch (err) {
        // Any broker answers InitProducerId: a follower of group 0 asks its leader.
        const e = asCairnError(err);
        const at = e.facts.leaderAddress ?? '';
        if (e.code !== 'NOT_LEADER' || at === '' || this.o.initProducerAt === undefined) throw err;
        p = await this.o.initProducerAt(at);
      }
      return w.int16(KafkaError.NONE).int64(p.producerId).int16(p.producerEpoch);
    } catch (err) {
      // No leader of group 0 right now: retriable, as Kafka's "coordinator not available".
      const code = asCairnError(err).code === 'NOT_LEADER' ? COORDINATOR_NOT_AVAILABLE : kafkaCode(err);
      return w.int16(code).int64(-1).int16(-1);
    }
  }

  // --- CreateTopics, DeleteTopics ----------------------------------------------------------

  private async createTopics(version: number, r: Reader): Promise<Writer> {
    const topics = r.array((t) => ({
      name: t.string(),
      partitions: t.int32(),
      replicationFactor: t.int16(),
      assignments: t.array((a) => ({ partition: a.int32(), brokers: a.array((b) => b.int32()) })),
      configs: t.array((c) => ({ name: c.string(), value: c.nullableString() })),
    }));
    r.int32(); // timeout
    const validateOnly = version >= 1 ? r.bool() : false;
    const results = [];
    for (const t of topics) {
      let error: number = KafkaError.NONE;
      let message: string | null = null;
      try {
        if (t.assignments.length > 0)
          throw new CairnError('INVALID_REQUEST', 'replica assignments are chosen by Cairn');
        const config = streamConfig(t.partitions, t.replicationFactor, t.configs);
        if (validateOnly) {
          if ((await this.o.node.listStreams()).some((s) => s.name === t.name))
            throw new CairnError('STREAM_EXISTS', `topic '${t.name}' already exists`);
        } else await this.o.node.createStream(t.name, config);
      } catch (err) {
        error = controllerError(err);
        message = asCairnError(err).message;
      }
      results.push({ name: t.name, error, message });
    }
    const w = new Writer();
    if (version >= 2) w.int32(0);
    w.array(results, (w, t) => {
      w.string(t.name).int16(t.error);
      if (version >= 1) w.nullableString(t.message);
    });
    return w;
  }

  private async deleteTopics(version: number, r: Reader): Promise<Writer> {
    const names = r.array((x) => x.string());
    r.int32(); // timeout
    const results = [];
    for (const name of names) {
      try {
        await this.o.node.deleteStream(name);
        results.push({ name, error: KafkaError.NONE });
      } catch (err) {
        results.push({ name, error: controllerError(err) });
      }
    }
    const w = new Writer();
    if (version >= 1) w.int32(0);
    w.array(results, (w, t) => w.string(t.name).int16(t.error));
    return w;
  }
}

/** The ApiVersions response (also the v0 answer to a version this broker lacks). */
export function apiVersionsResponse(version: number, error: number): Writer {
  const w = new Writer();
  const apis = [...SUPPORTED].sort((a, b) => a[0] - b[0]);
  w.int16(error);
  if (version >= 3) {
    w.compactArray(apis, (w, [key, r]) => w.int16(key).int16(r.min).int16(r.max).tags());
    w.int32(0).tags();
  } else {
    w.array(apis, (w, [key, r]) => w.int16(key).int16(r.min).int16(r.max));
    if (version >= 1) w.int32(0);
  }
  return w;
}

/** A partition's error code; a partition index the stream lacks is an unknown partition. */
function partitionError(err: unknown): number {
  const e = asCairnError(err);
  if (e.code === 'INVALID_REQUEST' && /has partitions/.test(e.message))
    return KafkaError.UNKNOWN_TOPIC_OR_PARTITION;
  return kafkaCode(e);
}

/** Admin calls run on the group-0 leader, the "controller" Metadata names. */
function controllerError(err: unknown): number {
  const e = asCairnError(err);
  if (e.code === 'NOT_LEADER') return NOT_CONTROLLER;
  if (e.code === 'INVALID_REQUEST' && /replication factor/.test(e.message))
    return KafkaError.INVALID_REPLICATION_FACTOR;
  if (e.code === 'INVALID_REQUEST' && /partitions/.test(e.message)) return KafkaError.INVALID_PARTITIONS;
  if (e.code === 'INVALID_REQUEST' && /must be 1-/.test(e.message)) return KafkaError.INVALID_TOPIC_EXCEPTION;
  return kafkaCode(e);
}

/** A CreateTopics topic's settings as a stream's (-1 = the default). */
function streamConfig(
  partitions: number,
  replicationFactor: number,
  configs: { name: string; value: string | null }[],
): Partial<StreamConfig> {
  const c: Partial<StreamConfig> = {};
  if (partitions !== -1) c.partitions = partitions;
  if (replicationFactor !== -1) c.replicationFactor = replicationFactor;
  const int = (name: string, v: string | null): number => {
    const n = Number(v);
    if (v === null || !Number.isSafeInteger(n))
      throw new CairnError('INVALID_REQUEST', `${name} must be an integer`);
    return n;
  };
  for (const { name, value } of configs) {
    switch (name) {
      case 'cleanup.policy':
        if (value !== 'compact' && value !== 'delete')
          throw new CairnError('INVALID_REQUEST', 'cleanup.policy must be compact or delete');
        c.compacted = value === 'compact';
        break;
      case 'retention.ms': {
        const n = int(name, value);
        c.retentionMs = Math.max(n, 0);
        break;
      }
      case 'retention.bytes': {
        const n = int(name, value);
        c.retentionBytes = Math.max(n, 0);
        break;
      }
      case 'segment.bytes':
        c.segmentBytes = int(name, value);
        break;
      case 'delete.retention.ms':
        c.deleteRetentionMs = int(name, value);
        break;
      default:
        // Kafka's other topic settings have no Cairn counterpart; they are ignored.
        break;
    }
  }
  return c;
}
