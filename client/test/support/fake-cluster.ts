// A fake two-node "cluster" for the producer's fault tests: two real gRPC servers on
// 127.0.0.1 that share one partition log and one leader flag. The log checks idempotent
// producers with the node's own PartitionState (the rules the real partition enforces),
// and a seeded PRNG injects the faults a real cluster shows: leader changes (NOT_LEADER
// with or without the leader's address), answers lost after the append was made,
// TIMEOUT after the append was made, refusals before it, and delays that let requests
// overtake each other.
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { type Core, createCore } from '../../../core-wasm/src/index.js';
import { Rng } from '../../../core-wasm/test/rng.js';
import { toServiceError } from '../../../node/src/api/grpc-errors.js';
import { serviceDefinition } from '../../../node/src/api/grpc-service.js';
import { CairnError } from '../../../node/src/errors.js';
import { PartitionState } from '../../../node/src/state/partition.js';
import {
  AdminService,
  type AppendRequest,
  AppendResponseSchema,
  GetMetadataResponseSchema,
  InitProducerResponseSchema,
  StreamService,
} from '../../../proto/gen/cairn/v1/cairn_pb.js';

export interface FaultRates {
  /** Answer NOT_LEADER (and move leadership to the other node) instead of appending. */
  notLeader: number;
  /** Of those, the share that does not name the leader. */
  leaderUnknown: number;
  /** Append, then fail the call as a dropped connection would (no trailer). */
  lostAnswer: number;
  /** Append, then answer TIMEOUT (outcome unknown). */
  timeoutAfter: number;
  /** Refuse with UNAVAILABLE before appending. */
  refuse: number;
  /** Wait 0-maxDelayMs before handling the request (requests overtake each other). */
  delay: number;
  maxDelayMs: number;
}

export interface LoggedRecord {
  offset: number;
  value: string;
}

export class FakeCluster {
  readonly core: Core = createCore();
  readonly rng: Rng;
  readonly state = new PartitionState({
    maxProducersPerPartition: 1000,
    producerBatchesRemembered: 5,
    maxConsumerGroupsPerPartition: 10,
  });
  /** Every record appended, in log order. */
  readonly log: LoggedRecord[] = [];
  readonly addresses: string[] = [];
  leader = 0; // index into addresses
  private servers: grpc.Server[] = [];
  private index = 0;
  private nextProducerId = 1000;
  readonly counts = {
    appends: 0,
    notLeader: 0,
    lost: 0,
    timeout: 0,
    refused: 0,
    delayed: 0,
    duplicates: 0,
    outOfOrder: 0,
    fenced: 0,
  };

  constructor(
    seed: number,
    readonly faults: FaultRates,
    readonly stream = 's',
  ) {
    this.rng = new Rng(seed);
  }

  private chance(p: number): boolean {
    return this.rng.int(1_000_000) < p * 1_000_000;
  }

  async start(): Promise<void> {
    for (let i = 0; i < 2; i++) {
      const server = new grpc.Server();
      server.addService(serviceDefinition(StreamService), {
        append: (call: grpc.ServerUnaryCall<AppendRequest, unknown>, cb: grpc.sendUnaryData<unknown>) =>
          void this.append(i, call.request).then(
            (r) => cb(null, r),
            (e: CairnError | grpc.StatusObject) => cb(e instanceof CairnError ? toServiceError(e) : e),
          ),
        initProducer: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
          cb(
            null,
            create(InitProducerResponseSchema, {
              producerId: BigInt(this.nextProducerId++),
              producerEpoch: 0,
            }),
          ),
      });
      server.addService(serviceDefinition(AdminService), {
        getMetadata: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, this.metadata()),
      });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        ),
      );
      this.servers.push(server);
      this.addresses.push(`127.0.0.1:${port}`);
    }
  }

  private metadata() {
    return create(GetMetadataResponseSchema, {
      clusterId: 'fake',
      nodes: this.addresses.map((a, i) => ({ id: i + 1, apiAddress: a, peerAddress: a, state: 1 })),
      streams: [
        {
          name: this.stream,
          config: { partitions: 1, replicationFactor: 2 },
          partitions: [{ partition: 0, groupId: 1n, replicas: [1, 2], leader: this.leader + 1 }],
        },
      ],
      metadataLeader: this.leader + 1,
    });
  }

  private async append(node: number, req: AppendRequest) {
    if (this.chance(this.faults.delay)) {
      this.counts.delayed++;
      await new Promise((r) => setTimeout(r, this.rng.int(this.faults.maxDelayMs + 1)));
    }
    if (node !== this.leader) {
      this.counts.notLeader++;
      const known = !this.chance(this.faults.leaderUnknown);
      throw new CairnError('NOT_LEADER', 'not the leader', {
        leaderId: known ? this.leader + 1 : 0,
        leaderAddress: known ? this.addresses[this.leader]! : '',
      });
    }
    if (this.chance(this.faults.notLeader)) {
      // Leadership moves away before this request is handled.
      this.leader = 1 - this.leader;
      this.counts.notLeader++;
      throw new CairnError('NOT_LEADER', 'lost leadership', {
        leaderId: this.leader + 1,
        leaderAddress: this.addresses[this.leader]!,
      });
    }
    if (this.chance(this.faults.refuse)) {
      this.counts.refused++;
      throw new CairnError('UNAVAILABLE', 'too busy; retry');
    }
    if (req.payload.case !== 'batch') throw new CairnError('INVALID_REQUEST', 'the fake takes batches only');
    const bytes = req.payload.value;
    const scan = this.core.scanBatches(bytes);
    if (scan.error !== null || scan.batchCount !== 1) throw new CairnError('CORRUPT_BATCH', 'bad batch');
    const h = this.core.readBatchHeader(bytes, 0);
    const expected = req.expectedOffset === undefined ? undefined : Number(req.expectedOffset);
    const check = this.state.check(h.producerId, h.producerEpoch, h.baseSequence, h.recordCount, expected);
    if (check.kind === 'refused') {
      if (check.error.code === 'OUT_OF_ORDER_SEQUENCE') this.counts.outOfOrder++;
      if (check.error.code === 'PRODUCER_FENCED') this.counts.fenced++;
      throw check.error;
    }
    if (check.kind === 'duplicate') {
      this.counts.duplicates++;
      throw new CairnError('DUPLICATE_SEQUENCE', 'already appended', {
        baseOffset: check.original.baseOffset,
        lastOffset: check.original.lastOffset,
      });
    }
    this.counts.appends++;
    const base = this.state.nextOffset;
    const last = base + h.recordCount - 1;
    this.state.applyBatch({
      index: ++this.index,
      baseOffset: base,
      lastOffset: last,
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      recordCount: h.recordCount,
    });
    for (const r of this.core.decodeRecords(bytes)) {
      this.log.push({ offset: base + r.offset, value: new TextDecoder().decode(r.value!) });
    }
    if (this.chance(this.faults.lostAnswer)) {
      this.counts.lost++;
      throw { code: grpc.status.UNAVAILABLE, details: 'Connection dropped' } as grpc.StatusObject;
    }
    if (this.chance(this.faults.timeoutAfter)) {
      this.counts.timeout++;
      throw new CairnError('TIMEOUT', 'the append did not finish in time; its outcome is unknown');
    }
    return create(AppendResponseSchema, { partition: 0, baseOffset: BigInt(base), lastOffset: BigInt(last) });
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
    for (const s of this.servers) s.forceShutdown();
  }
}
