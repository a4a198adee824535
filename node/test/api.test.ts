// The public gRPC API over a node: every call through @grpc/grpc-js with the generated
// (de)serializers, typed errors in the `cairn-error-bin` trailer, batches cross-checked
// with kafkajs's independent record batch encoder and decoder.
import { createRequire } from 'node:module';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AdminService,
  AppendRequestSchema,
  CreateStreamRequestSchema,
  DescribeStreamRequestSchema,
  GetMetadataRequestSchema,
  InitProducerRequestSchema,
  ListStreamsRequestSchema,
  ReadRequestSchema,
  StartPosition,
  StreamService,
  SubscribeRequestSchema,
  type SubscribeResponse,
} from '../../proto/gen/cairn/v1/cairn_pb.js';
import { fromServiceError } from '../src/api/grpc-errors.js';
import { callUnary, serviceDefinition } from '../src/api/grpc-service.js';
import { ApiServer } from '../src/api/server.js';
import type { CairnError } from '../src/errors.js';
import { defaultLimits } from '../src/limits.js';
import { realClock } from '../src/seams/clock.js';
import { InProcessCluster } from './support/inproc.js';
import { freePort } from './support/procs.js';

const require = createRequire(import.meta.url);
const kafkaBase = 'kafkajs/src/protocol';
const { RecordBatch } = require(`${kafkaBase}/recordBatch/v0/index.js`) as {
  RecordBatch(input: unknown): Promise<{ buffer: Buffer }>;
};
const KafkaRecord = require(`${kafkaBase}/recordBatch/record/v0/index.js`) as (r: unknown) => unknown;
const kafkaDecode = require(`${kafkaBase}/recordBatch/v0/decoder.js`) as (d: unknown) => Promise<{
  records: { offset: string; value: Buffer | null; key: Buffer | null }[];
}>;
const KafkaDecoder = require(`${kafkaBase}/decoder.js`) as new (b: Buffer) => unknown;

const enc = new TextEncoder();
const dec = new TextDecoder();

async function expectCode(p: Promise<unknown>, code: string): Promise<CairnError> {
  try {
    await p;
  } catch (err) {
    const e = fromServiceError(err as grpc.ServiceError);
    assert.is(e.code, code, e.message);
    return e;
  }
  throw new Error(`expected ${code}`);
}

test('the API over gRPC: admin, append (records and a kafkajs batch), read, subscribe, typed errors', async () => {
  const port = await freePort();
  const api = `127.0.0.1:${port}`;
  const c = new InProcessCluster(1);
  let server: ApiServer | undefined;
  const client = new grpc.Client(api, grpc.credentials.createInsecure());
  try {
    const node = await c.start(1, [
      '--api-address',
      api,
      '--members',
      `1=${api}/127.0.0.1:7101`,
      '--max-batch-bytes',
      '65536',
      '--max-record-bytes',
      '32768',
    ]);
    await c.leaderOf(0);
    server = await ApiServer.listen({
      node,
      clock: realClock(),
      limits: { ...defaultLimits, maxBatchBytes: 65536 },
      listenAddress: api,
    });
    const read = (init: MessageInitShape<typeof ReadRequestSchema>) =>
      callUnary(client, StreamService, 'read', create(ReadRequestSchema, init));

    const info = await callUnary(
      client,
      AdminService,
      'createStream',
      create(CreateStreamRequestSchema, { name: 'api', config: { partitions: 2 } }),
    );
    assert.is(info.partitions.length, 2);
    assert.is(info.config!.replicationFactor, 1);
    const listed = await callUnary(client, AdminService, 'listStreams', create(ListStreamsRequestSchema));
    assert.equal(
      listed.streams.map((s) => s.name),
      ['api'],
    );
    const meta = await callUnary(client, AdminService, 'getMetadata', create(GetMetadataRequestSchema));
    assert.is(meta.metadataLeader, 1);
    assert.is(meta.nodes[0]!.apiAddress, api);

    const append = (init: MessageInitShape<typeof AppendRequestSchema>) =>
      callUnary(client, StreamService, 'append', create(AppendRequestSchema, init));
    const r1 = await append({
      stream: 'api',
      target: { case: 'partition', value: 0 },
      payload: {
        case: 'records',
        value: {
          records: [
            {
              key: enc.encode('k'),
              value: enc.encode('one'),
              headers: [{ key: 'h', value: enc.encode('v') }],
              timestampMs: 1234n,
            },
          ],
        },
      },
    });
    // A batch built by kafkajs, an independent implementation of the format.
    const kbatch = (
      await RecordBatch({
        firstOffset: '0',
        firstTimestamp: 5000,
        maxTimestamp: 5001,
        lastOffsetDelta: 1,
        records: [
          KafkaRecord({ offsetDelta: 0, timestampDelta: 0, key: null, value: Buffer.from('two') }),
          KafkaRecord({ offsetDelta: 1, timestampDelta: 1, key: null, value: Buffer.from('three') }),
        ],
      })
    ).buffer;
    const r2 = await append({
      stream: 'api',
      target: { case: 'partition', value: 0 },
      payload: { case: 'batch', value: kbatch },
    });
    assert.is(r2.baseOffset, r1.lastOffset + 1n);
    assert.is(r2.lastOffset, r2.baseOffset + 1n);

    const all = await read({ stream: 'api', partition: 0, offset: 0n, decode: true });
    assert.equal(
      all.records.map((r) => dec.decode(r.value!)),
      ['one', 'two', 'three'],
    );
    assert.is(all.records[0]!.timestampMs, 1234n);
    assert.is(all.records[0]!.headers[0]!.key, 'h');
    assert.is(all.nextOffset, all.highWatermark);
    // kafkajs decodes what we serve: the stored bytes, offsets stamped.
    const dv = new DataView(all.batches.buffer, all.batches.byteOffset, all.batches.length);
    const kvalues: string[] = [];
    for (let pos = 0; pos < all.batches.length; ) {
      const len = 12 + dv.getInt32(pos + 8);
      const b = Buffer.from(all.batches.subarray(pos, pos + len));
      for (const r of (await kafkaDecode(new KafkaDecoder(b))).records)
        kvalues.push(`${r.offset}:${r.value}`);
      pos += len;
    }
    assert.equal(kvalues, [`${r1.baseOffset}:one`, `${r2.baseOffset}:two`, `${r2.lastOffset}:three`]);

    // Subscribe: what is there, then what commits later; flow-controlled by the reader.
    const sub = client.makeServerStreamRequest(
      '/cairn.v1.StreamService/Subscribe',
      serviceDefinition(StreamService).subscribe!.requestSerialize,
      serviceDefinition(StreamService).subscribe!.responseDeserialize,
      create(SubscribeRequestSchema, {
        stream: 'api',
        partition: 0,
        from: { case: 'position', value: StartPosition.EARLIEST },
        decode: true,
      }),
    );
    const seen: string[] = [];
    const got4 = new Promise<void>((resolve, reject) => {
      sub.on('data', (m: SubscribeResponse) => {
        for (const r of m.records) seen.push(dec.decode(r.value!));
        if (seen.length >= 4) resolve();
      });
      sub.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
    });
    await append({
      stream: 'api',
      target: { case: 'partition', value: 0 },
      payload: { case: 'records', value: { records: [{ value: enc.encode('four') }] } },
    });
    await got4;
    sub.cancel();
    assert.equal(seen, ['one', 'two', 'three', 'four']);

    // Typed errors, carried in the trailer, and nothing changes.
    const hw = all.highWatermark + 1n;
    await expectCode(
      append({
        stream: 'nope',
        target: { case: 'partition', value: 0 },
        payload: { case: 'records', value: { records: [{ value: enc.encode('x') }] } },
      }),
      'STREAM_NOT_FOUND',
    );
    await expectCode(append({ stream: 'api', target: { case: 'partition', value: 0 } }), 'INVALID_REQUEST');
    await expectCode(
      append({
        stream: 'api',
        payload: { case: 'records', value: { records: [{ value: enc.encode('x') }] } },
      }),
      'INVALID_REQUEST',
    );
    const flipped = Buffer.from(kbatch);
    flipped[flipped.length - 1]! ^= 0xff;
    await expectCode(
      append({
        stream: 'api',
        target: { case: 'partition', value: 0 },
        payload: { case: 'batch', value: flipped },
      }),
      'CORRUPT_BATCH',
    );
    const big = await expectCode(
      append({
        stream: 'api',
        target: { case: 'partition', value: 0 },
        payload: { case: 'records', value: { records: [{ value: new Uint8Array(70_000) }] } },
      }),
      'RECORD_TOO_LARGE',
    );
    assert.ok(big.facts.limit! > 0);
    const mismatch = await expectCode(
      append({
        stream: 'api',
        target: { case: 'partition', value: 0 },
        payload: { case: 'records', value: { records: [{ value: enc.encode('x') }] } },
        expectedOffset: 1n,
      }),
      'EXPECTED_OFFSET_MISMATCH',
    );
    assert.is(mismatch.facts.actualOffset, Number(hw));
    const range = await expectCode(
      read({ stream: 'api', partition: 0, offset: 1000n }),
      'OFFSET_OUT_OF_RANGE',
    );
    assert.equal([range.facts.logStartOffset, range.facts.highWatermark], [0, Number(hw)]);
    await expectCode(read({ stream: 'api', partition: 9, offset: 0n }), 'INVALID_REQUEST');
    await expectCode(
      callUnary(client, AdminService, 'createStream', create(CreateStreamRequestSchema, { name: 'api' })),
      'STREAM_EXISTS',
    );
    await expectCode(
      callUnary(
        client,
        AdminService,
        'describeStream',
        create(DescribeStreamRequestSchema, { name: 'gone' }),
      ),
      'STREAM_NOT_FOUND',
    );
    const producer = await callUnary(
      client,
      StreamService,
      'initProducer',
      create(InitProducerRequestSchema),
    );
    const idem = {
      stream: 'api',
      target: { case: 'partition' as const, value: 1 },
      payload: { case: 'records' as const, value: { records: [{ value: enc.encode('p') }] } },
      producer: { producerId: producer.producerId, producerEpoch: 0, baseSequence: 0 },
    };
    const first = await append(idem);
    const dup = await expectCode(append(idem), 'DUPLICATE_SEQUENCE');
    assert.is(dup.facts.baseOffset, Number(first.baseOffset));
    const after = await read({ stream: 'api', partition: 0, offset: 0n });
    assert.is(after.highWatermark, hw, 'refused appends changed nothing');
  } finally {
    client.close();
    await server?.close();
    await c.stopAll();
  }
});

test.run();
