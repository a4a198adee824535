// The public gRPC API (StreamService and AdminService of proto/cairn/v1/cairn.proto) as a
// thin adapter over NodeApi: convert the request, call the node, convert the answer, and
// turn any failure into a typed gRPC error (grpc-errors.ts). No logic lives here.
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { DecodedRecord as CoreRecord } from '../../../core-wasm/src/index.js';
import {
  AddNodeResponseSchema,
  AdminService,
  type AppendRequest,
  AppendResponseSchema,
  ClusterStatusResponseSchema,
  CommitOffsetResponseSchema,
  type CreateStreamRequest,
  DecodedRecordSchema,
  DeleteStreamResponseSchema,
  FetchOffsetResponseSchema,
  GetMetadataResponseSchema,
  type GroupStatus as GroupStatusMsg,
  GroupStatusSchema,
  InitProducerResponseSchema,
  ListStreamsResponseSchema,
  MemberStatusSchema,
  NodeInfoSchema,
  NodeState,
  type NodeStatusResponse,
  NodeStatusResponseSchema,
  type ReadRequest,
  ReadResponseSchema,
  RemoveNodeResponseSchema,
  Role,
  StartPosition,
  StreamConfigSchema,
  type StreamInfo as StreamInfoMsg,
  StreamInfoSchema,
  StreamService,
  type SubscribeRequest,
  SubscribeResponseSchema,
  TransferLeaderResponseSchema,
} from '../../../proto/gen/cairn/v1/cairn_pb.js';
import { asCairnError, invalidRequest } from '../errors.js';
import type { Limits } from '../limits.js';
import type {
  AppendInput,
  GroupRole,
  GroupStatus,
  NodeApi,
  NodeInfo,
  NodeStatus,
  ReadInput,
  StreamInfo,
  SubscribeInput,
} from '../node-api.js';
import type { Clock } from '../seams/clock.js';
import type { MemberState, StreamConfig } from '../state/metadata.js';
import { toServiceError } from './grpc-errors.js';
import { serviceDefinition } from './grpc-service.js';

// --- conversions ------------------------------------------------------------------------

/** An int64 from the wire as a safe number, or INVALID_REQUEST. */
function safeNumber(v: bigint, what: string): number {
  if (v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidRequest(`${what} ${v} is out of range`);
  }
  return Number(v);
}

function appendInput(r: AppendRequest): AppendInput {
  const input: AppendInput = { stream: r.stream };
  switch (r.target.case) {
    case 'partition':
      input.partition = r.target.value;
      break;
    case 'partitionKey':
      input.partitionKey = r.target.value;
      break;
    default:
      throw invalidRequest('an append needs a partition or a partition key');
  }
  switch (r.payload.case) {
    case 'records':
      input.records = r.payload.value.records.map((rec) => ({
        key: rec.key ?? null,
        value: rec.value ?? null,
        headers: rec.headers.map((h) => ({ key: h.key, value: h.value ?? null })),
        timestamp: safeNumber(rec.timestampMs, 'timestamp'),
      }));
      if (r.producer !== undefined) {
        input.producer = {
          producerId: safeNumber(r.producer.producerId, 'producer id'),
          producerEpoch: r.producer.producerEpoch,
          baseSequence: r.producer.baseSequence,
        };
      }
      break;
    case 'batch':
      if (r.producer !== undefined)
        throw invalidRequest('a batch carries its producer identity in its header');
      input.batch = r.payload.value;
      break;
    default:
      throw invalidRequest('an append needs records or a batch');
  }
  if (r.expectedOffset !== undefined) input.expectedOffset = safeNumber(r.expectedOffset, 'expected offset');
  return input;
}

function readInput(r: ReadRequest): ReadInput {
  return {
    stream: r.stream,
    partition: r.partition,
    offset: safeNumber(r.offset, 'offset'),
    maxBytes: r.maxBytes,
    maxRecords: r.maxRecords,
    maxWaitMs: r.maxWaitMs,
    linearizable: r.linearizable,
    decode: r.decode,
  };
}

function subscribeInput(r: SubscribeRequest): SubscribeInput {
  let from: SubscribeInput['from'];
  switch (r.from.case) {
    case 'offset':
      from = { offset: safeNumber(r.from.value, 'offset') };
      break;
    case 'position':
      if (r.from.value === StartPosition.EARLIEST) from = { position: 'earliest' };
      else if (r.from.value === StartPosition.LATEST) from = { position: 'latest' };
      else throw invalidRequest('subscribe needs a start position');
      break;
    default:
      throw invalidRequest('subscribe needs an offset or a start position');
  }
  return {
    stream: r.stream,
    partition: r.partition,
    from,
    maxBytesPerMessage: r.maxBytesPerMessage,
    decode: r.decode,
  };
}

function streamConfigInput(r: CreateStreamRequest): Partial<StreamConfig> {
  const c = r.config;
  if (c === undefined) return {};
  const out: Partial<StreamConfig> = { compacted: c.compacted };
  if (c.partitions !== 0) out.partitions = c.partitions;
  if (c.replicationFactor !== 0) out.replicationFactor = c.replicationFactor;
  out.retentionBytes = safeNumber(c.retentionBytes, 'retention bytes');
  out.retentionMs = safeNumber(c.retentionMs, 'retention ms');
  out.deleteRetentionMs = safeNumber(c.deleteRetentionMs, 'delete retention ms');
  out.segmentBytes = safeNumber(c.segmentBytes, 'segment bytes');
  return out;
}

const records = (rs: CoreRecord[]) =>
  rs.map((r) =>
    create(DecodedRecordSchema, {
      offset: BigInt(r.offset),
      timestampMs: BigInt(r.timestamp),
      key: r.key ?? undefined,
      value: r.value ?? undefined,
      headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? undefined })),
    }),
  );

function streamInfo(s: StreamInfo): StreamInfoMsg {
  return create(StreamInfoSchema, {
    name: s.name,
    config: create(StreamConfigSchema, {
      partitions: s.config.partitions,
      replicationFactor: s.config.replicationFactor,
      retentionBytes: BigInt(s.config.retentionBytes),
      retentionMs: BigInt(s.config.retentionMs),
      compacted: s.config.compacted,
      deleteRetentionMs: BigInt(s.config.deleteRetentionMs),
      segmentBytes: BigInt(s.config.segmentBytes),
    }),
    partitions: s.partitions.map((p) => ({
      partition: p.partition,
      groupId: BigInt(p.groupId),
      replicas: p.replicas,
      leader: p.leader,
      logStartOffset: BigInt(p.logStartOffset),
      highWatermark: BigInt(p.highWatermark),
    })),
  });
}

const nodeStates: Record<MemberState, NodeState> = {
  active: NodeState.ACTIVE,
  joining: NodeState.JOINING,
  leaving: NodeState.LEAVING,
};

const roles: Record<GroupRole, Role> = {
  follower: Role.FOLLOWER,
  candidate: Role.CANDIDATE,
  preCandidate: Role.PRE_CANDIDATE,
  leader: Role.LEADER,
  learner: Role.LEARNER,
};

const nodeInfo = (n: NodeInfo) =>
  create(NodeInfoSchema, {
    id: n.id,
    apiAddress: n.apiAddress,
    peerAddress: n.peerAddress,
    state: nodeStates[n.state],
  });

function groupStatus(g: GroupStatus): GroupStatusMsg {
  const lag: { [key: number]: bigint } = {};
  for (const [id, n] of g.followerLag) lag[id] = BigInt(n);
  return create(GroupStatusSchema, {
    groupId: BigInt(g.groupId),
    stream: g.stream,
    partition: g.partition,
    role: roles[g.role],
    term: BigInt(g.term),
    leader: g.leader,
    commitIndex: BigInt(g.commitIndex),
    appliedIndex: BigInt(g.appliedIndex),
    lastIndex: BigInt(g.lastIndex),
    followerLag: lag,
    needsRepair: g.needsRepair,
  });
}

export function nodeStatusMessage(s: NodeStatus): NodeStatusResponse {
  return create(NodeStatusResponseSchema, {
    node: nodeInfo(s.node),
    pid: s.pid,
    uptimeMs: BigInt(s.uptimeMs),
    groups: s.groups.map(groupStatus),
  });
}

const stateOfNode = new Map<NodeState, MemberState>(
  (Object.entries(nodeStates) as [MemberState, NodeState][]).map(([k, v]) => [v, k]),
);
const roleOf = new Map<Role, GroupRole>(
  (Object.entries(roles) as [GroupRole, Role][]).map(([k, v]) => [v, k]),
);

/** The inverse of nodeStatusMessage: another member's answer, for ClusterStatus. */
export function nodeStatusFromMessage(m: NodeStatusResponse): NodeStatus {
  const n = m.node;
  return {
    node: {
      id: n?.id ?? 0,
      apiAddress: n?.apiAddress ?? '',
      peerAddress: n?.peerAddress ?? '',
      state: stateOfNode.get(n?.state ?? NodeState.UNSPECIFIED) ?? 'joining',
    },
    pid: m.pid,
    uptimeMs: Number(m.uptimeMs),
    groups: m.groups.map((g) => ({
      groupId: Number(g.groupId),
      stream: g.stream,
      partition: g.partition,
      role: roleOf.get(g.role) ?? 'follower',
      term: Number(g.term),
      leader: g.leader,
      commitIndex: Number(g.commitIndex),
      appliedIndex: Number(g.appliedIndex),
      lastIndex: Number(g.lastIndex),
      followerLag: new Map(Object.entries(g.followerLag).map(([id, lag]) => [Number(id), Number(lag)])),
      needsRepair: g.needsRepair,
    })),
  };
}

// --- handlers ---------------------------------------------------------------------------

type Callback = (err: Partial<grpc.StatusObject> | null, value?: unknown) => void;

/** A unary handler: run `fn`, answer with its result or with its error, typed. */
function unary<Req>(fn: (req: Req) => Promise<unknown>) {
  return (call: grpc.ServerUnaryCall<Req, unknown>, callback: Callback) => {
    let p: Promise<unknown>;
    try {
      p = fn(call.request);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(asCairnError(err))),
    );
  };
}

export interface ApiServerOptions {
  node: NodeApi;
  clock: Clock;
  limits: Limits;
  /** host:port; port 0 picks a free one (see ApiServer.port). */
  listenAddress: string;
}

export class ApiServer {
  private constructor(
    private readonly server: grpc.Server,
    private readonly clock: Clock,
    readonly port: number,
  ) {}

  static listen(opts: ApiServerOptions): Promise<ApiServer> {
    const { node, limits } = opts;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': limits.maxRequestBytes,
      'grpc.max_send_message_length': limits.maxRequestBytes + limits.maxReadBytes,
    });
    server.addService(serviceDefinition(StreamService), {
      append: unary((r: AppendRequest) =>
        node.append(appendInput(r)).then((res) =>
          create(AppendResponseSchema, {
            partition: res.partition,
            baseOffset: BigInt(res.baseOffset),
            lastOffset: BigInt(res.lastOffset),
          }),
        ),
      ),
      read: unary((r: ReadRequest) =>
        node.read(readInput(r)).then((res) =>
          create(ReadResponseSchema, {
            batches: res.batches,
            records: records(res.records),
            nextOffset: BigInt(res.nextOffset),
            highWatermark: BigInt(res.highWatermark),
            logStartOffset: BigInt(res.logStartOffset),
          }),
        ),
      ),
      subscribe: (call: grpc.ServerWritableStream<SubscribeRequest, unknown>) => subscribe(node, call),
      initProducer: unary(() =>
        node.initProducer().then((p) =>
          create(InitProducerResponseSchema, {
            producerId: BigInt(p.producerId),
            producerEpoch: p.producerEpoch,
          }),
        ),
      ),
      commitOffset: unary(
        (r: { group: string; stream: string; partition: number; offset: bigint; metadata: string }) =>
          node
            .commitOffset({
              group: r.group,
              stream: r.stream,
              partition: r.partition,
              offset: safeNumber(r.offset, 'offset'),
              metadata: r.metadata,
            })
            .then(() => create(CommitOffsetResponseSchema)),
      ),
      fetchOffset: unary((r: { group: string; stream: string; partition: number }) =>
        node
          .fetchOffset(r.group, r.stream, r.partition)
          .then((o) => create(FetchOffsetResponseSchema, { offset: BigInt(o.offset), metadata: o.metadata })),
      ),
    });
    server.addService(serviceDefinition(AdminService), {
      createStream: unary((r: CreateStreamRequest) =>
        node.createStream(r.name, streamConfigInput(r)).then(streamInfo),
      ),
      deleteStream: unary((r: { name: string }) =>
        node.deleteStream(r.name).then(() => create(DeleteStreamResponseSchema)),
      ),
      listStreams: unary(() =>
        node.listStreams().then((ss) => create(ListStreamsResponseSchema, { streams: ss.map(streamInfo) })),
      ),
      describeStream: unary((r: { name: string }) => node.describeStream(r.name).then(streamInfo)),
      getMetadata: unary(() =>
        node.metadata().then((m) =>
          create(GetMetadataResponseSchema, {
            clusterId: m.clusterId,
            nodes: m.nodes.map(nodeInfo),
            streams: m.streams.map(streamInfo),
            metadataLeader: m.metadataLeader,
          }),
        ),
      ),
      nodeStatus: unary(async () => nodeStatusMessage(node.nodeStatus())),
      clusterStatus: unary(() =>
        node.clusterStatus().then((c) =>
          create(ClusterStatusResponseSchema, {
            clusterId: c.clusterId,
            members: c.members.map((m) =>
              create(MemberStatusSchema, {
                node: nodeInfo(m.node),
                healthy: m.healthy,
                error: m.error,
                status: m.status === undefined ? undefined : nodeStatusMessage(m.status),
              }),
            ),
          }),
        ),
      ),
      addNode: unary((r: { id: number; apiAddress: string; peerAddress: string }) =>
        node
          .addNode(r.id, r.apiAddress, r.peerAddress)
          .then((n) => create(AddNodeResponseSchema, { node: nodeInfo(n) })),
      ),
      removeNode: unary((r: { id: number }) =>
        node.removeNode(r.id).then(() => create(RemoveNodeResponseSchema)),
      ),
      transferLeader: unary((r: { stream: string; partition: number; toNode: number }) =>
        node
          .transferLeader(r.stream, r.partition, r.toNode)
          .then((leader) => create(TransferLeaderResponseSchema, { leader })),
      ),
    });
    return new Promise((resolve, reject) => {
      server.bindAsync(opts.listenAddress, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err)
          return reject(new Error(`API server cannot listen on ${opts.listenAddress}: ${err.message}`));
        resolve(new ApiServer(server, opts.clock, port));
      });
    });
  }

  /** Stops taking calls; gives running calls `graceMs` to finish, then cancels them. */
  close(graceMs = 2_000): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.setTimer(graceMs, () => {
        this.server.forceShutdown();
        resolve();
      });
      this.server.tryShutdown(() => {
        cancel();
        resolve();
      });
    });
  }
}

/**
 * Server-streaming Subscribe: pulls the node's next chunk only once gRPC has taken the
 * previous one (write() returned true, or after 'drain'), so a slow subscriber slows its
 * own reads instead of growing a buffer.
 */
async function subscribe(
  node: NodeApi,
  call: grpc.ServerWritableStream<SubscribeRequest, unknown>,
): Promise<void> {
  const abort = new AbortController();
  call.on('cancelled', () => abort.abort());
  call.on('close', () => abort.abort());
  try {
    const input = subscribeInput(call.request);
    for await (const chunk of node.subscribe(input, abort.signal)) {
      if (abort.signal.aborted) break;
      const more = call.write(
        create(SubscribeResponseSchema, {
          batches: chunk.batches,
          records: records(chunk.records),
          nextOffset: BigInt(chunk.nextOffset),
          highWatermark: BigInt(chunk.highWatermark),
        }),
      );
      if (!more) await drained(call, abort.signal);
    }
    if (!abort.signal.aborted) call.end();
  } catch (err) {
    if (abort.signal.aborted) return;
    call.emit('error', toServiceError(asCairnError(err)));
  } finally {
    abort.abort();
  }
}

function drained(
  call: grpc.ServerWritableStream<SubscribeRequest, unknown>,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
