// The bad-input matrix: every ErrorCode a client can provoke, provoked through the public
// API of a real 3-node cluster — by the client library where it can send the bad input,
// by raw gRPC calls where the client would refuse to send it. Each case checks the gRPC
// status, the typed code and the detail facts, and then that every node is still up and
// the cluster still serves appends and reads.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import { callUnary } from '../../node/src/api/grpc-service.js';
import {
  AppendRequestSchema,
  InitProducerRequestSchema,
  ReadRequestSchema,
  StreamService,
} from '../../proto/gen/cairn/v1/cairn_pb.js';
import { errorFromGrpc } from '../src/errors.js';
import { type CairnClient, CairnClientError } from '../src/index.js';
import { clientFor, leaderOf, ProcessCluster, readAll, text } from './support/cluster.js';

const c = new ProcessCluster([1, 2, 3]);
const core = createCore();
const enc = new TextEncoder();
let client: CairnClient;
const raws = new Map<string, grpc.Client>();
let healthyRounds = 0;

test.before(async () => {
  await c.startAll();
  client = clientFor(c, { retryTimeoutMs: 5_000 });
  await client.createStream('m', { partitions: 1 });
  await client.append(
    'm',
    ['one', 'two', 'three'].map((value) => ({ value })),
    { partition: 0 },
  );
});

test.after(async () => {
  for (const r of raws.values()) r.close();
  await client?.close();
  await c.stopAll();
});

function rawClient(address: string): grpc.Client {
  let r = raws.get(address);
  if (r === undefined) raws.set(address, (r = new grpc.Client(address, grpc.credentials.createInsecure())));
  return r;
}

/** A raw Append to one node, bypassing the client library; fails with a CairnClientError. */
async function rawAppend(address: string, init: MessageInitShape<typeof AppendRequestSchema>) {
  try {
    return await callUnary(rawClient(address), StreamService, 'append', create(AppendRequestSchema, init), {
      deadline: Date.now() + 15_000,
    });
  } catch (err) {
    throw errorFromGrpc(err, address);
  }
}

async function rawRead(address: string, init: MessageInitShape<typeof ReadRequestSchema>) {
  try {
    return await callUnary(rawClient(address), StreamService, 'read', create(ReadRequestSchema, init), {
      deadline: Date.now() + 15_000,
    });
  } catch (err) {
    throw errorFromGrpc(err, address);
  }
}

/** Expects `p` to fail with `code` (and, when given, that gRPC status); returns the error. */
async function expectCode(
  p: Promise<unknown>,
  code: string,
  status?: grpc.status,
): Promise<CairnClientError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof CairnClientError)) throw err;
    assert.is(err.code, code, err.message);
    if (status !== undefined) {
      assert.is(err.grpcCode, status, `gRPC status of ${code}`);
      assert.ok(err.fromServer, `${code} carried an ErrorDetail trailer`);
    }
    return err;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

/** Every node is still running and the cluster still appends and reads. */
async function healthy(): Promise<void> {
  for (const [id, p] of c.procs) assert.ok(p.exitCode === null && p.signalCode === null, `node ${id} died`);
  const value = `healthy-${healthyRounds++}`;
  const pos = await client.append('m', { value }, { partition: 0 });
  const r = await client.read('m', 0, { offset: pos.offset });
  assert.is(text(r.records[0]!.value), value);
}

const records = (...values: string[]) => ({
  case: 'records' as const,
  value: { records: values.map((v) => ({ value: enc.encode(v) })) },
});
const part0 = { case: 'partition' as const, value: 0 };

test('NOT_LEADER: a follower refuses an append and names the leader (id and API address)', async () => {
  const leader = await leaderOf(c, 'm');
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const e = await expectCode(
    rawAppend(c.api(follower), { stream: 'm', target: part0, payload: records('x') }),
    'NOT_LEADER',
    grpc.status.FAILED_PRECONDITION,
  );
  assert.is(e.facts.leaderId, leader);
  assert.is(e.facts.leaderAddress, c.api(leader));
  await healthy();
});

test('STREAM_NOT_FOUND: append, read, describe and delete of a stream that does not exist', async () => {
  await expectCode(
    rawAppend(c.api(1), { stream: 'nope', target: part0, payload: records('x') }),
    'STREAM_NOT_FOUND',
    grpc.status.NOT_FOUND,
  );
  await expectCode(
    client.append('nope', { value: 'x' }, { partition: 0 }),
    'STREAM_NOT_FOUND',
    grpc.status.NOT_FOUND,
  );
  await expectCode(client.read('nope', 0, { offset: 0 }), 'STREAM_NOT_FOUND', grpc.status.NOT_FOUND);
  await expectCode(client.describeStream('nope'), 'STREAM_NOT_FOUND', grpc.status.NOT_FOUND);
  await expectCode(client.deleteStream('nope'), 'STREAM_NOT_FOUND', grpc.status.NOT_FOUND);
  // Routing by key needs the partition count: the client itself says the stream is unknown.
  await expectCode(client.append('nope', { key: 'k', value: 'x' }), 'STREAM_NOT_FOUND');
  await healthy();
});

test('OFFSET_OUT_OF_RANGE: a read or subscription past the end carries the valid range', async () => {
  const { highWatermark } = await client.offsets('m', 0);
  const e = await expectCode(
    client.read('m', 0, { offset: highWatermark + 5 }),
    'OFFSET_OUT_OF_RANGE',
    grpc.status.OUT_OF_RANGE,
  );
  assert.is(e.facts.logStartOffset, 0);
  assert.is(e.facts.highWatermark, highWatermark);
  const sub = client.subscribe('m', { from: highWatermark + 5 });
  const s = await expectCode(sub.next(), 'OFFSET_OUT_OF_RANGE', grpc.status.OUT_OF_RANGE);
  assert.is(s.facts.highWatermark, highWatermark);
  // Reading exactly at the end is not an error: nothing yet.
  const atEnd = await client.read('m', 0, { offset: highWatermark });
  assert.equal(atEnd.records, []);
  await healthy();
});

test('EXPECTED_OFFSET_MISMATCH: a conditional append at a stale offset carries the actual next offset', async () => {
  const { highWatermark } = await client.offsets('m', 0);
  const e = await expectCode(
    client.append('m', { value: 'stale' }, { partition: 0, expectedOffset: 1 }),
    'EXPECTED_OFFSET_MISMATCH',
    grpc.status.ABORTED,
  );
  assert.is(e.facts.actualOffset, highWatermark);
  assert.not.ok(
    (await readAll(client, 'm', 0)).some((r) => text(r.value) === 'stale'),
    'nothing was appended',
  );
  await healthy();
});

test('DUPLICATE_SEQUENCE, OUT_OF_ORDER_SEQUENCE, PRODUCER_FENCED: producer identities checked by the partition', async () => {
  const leader = c.api(await leaderOf(c, 'm'));
  // Producer ids come from the metadata leader; the harness follows the redirect.
  const init = await c.routed((cl, d) =>
    callUnary(cl, StreamService, 'initProducer', create(InitProducerRequestSchema), { deadline: d }),
  );
  const producer = (epoch: number, seq: number) => ({
    producerId: init.producerId,
    producerEpoch: epoch,
    baseSequence: seq,
  });
  const first = await rawAppend(leader, {
    stream: 'm',
    target: part0,
    payload: records('p0', 'p1'),
    producer: producer(0, 0),
  });
  // The same identity again: not appended twice; the original offsets come back.
  const dup = await expectCode(
    rawAppend(leader, { stream: 'm', target: part0, payload: records('p0', 'p1'), producer: producer(0, 0) }),
    'DUPLICATE_SEQUENCE',
    grpc.status.ALREADY_EXISTS,
  );
  assert.is(dup.facts.baseOffset, Number(first.baseOffset));
  assert.is(dup.facts.lastOffset, Number(first.lastOffset));
  // A gap in the sequence (2 expected).
  await expectCode(
    rawAppend(leader, { stream: 'm', target: part0, payload: records('gap'), producer: producer(0, 7) }),
    'OUT_OF_ORDER_SEQUENCE',
    grpc.status.FAILED_PRECONDITION,
  );
  // A newer epoch fences the older one.
  await rawAppend(leader, { stream: 'm', target: part0, payload: records('e1'), producer: producer(1, 0) });
  await expectCode(
    rawAppend(leader, { stream: 'm', target: part0, payload: records('old'), producer: producer(0, 2) }),
    'PRODUCER_FENCED',
    grpc.status.FAILED_PRECONDITION,
  );
  const values = (await readAll(client, 'm', 0)).map((r) => text(r.value));
  assert.is(values.filter((v) => v === 'p0').length, 1);
  assert.not.ok(values.includes('gap') || values.includes('old'));
  await healthy();
});

test('RECORD_TOO_LARGE: a record, a batch and a request beyond their limits (the limit in the facts)', async () => {
  const mib = 1024 * 1024;
  // A record over maxRecordBytes (1 MiB), sent as structured records.
  const leader = c.api(await leaderOf(c, 'm'));
  const rec = await expectCode(
    rawAppend(leader, {
      stream: 'm',
      target: part0,
      payload: { case: 'records', value: { records: [{ value: new Uint8Array(mib + 1) }] } },
    }),
    'RECORD_TOO_LARGE',
    grpc.status.INVALID_ARGUMENT,
  );
  assert.is(rec.facts.limit, mib);
  // The same record inside a pre-built batch that is within maxBatchBytes.
  const inBatch = await expectCode(
    rawAppend(leader, {
      stream: 'm',
      target: part0,
      payload: {
        case: 'batch',
        value: core.encodeBatch([{ value: enc.encode('small') }, { value: new Uint8Array(mib + 1) }], {
          baseTimestamp: Date.now(),
        }),
      },
    }),
    'RECORD_TOO_LARGE',
    grpc.status.INVALID_ARGUMENT,
  );
  assert.is(inBatch.facts.limit, mib);
  // The client refuses such a record itself, before it can fail the batch it would share.
  const local = await expectCode(
    client.append('m', { value: new Uint8Array(mib + 1) }, { partition: 0 }),
    'RECORD_TOO_LARGE',
  );
  assert.is(local.facts.limit, mib);
  // A batch over maxBatchBytes (4 MiB), built by a client told to allow larger records.
  const lax = clientFor(c, { retryTimeoutMs: 5_000, maxRecordBytes: 64 * mib });
  const batch = await expectCode(
    lax.append('m', { value: new Uint8Array(5 * mib) }, { partition: 0 }),
    'RECORD_TOO_LARGE',
    grpc.status.INVALID_ARGUMENT,
  );
  assert.is(batch.facts.limit, 4 * mib);
  // A request over maxRequestBytes (8 MiB): gRPC itself refuses it, before Cairn sees it.
  const req = await expectCode(
    lax.append('m', { value: new Uint8Array(9 * mib) }, { partition: 0 }),
    'RECORD_TOO_LARGE',
  );
  assert.is(req.grpcCode, grpc.status.RESOURCE_EXHAUSTED);
  await lax.close();
  await healthy();
});

test('CORRUPT_BATCH: a bad CRC, a cut batch, two batches, garbage and a lying record count', async () => {
  const leader = c.api(await leaderOf(c, 'm'));
  const good = core.encodeBatch([{ value: enc.encode('a') }, { value: enc.encode('b') }], {
    baseTimestamp: Date.now(),
  });
  const flipped = good.slice();
  flipped[flipped.length - 1]! ^= 0x01; // inside the CRC-covered records
  const lying = good.slice();
  new DataView(lying.buffer).setInt32(57, 3); // recordCount 3, but 2 records (the CRC now fails too)
  const twice = new Uint8Array(good.length * 2);
  twice.set(good, 0);
  twice.set(good, good.length);
  const garbage = new Uint8Array(200).map((_, i) => (i * 131 + 7) & 0xff);
  // LZ4 records that do not decompress, under a CRC the client computed over them: only
  // checking the records finds it (stored, it would fail every reader of the partition).
  const badLz4 = core.encodeBatch([{ value: enc.encode('a'.repeat(500)) }], {
    baseTimestamp: Date.now(),
    compression: 'lz4',
  });
  badLz4[61]! ^= 0x7f; // the LZ4 frame's magic
  new DataView(badLz4.buffer).setUint32(17, core.crc32c(badLz4.subarray(21)) >>> 0);
  for (const [what, bytes] of [
    ['bad CRC', flipped],
    ['cut short', good.subarray(0, good.length - 3)],
    ['two batches', twice],
    ['garbage', garbage],
    ['record count', lying],
    ['shorter than a header', good.subarray(0, 40)],
    ['LZ4 records that do not decompress', badLz4],
  ] as const) {
    const e = await expectCode(
      rawAppend(leader, { stream: 'm', target: part0, payload: { case: 'batch', value: bytes } }),
      'CORRUPT_BATCH',
      grpc.status.INVALID_ARGUMENT,
    );
    assert.ok(e.message.length > 0, what);
  }
  await healthy();
});

test('INVALID_REQUEST: bad names, partitions, missing fields, control batches, bad settings, unknown nodes', async () => {
  const leader = c.api(await leaderOf(c, 'm'));
  const INVALID = grpc.status.INVALID_ARGUMENT;
  await expectCode(client.createStream('bad name!'), 'INVALID_REQUEST', INVALID);
  await expectCode(client.createStream('x'.repeat(300)), 'INVALID_REQUEST', INVALID);
  await expectCode(
    client.createStream('too-many-replicas', { replicationFactor: 5 }),
    'INVALID_REQUEST',
    INVALID,
  );
  await expectCode(client.append('m', { value: 'x' }, { partition: 99 }), 'INVALID_REQUEST', INVALID);
  await expectCode(client.read('m', 99, { offset: 0 }), 'INVALID_REQUEST', INVALID);
  await expectCode(rawAppend(leader, { stream: 'm', payload: records('x') }), 'INVALID_REQUEST', INVALID);
  await expectCode(rawAppend(leader, { stream: 'm', target: part0 }), 'INVALID_REQUEST', INVALID);
  await expectCode(
    rawAppend(leader, { stream: '', target: part0, payload: records('x') }),
    'INVALID_REQUEST',
    INVALID,
  );
  await expectCode(
    rawAppend(leader, {
      stream: 'm',
      target: part0,
      payload: { case: 'batch', value: core.encodeBatch([{ value: enc.encode('x') }]) },
      producer: { producerId: 1n, producerEpoch: 0, baseSequence: 0 },
    }),
    'INVALID_REQUEST',
    INVALID,
  );
  await expectCode(
    rawAppend(leader, {
      stream: 'm',
      target: part0,
      payload: { case: 'batch', value: core.encodeBatch([{ value: enc.encode('x') }], { control: true }) },
    }),
    'INVALID_REQUEST',
    INVALID,
  );
  await expectCode(rawRead(leader, { stream: 'm', partition: 0, offset: -1n }), 'INVALID_REQUEST', INVALID);
  await expectCode(
    rawAppend(leader, { stream: 'm', target: part0, payload: records('x'), expectedOffset: -5n }),
    'INVALID_REQUEST',
    INVALID,
  );
  await expectCode(client.transferLeader('m', 0, 99), 'INVALID_REQUEST', INVALID);
  await expectCode(client.removeNode(99), 'INVALID_REQUEST', INVALID);
  await expectCode(
    client.addNode({ id: 0, apiAddress: 'nowhere', peerAddress: 'x' }),
    'INVALID_REQUEST',
    INVALID,
  );
  // Input the client refuses itself, before sending (no gRPC status).
  const local = await expectCode(client.append('m', { value: 'x' }, { partition: -1 }), 'INVALID_REQUEST');
  assert.is(local.grpcCode, undefined);
  await expectCode(
    client.append('m', { value: 42 as unknown as string }, { partition: 0 }),
    'INVALID_REQUEST',
  );
  await expectCode(client.read('m', 0, { offset: -1 }), 'INVALID_REQUEST');
  await healthy();
});

test('STREAM_EXISTS and LIMIT_EXCEEDED: creating a stream twice, or one with too many partitions', async () => {
  await expectCode(client.createStream('m'), 'STREAM_EXISTS', grpc.status.ALREADY_EXISTS);
  const e = await expectCode(
    client.createStream('huge', { partitions: 1_000 }),
    'LIMIT_EXCEEDED',
    grpc.status.RESOURCE_EXHAUSTED,
  );
  assert.is(e.facts.limit, 256);
  assert.not.ok((await client.listStreams()).some((s) => s.name === 'huge'));
  await healthy();
});

test('UNAVAILABLE and TIMEOUT: with a majority killed, appends fail typed; the survivor still serves reads; the cluster recovers', async () => {
  const leader = await leaderOf(c, 'm');
  const before = await readAll(client, 'm', 0);
  const others = [1, 2, 3].filter((id) => id !== leader);
  await Promise.all(others.map((id) => c.kill(id)));
  // The leader cannot commit any more. An append it takes now may still commit if a new
  // leader keeps it, so its outcome is unknown: TIMEOUT (gRPC DEADLINE_EXCEEDED). Once it
  // has stepped down (CheckQuorum), it names no leader.
  const unknown = await rawAppend(c.api(leader), {
    stream: 'm',
    target: part0,
    payload: records('limbo'),
  }).then(
    () => {
      throw new Error('an append committed without a majority');
    },
    (e: CairnClientError) => e,
  );
  if (unknown.code === 'TIMEOUT') assert.is(unknown.grpcCode, grpc.status.DEADLINE_EXCEEDED);
  else {
    assert.is(unknown.code, 'NOT_LEADER', unknown.message);
    assert.is(unknown.facts.leaderId, 0);
  }
  // Through the client, after its retries: UNAVAILABLE (no leader can be elected).
  const lonely = clientFor(c, { retryTimeoutMs: 2_000, deliveryTimeoutMs: 2_000 });
  try {
    const e = await expectCode(lonely.append('m', { value: 'nope' }, { partition: 0 }), 'UNAVAILABLE');
    assert.match(e.message, /no leader|not acknowledged/, e.message);
    await expectCode(lonely.createStream('during-outage'), 'UNAVAILABLE');
    // Committed data is still readable from the surviving replica.
    const r = await lonely.read('m', 0, { offset: before[0]!.offset, replica: 'any' });
    assert.equal(
      r.records.map((x) => text(x.value)),
      before.map((x) => text(x.value)),
    );
  } finally {
    await lonely.close();
  }
  assert.ok(c.procs.get(leader)!.exitCode === null, 'the survivor is still running');
  await Promise.all(others.map((id) => c.start(id)));
  await healthy();
  const after = (await readAll(client, 'm', 0)).map((x) => text(x.value));
  assert.equal(
    after.slice(0, before.length),
    before.map((x) => text(x.value)),
  );
  assert.not.ok(after.includes('nope'));
  // 'limbo' may or may not have committed (its outcome was unknown), but at most once.
  assert.ok(after.filter((v) => v === 'limbo').length <= 1);
});

test.run();
