// The client's pieces that need no cluster: options, the gRPC error mapping, the retry
// verdicts, batch decoding of what a Read returns (hostile input included), the snapshot
// stores, and a materialized view over a scripted log.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import { Rng } from '../../core-wasm/test/rng.js';
import { ErrorCode, ErrorDetailSchema } from '../../proto/gen/cairn/v1/cairn_pb.js';
import { decodeBatches } from '../src/batches.js';
import { CairnClient } from '../src/client.js';
import { CairnClientError, ERROR_DETAIL_KEY, errorFromGrpc } from '../src/errors.js';
import { materialize, type ViewContext } from '../src/materialize.js';
import { resolveOptions } from '../src/options.js';
import { verdictOf } from '../src/router.js';
import { FileSnapshotStore, MemorySnapshotStore } from '../src/snapshot-store.js';
import type { ConsumedRecord, ReadResult } from '../src/types.js';

const core = createCore();
const enc = new TextEncoder();
const dec = new TextDecoder();

test('options: servers from a list or a comma string; bad values are refused', () => {
  assert.equal(resolveOptions({ servers: 'a:1, b:2' }).servers, ['a:1', 'b:2']);
  assert.equal(resolveOptions({ servers: ['a:1', '[::1]:7001'] }).servers, ['a:1', '[::1]:7001']);
  assert.is(resolveOptions({ servers: 'a:1', lingerMs: 5 }).lingerMs, 5);
  for (const bad of [
    { servers: '' },
    { servers: 'nohost' },
    { servers: 'a:1', requestTimeoutMs: 0 },
    { servers: 'a:1', maxInFlightPerPartition: 1.5 },
    { servers: 'a:1', lingerMs: -1 },
    { servers: 'a:1', compression: 'zstd' as 'lz4' },
  ]) {
    assert.throws(() => resolveOptions(bad), TypeError, JSON.stringify(bad));
  }
});

function serviceError(code: grpc.status, details: string, trailer?: Uint8Array): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (trailer !== undefined) metadata.set(ERROR_DETAIL_KEY, Buffer.from(trailer));
  return Object.assign(new Error(details), { code, details, metadata });
}

test('errors: the ErrorDetail trailer gives code and facts; without a trailer the status decides', () => {
  const detail = create(ErrorDetailSchema, {
    code: ErrorCode.NOT_LEADER,
    message: 'not the leader',
    leaderId: 2,
    leaderAddress: '127.0.0.1:7002',
    logStartOffset: -1n,
    highWatermark: -1n,
    actualOffset: -1n,
    baseOffset: -1n,
    lastOffset: -1n,
  });
  const e = errorFromGrpc(
    serviceError(grpc.status.FAILED_PRECONDITION, 'x', toBinary(ErrorDetailSchema, detail)),
    'n1',
  );
  assert.is(e.code, 'NOT_LEADER');
  assert.is(e.facts.leaderId, 2);
  assert.is(e.facts.leaderAddress, '127.0.0.1:7002');
  assert.is(e.grpcCode, grpc.status.FAILED_PRECONDITION);
  assert.ok(e.fromServer);
  // A malformed trailer, or an unknown code in it: fall back to the status.
  const junk = errorFromGrpc(
    serviceError(grpc.status.UNAVAILABLE, 'down', new Uint8Array([0xff, 0xff])),
    'n1',
  );
  assert.is(junk.code, 'UNAVAILABLE');
  assert.not.ok(junk.fromServer);
  const unknownCode = toBinary(ErrorDetailSchema, create(ErrorDetailSchema, { code: 999 as ErrorCode }));
  assert.is(errorFromGrpc(serviceError(grpc.status.INTERNAL, 'x', unknownCode), 'n1').code, 'INTERNAL');
  const table: [grpc.status, string][] = [
    [grpc.status.UNAVAILABLE, 'UNAVAILABLE'],
    [grpc.status.CANCELLED, 'UNAVAILABLE'],
    [grpc.status.DEADLINE_EXCEEDED, 'TIMEOUT'],
    [grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST'],
    [grpc.status.RESOURCE_EXHAUSTED, 'RECORD_TOO_LARGE'],
    [grpc.status.UNIMPLEMENTED, 'INVALID_REQUEST'],
    [grpc.status.DATA_LOSS, 'INTERNAL'],
  ];
  for (const [status, code] of table) {
    const m = errorFromGrpc(serviceError(status, 'why'), 'n9:1');
    assert.is(m.code, code, grpc.status[status]);
    assert.match(m.message, /^n9:1: why/);
  }
  assert.is(errorFromGrpc(new Error('boom'), 'a').code, 'INTERNAL');
});

test('retry verdicts: refusals are repeated, unknown outcomes only when the call allows it', () => {
  const fromServer = (code: 'UNAVAILABLE' | 'TIMEOUT') =>
    new CairnClientError(code, 'x', {}, undefined, true);
  const transport = (message: string) => new CairnClientError('UNAVAILABLE', message);
  assert.is(verdictOf(new CairnClientError('NOT_LEADER', 'x'), false), 'redirect');
  assert.is(verdictOf(fromServer('UNAVAILABLE'), false), 'retry');
  assert.is(verdictOf(transport('a: No connection established. connect ECONNREFUSED'), false), 'retry');
  assert.is(verdictOf(transport('a: Connection dropped'), false), 'fail');
  assert.is(verdictOf(transport('a: Connection dropped'), true), 'retry');
  assert.is(verdictOf(fromServer('TIMEOUT'), false), 'fail');
  assert.is(verdictOf(fromServer('TIMEOUT'), true), 'retry');
  for (const code of ['STREAM_NOT_FOUND', 'EXPECTED_OFFSET_MISMATCH', 'CORRUPT_BATCH', 'INTERNAL'] as const)
    assert.is(verdictOf(new CairnClientError(code, 'x'), true), 'fail', code);
});

/** Batches back to back, as a Read returns them, with base offsets stamped. */
function log(batches: { values: string[]; control?: boolean; compression?: 'lz4' | 'gzip' }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const b of batches) {
    const bytes = core.encodeBatch(
      b.values.map((v) => ({ value: enc.encode(v) })),
      { compression: b.compression ?? 'none', control: b.control ?? false, baseTimestamp: 1 },
    );
    core.stampBatch(bytes, 0, offset, 1);
    offset += b.values.length;
    parts.push(bytes);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('decodeBatches: skips records below the offset and control batches, stops at maxRecords, says where to go on', () => {
  const buf = log([
    { values: ['a', 'b', 'c'] },
    { values: ['noop'], control: true },
    { values: ['d', 'e'], compression: 'lz4' },
    { values: ['f'], compression: 'gzip' },
  ]);
  const all = decodeBatches(core, buf, 3, 1);
  assert.equal(
    all.records.map((r) => [r.partition, r.offset, dec.decode(r.value!)]),
    [
      [3, 1, 'b'],
      [3, 2, 'c'],
      [3, 4, 'd'],
      [3, 5, 'e'],
      [3, 6, 'f'],
    ],
  );
  assert.is(all.endOffset, 7);
  assert.not.ok(all.truncated);
  const cut = decodeBatches(core, buf, 0, 2, 2);
  assert.equal(
    cut.records.map((r) => r.offset),
    [2, 4],
  );
  assert.ok(cut.truncated);
  assert.is(cut.endOffset, 5, 'continue at the first record not returned');
  assert.equal(decodeBatches(core, new Uint8Array(0), 0, 0), {
    records: [],
    endOffset: -1,
    truncated: false,
  });
});

test('decodeBatches: damaged bytes are CORRUPT_BATCH, never records (seeded bit flips and cuts)', () => {
  const buf = log([{ values: ['one', 'two'] }, { values: ['three', 'four', 'five'], compression: 'lz4' }]);
  const rng = new Rng(4242);
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    const bad = buf.slice();
    if (i % 3 === 0) {
      const cut = rng.int(buf.length - 1) + 1;
      try {
        decodeBatches(core, bad.subarray(0, cut), 0, 0);
        assert.unreachable(`a cut at ${cut} decoded`);
      } catch (err) {
        assert.instance(err, CairnClientError);
        assert.is((err as CairnClientError).code, 'CORRUPT_BATCH');
        refused++;
      }
      continue;
    }
    // Flip a bit anywhere except in baseOffset (bytes 0-7 of a batch) and the leader epoch
    // (12-15): the leader stamps those after the CRC is computed, so the CRC leaves them out.
    let at = rng.int(buf.length);
    const second = 12 + new DataView(buf.buffer).getInt32(8);
    for (const start of [0, second]) {
      if (at >= start && at < start + 8) at = start + 8;
      if (at >= start + 12 && at < start + 16) at = start + 16;
    }
    bad[at]! ^= 1 << rng.int(8);
    try {
      const r = decodeBatches(core, bad, 0, 0);
      // A flip that still decodes must have hit bytes the CRC does not cover: none here.
      assert.unreachable(`a flip at ${at} decoded ${r.records.length} records`);
    } catch (err) {
      assert.instance(err, CairnClientError);
      assert.is((err as CairnClientError).code, 'CORRUPT_BATCH');
      refused++;
    }
  }
  assert.is(refused, 300);
});

test('snapshot stores: the file store replaces atomically, ignores temp files, keeps keys apart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-snap-'));
  try {
    const s = new FileSnapshotStore(dir);
    assert.is(await s.load('a/0'), undefined);
    await s.save('a/0', enc.encode('first'));
    await s.save('a/0', enc.encode('second'));
    await s.save('b/0', enc.encode('other'));
    assert.is(dec.decode((await s.load('a/0'))!), 'second');
    assert.is(dec.decode((await s.load('b/0'))!), 'other');
    // A crash between writing the temp file and renaming it leaves the old snapshot.
    writeFileSync(`${s.path('a/0')}.tmp-1-0`, 'half written');
    assert.is(dec.decode((await s.load('a/0'))!), 'second');
    assert.is(readdirSync(dir).filter((f) => f.endsWith('.snapshot')).length, 2);
    const m = new MemorySnapshotStore();
    const bytes = enc.encode('x');
    await m.save('k', bytes);
    bytes[0] = 0; // the store keeps its own copy
    assert.is(dec.decode((await m.load('k'))!), 'x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A scripted partition for a view: records at offsets 0.. with no-ops where asked. */
function scriptedContext(values: (string | null)[]) {
  const calls: number[] = [];
  let failNext = 0;
  const ctx: ViewContext = {
    closing: new AbortController().signal,
    backoffMs: () => 1,
    offsets: async () => ({ logStartOffset: 0, highWatermark: values.length }),
    read: async (partition, o, signal): Promise<ReadResult> => {
      calls.push(o.offset);
      if (failNext > 0) {
        failNext--;
        throw new CairnClientError('UNAVAILABLE', 'node down');
      }
      if (o.offset >= values.length) {
        await new Promise((r) => setTimeout(r, Math.min(o.maxWaitMs ?? 0, 20)));
        if (signal.aborted) throw new CairnClientError('UNAVAILABLE', 'aborted');
        return { records: [], nextOffset: o.offset, highWatermark: values.length, logStartOffset: 0 };
      }
      // Two offsets per read at most; a null is a control batch (no record, offset used).
      const records: ConsumedRecord[] = [];
      let next = o.offset;
      for (; next < Math.min(values.length, o.offset + 2); next++) {
        const v = values[next];
        if (v !== null && v !== undefined)
          records.push({
            partition,
            offset: next,
            timestamp: 0,
            key: null,
            value: enc.encode(v),
            headers: [],
          });
      }
      return { records, nextOffset: next, highWatermark: values.length, logStartOffset: 0 };
    },
  };
  return { ctx, calls, values, failOnce: (n: number) => (failNext = n) };
}

test('materialize: folds records in order past control batches, retries transient failures, snapshots and resumes', async () => {
  const script = scriptedContext(['a', null, 'b', 'c', null, null, 'd']);
  const warnings: string[] = [];
  const store = new MemorySnapshotStore();
  script.failOnce(2);
  const concat = (s: string, r: ConsumedRecord) => s + dec.decode(r.value!);
  const v = materialize(script.ctx, 's', concat, {
    initial: () => '',
    snapshotStore: store,
    snapshotEvery: 2,
    onWarning: (e) => warnings.push(e.message),
    maxWaitMs: 5,
  });
  await v.waitFor(2);
  assert.ok(v.state.startsWith('ab'));
  await v.catchUp(); // up to offset 7, past the trailing control batches
  assert.is(v.state, 'abcd');
  assert.is(v.offset, 7);
  assert.is(
    warnings.filter((w) => w === 'node down').length,
    2,
    'transient failures are retried and reported',
  );
  await v.close();
  // A new view resumes from the snapshot: it never reads below it.
  script.calls.length = 0;
  const again = materialize(script.ctx, 's', concat, {
    initial: () => '',
    snapshotStore: store,
    maxWaitMs: 5,
  });
  await again.ready;
  assert.is(again.state, 'abcd');
  assert.is(again.offset, 7);
  await again.waitFor(6);
  assert.ok(
    script.calls.every((o) => o >= 7),
    `reads from ${script.calls}`,
  );
  // waitFor an offset never reached times out, typed.
  const late = await again.waitFor(100, 50).catch((e: CairnClientError) => e);
  assert.instance(late, CairnClientError);
  assert.is((late as CairnClientError).code, 'TIMEOUT');
  await again.close();
  await again.close(); // closing twice is harmless
  // A snapshot of another stream is refused (rebuilt), not applied.
  const other = materialize(script.ctx, 'other', concat, {
    initial: () => '',
    snapshotStore: store,
    snapshotKey: 's/0',
    onWarning: (e) => warnings.push(e.message),
    maxWaitMs: 5,
  });
  await other.catchUp();
  assert.is(other.state, 'abcd');
  assert.ok(warnings.some((w) => /it is of s\/0/.test(w)));
  await other.close();
});

test('close() ends calls that are retrying at once, with a typed error, not after retryTimeoutMs', async () => {
  // Nothing listens on the port: every attempt is refused and the call would retry for 20 s.
  const server = await new Promise<Server>((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  const client = new CairnClient({ servers: `127.0.0.1:${port}`, retryTimeoutMs: 20_000, core });
  const started = Date.now();
  const pending = [
    client.read('s', 0, { offset: 0 }),
    client.read('s', 0, { offset: 0, linearizable: true }),
    client.describeStream('s'),
  ].map((p) =>
    p.then(
      () => assert.unreachable('no server answered'),
      (e: unknown) => e,
    ),
  );
  await new Promise((r) => setTimeout(r, 300));
  await client.close();
  const errors = await Promise.all(pending);
  const took = Date.now() - started;
  for (const e of errors) {
    assert.instance(e, CairnClientError);
    assert.is((e as CairnClientError).code, 'UNAVAILABLE');
  }
  assert.ok(took < 5_000, `the calls ended ${took} ms after they began, long after close()`);
});

test.run();
