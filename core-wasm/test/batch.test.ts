// Record batch v2: cross-checked byte for byte with kafkajs's own encoder and decoder
// (an independent implementation of Kafka's format), then validation, stamping and the
// errors for malformed batches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BATCH_HEADER_BYTES,
  type CompressionName,
  type Core,
  CoreError,
  coreLimits,
  createCore,
  type RecordInput,
} from '../src/index.js';
import { type KafkaDecodedRecord, kafka } from './kafkajs.js';
import { Rng } from './rng.js';

const core = createCore();
const debugCore = createCore({ wasm: 'debug' });
const enc = new TextEncoder();

interface Sample {
  records: RecordInput[];
  baseOffset: number;
  epoch: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

/** Random records; header keys are unique per record (kafkajs keeps headers in an object). */
function sample(rng: Rng, maxRecords = 40): Sample {
  const n = 1 + rng.int(maxRecords);
  const base = 1_600_000_000_000 + rng.int(1e9);
  const records: RecordInput[] = [];
  for (let i = 0; i < n; i++) {
    const headers = Array.from({ length: rng.int(4) }, (_, h) => ({
      key: `h-${h}-${rng.int(1000)}é`,
      value: rng.bytes(rng.int(20)),
    }));
    records.push({
      key: rng.int(4) === 0 ? null : rng.bytes(rng.int(40)),
      value: rng.int(8) === 0 ? null : rng.bytes(rng.int(rng.int(10) === 0 ? 5000 : 300)),
      headers,
      timestamp: base + rng.int(100_000),
    });
  }
  return {
    records,
    baseOffset: rng.int(2) ? 0 : rng.int(2 ** 40),
    epoch: rng.int(1000),
    producerId: rng.int(2) ? -1 : rng.int(2 ** 40),
    producerEpoch: rng.int(100),
    baseSequence: rng.int(1 << 30),
  };
}

async function kafkaEncode(s: Sample, compression: number): Promise<Buffer> {
  const stamps = s.records.map((r) => r.timestamp!);
  const first = Math.min(...stamps);
  return kafka.encode({
    compression,
    firstOffset: kafka.long(s.baseOffset),
    firstTimestamp: first,
    maxTimestamp: Math.max(...stamps),
    partitionLeaderEpoch: s.epoch,
    lastOffsetDelta: s.records.length - 1,
    producerId: kafka.long(s.producerId),
    producerEpoch: s.producerEpoch,
    firstSequence: s.baseSequence,
    records: s.records.map((r, i) =>
      kafka.record({
        offsetDelta: i,
        timestampDelta: r.timestamp! - first,
        key: r.key ? Buffer.from(r.key) : null,
        value: r.value ? Buffer.from(r.value) : null,
        headers: Object.fromEntries((r.headers ?? []).map((h) => [h.key, Buffer.from(h.value!)])),
      }),
    ),
  });
}

function ourEncode(c: Core, s: Sample, compression: CompressionName): Uint8Array {
  return c.encodeBatch(s.records, {
    baseOffset: s.baseOffset,
    partitionLeaderEpoch: s.epoch,
    producerId: s.producerId,
    producerEpoch: s.producerEpoch,
    baseSequence: s.baseSequence,
    compression,
  });
}

const bytesEq = (a: Uint8Array | null, b: Uint8Array | null, what: string) => {
  if (a === null || b === null) assert.is(a, b, what);
  else assert.equal(Buffer.compare(Buffer.from(a), Buffer.from(b)), 0, what);
};

function assertSameRecords(s: Sample, got: KafkaDecodedRecord[]): void {
  assert.is(got.length, s.records.length);
  s.records.forEach((r, i) => {
    const k = got[i]!;
    assert.is(Number(k.offset), s.baseOffset + i);
    assert.is(Number(k.timestamp), r.timestamp);
    bytesEq(k.key, r.key ?? null, 'key');
    bytesEq(k.value, r.value, 'value');
    const headers = r.headers ?? [];
    assert.equal(
      Object.keys(k.headers),
      headers.map((h) => h.key),
    );
    for (const h of headers) bytesEq(k.headers[h.key] as Buffer, h.value, `header ${h.key}`);
  });
}

for (const [name, compression, codec] of [
  ['uncompressed', 'none', 0],
  ['gzip', 'gzip', 1],
] as const) {
  test(`${name}: our batches equal kafkajs's byte for byte, and each decodes the other's`, async () => {
    const rng = new Rng(codec + 10);
    for (let i = 0; i < 60; i++) {
      const s = sample(rng);
      const theirs = await kafkaEncode(s, codec);
      const ours = ourEncode(core, s, compression);
      bytesEq(ours, theirs, `batch ${i}`);
      // kafkajs decodes ours…
      const k = await kafka.decode(ours);
      assert.is(Number(k.firstOffset), s.baseOffset);
      assert.is(k.partitionLeaderEpoch, s.epoch);
      assert.is(Number(k.producerId), s.producerId);
      assert.is(k.producerEpoch, s.producerEpoch);
      assert.is(k.firstSequence, s.baseSequence);
      assertSameRecords(s, k.records);
      // …and we decode theirs.
      const decoded = core.decodeRecords(theirs);
      assertSameRecords(
        s,
        decoded.map((r) => ({
          offset: String(r.offset),
          timestamp: String(r.timestamp),
          key: r.key ? Buffer.from(r.key) : null,
          value: r.value ? Buffer.from(r.value) : null,
          headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value ? Buffer.from(h.value) : null])),
        })),
      );
      // checkRecords measures kafkajs's batch: the largest key + value + encoded headers.
      const check = core.checkRecords(theirs);
      assert.is(check.recordCount, s.records.length);
      const payload = (r: RecordInput) =>
        (r.key?.length ?? 0) +
        (r.value?.length ?? 0) +
        (r.headers ?? []).reduce((n, h) => n + enc.encode(h.key).length + (h.value?.length ?? 0), 0);
      const varintSlack = (r: RecordInput) => 5 * (1 + 2 * (r.headers?.length ?? 0));
      const largest = Math.max(...s.records.map(payload));
      assert.ok(check.maxRecordBytes >= largest, `maxRecordBytes ${check.maxRecordBytes} < ${largest}`);
      assert.ok(check.maxRecordBytes <= Math.max(...s.records.map((r) => payload(r) + varintSlack(r))));
      const scan = core.scanBatches(theirs);
      assert.is(scan.error, null);
      assert.is(scan.validBytes, theirs.length);
      assert.is(scan.recordCount, s.records.length);
      assert.is(scan.firstOffset, s.baseOffset);
      assert.is(scan.lastOffset, s.baseOffset + s.records.length - 1);
      assert.is(scan.maxTimestamp, Math.max(...s.records.map((r) => r.timestamp!)));
    }
  });
}

test('readBatchHeader reads every field kafkajs wrote', async () => {
  const s = sample(new Rng(20));
  const b = await kafkaEncode(s, 0);
  const h = core.readBatchHeader(b);
  assert.equal(
    {
      baseOffset: h.baseOffset,
      batchLength: h.batchLength,
      partitionLeaderEpoch: h.partitionLeaderEpoch,
      magic: h.magic,
      lastOffsetDelta: h.lastOffsetDelta,
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      recordCount: h.recordCount,
      compression: h.compression,
      isControl: h.isControl,
    },
    {
      baseOffset: s.baseOffset,
      batchLength: b.length - 12,
      partitionLeaderEpoch: s.epoch,
      magic: 2,
      lastOffsetDelta: s.records.length - 1,
      producerId: s.producerId,
      producerEpoch: s.producerEpoch,
      baseSequence: s.baseSequence,
      recordCount: s.records.length,
      compression: 0,
      isControl: false,
    },
  );
  assert.throws(
    () => core.readBatchHeader(b.subarray(0, 60)),
    (e: CoreError) => e.code === 'TRUNCATED',
  );
});

test('stampBatch sets baseOffset and epoch in place without touching the CRC', async () => {
  const s = sample(new Rng(21));
  const b = ourEncode(core, s, 'none');
  const crc = core.readBatchHeader(b).crc;
  const log = new Uint8Array(b.length + 10);
  log.set(b, 10);
  core.stampBatch(log, 10, 2 ** 45 + 3, 77);
  const stamped = log.subarray(10);
  const h = core.readBatchHeader(stamped);
  assert.is(h.baseOffset, 2 ** 45 + 3);
  assert.is(h.partitionLeaderEpoch, 77);
  assert.is(h.crc, crc);
  assert.is(core.scanBatches(stamped).error, null);
  const k = await kafka.decode(stamped);
  assert.is(Number(k.records.at(-1)!.offset), 2 ** 45 + 3 + s.records.length - 1);
  assert.throws(
    () => core.stampBatch(log, 10, -1, 0),
    (e: CoreError) => e.code === 'CORRUPT_BATCH',
  );
  assert.throws(
    () => core.stampBatch(log, log.length - 60, 0, 0),
    (e: CoreError) => e.code === 'TRUNCATED',
  );
});

test('control batches, null header values, explicit base timestamps round-trip', () => {
  const records: RecordInput[] = [
    { key: enc.encode('k'), value: null, headers: [{ key: 'x', value: null }], timestamp: 5 },
    { value: enc.encode('v'), timestamp: 1 },
    { value: enc.encode('no timestamp') },
  ];
  const b = core.encodeBatch(records, { control: true, baseTimestamp: 3, baseOffset: 9 });
  const h = core.readBatchHeader(b);
  assert.ok(h.isControl);
  assert.is(h.baseTimestamp, 3);
  assert.is(h.maxTimestamp, 5);
  const got = core.decodeRecords(b);
  assert.equal(
    got.map((r) => [r.offset, r.timestamp, r.headers.map((x) => [x.key, x.value])]),
    [
      [9, 5, [['x', null]]],
      [10, 1, []],
      [11, 3, []],
    ],
  );
});

test('scanBatches over many batches: totals, then a torn tail, then corruption in the middle', () => {
  const rng = new Rng(30);
  const parts: Uint8Array[] = [];
  let offset = 100;
  let records = 0;
  let maxTs = -1;
  for (let i = 0; i < 25; i++) {
    const s = sample(rng, 10);
    const b = ourEncode(core, { ...s, baseOffset: offset }, i % 3 === 0 ? 'gzip' : 'none');
    parts.push(b);
    offset += s.records.length;
    records += s.records.length;
    maxTs = Math.max(maxTs, ...s.records.map((r) => r.timestamp!));
  }
  const log = Buffer.concat(parts);
  const scan = core.scanBatches(log);
  assert.equal(
    { ...scan, error: null },
    {
      validBytes: log.length,
      batchCount: 25,
      recordCount: records,
      firstOffset: 100,
      lastOffset: offset - 1,
      maxTimestamp: maxTs,
      error: null,
    },
  );
  const lastStart = log.length - parts.at(-1)!.length;
  for (const cut of [1, 11, 12, 60, 61, parts.at(-1)!.length - 1]) {
    const torn = core.scanBatches(log.subarray(0, lastStart + cut));
    assert.is(torn.validBytes, lastStart, `cut ${cut}`);
    assert.is(torn.batchCount, 24);
    assert.is(torn.error?.code, 'TRUNCATED');
    assert.is(torn.error?.position, lastStart);
  }
  // Flip one bit in batch 10's records: BAD_CRC there, the scan stops at it.
  const at = parts.slice(0, 10).reduce((n, b) => n + b.length, 0);
  const bad = Buffer.from(log);
  bad[at + BATCH_HEADER_BYTES + 3]! ^= 0x10;
  const s2 = core.scanBatches(bad);
  assert.is(s2.error?.code, 'BAD_CRC');
  assert.is(s2.error?.position, at);
  assert.is(s2.validBytes, at);
  assert.is(s2.batchCount, 10);
  assert.instance(s2.error, CoreError);
  // A bad magic byte.
  const badMagic = Buffer.from(log);
  badMagic[at + 16] = 1;
  assert.is(core.scanBatches(badMagic).error?.code, 'BAD_MAGIC');
  // A length shorter than a header, and one over the limit.
  const short = Buffer.from(log);
  short.writeInt32BE(10, at + 8);
  assert.is(core.scanBatches(short).error?.code, 'CORRUPT_BATCH');
  const huge = Buffer.from(log);
  huge.writeInt32BE(coreLimits.maxBatchBytes, at + 8);
  assert.is(core.scanBatches(huge).error?.code, 'TOO_LARGE');
  assert.is(core.scanBatches(new Uint8Array(0)).batchCount, 0);
  assert.is(core.scanBatches(new Uint8Array(0)).firstOffset, -1);
});

/** Re-CRCs a hand-edited batch so that only the structural checks can catch the edit. */
function recrc(b: Uint8Array): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(17, core.crc32c(b.subarray(21)));
  return b;
}

test('structurally bad batches with a correct CRC are CORRUPT_BATCH, in scan and decode', () => {
  const good = core.encodeBatch([
    { key: enc.encode('a'), value: enc.encode('one') },
    { key: enc.encode('b'), value: enc.encode('two') },
  ]);
  const edits: [string, (b: Uint8Array, dv: DataView) => void][] = [
    ['record count too high', (_b, dv) => dv.setInt32(57, 3)],
    ['record count too low', (_b, dv) => dv.setInt32(57, 1)],
    ['negative record count', (_b, dv) => dv.setInt32(57, -1)],
    ['negative lastOffsetDelta', (_b, dv) => dv.setInt32(23, -1)],
    ['offset delta past lastOffsetDelta', (_b, dv) => dv.setInt32(23, 0)],
    ['codec 7', (_b, dv) => dv.setInt16(21, 7)],
    ['record length past the batch', (b) => (b[61] = 0x7e)],
    ['key length past the record', (b) => (b[61 + 4] = 0x7e)],
    ['key length -2', (b) => (b[61 + 4] = 3)],
    ['unterminated varint', (b) => b.fill(0xff, 61, 61 + 6)],
    ['baseOffset negative', (_b, dv) => dv.setInt32(0, -1)],
    ['timestamp beyond 2^53', (_b, dv) => dv.setInt32(35, 0x7fffffff)],
  ];
  for (const [name, edit] of edits) {
    const b = Uint8Array.from(good);
    edit(b, new DataView(b.buffer));
    recrc(b);
    for (const c of [core, debugCore]) {
      const scan = c.scanBatches(b);
      assert.is(scan.error?.code, 'CORRUPT_BATCH', name);
      assert.is(scan.validBytes, 0, name);
      assert.throws(
        () => c.decodeRecords(b),
        (e: CoreError) => e.code === 'CORRUPT_BATCH',
        name,
      );
      assert.throws(
        () => c.checkRecords(b),
        (e: CoreError) => e.code === 'CORRUPT_BATCH',
        name,
      );
    }
  }
  // Trailing bytes after the one batch given to decodeRecords.
  const trailing = new Uint8Array(good.length + 1);
  trailing.set(good);
  assert.throws(
    () => core.decodeRecords(trailing),
    (e: CoreError) => e.code === 'CORRUPT_BATCH',
  );
});

test('encodeBatch refuses what it cannot encode, with typed errors', () => {
  const one = [{ value: enc.encode('x') }];
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as CoreError).code;
    }
    return 'no error';
  };
  assert.is(
    code(() => core.encodeBatch([])),
    'CORRUPT_BATCH',
  );
  assert.is(
    code(() => core.encodeBatch(one, { baseOffset: -5 })),
    'CORRUPT_BATCH',
  );
  assert.is(
    code(() => core.encodeBatch(one, { compression: 'zstd' as CompressionName })),
    'UNSUPPORTED',
  );
  assert.is(
    code(() => core.encodeBatch([{ value: new Uint8Array(coreLimits.maxBatchBytes) }])),
    'TOO_LARGE',
  );
  assert.is(
    code(() => core.encodeBatch([{ value: null, timestamp: 1.5 }])),
    'CORRUPT_BATCH',
  );
  for (const bad of [
    { value: 'text' },
    { value: null, key: 5 },
    { value: null, headers: [{ key: 1, value: null }] },
    { value: null, headers: 'x' },
  ]) {
    assert.is(
      code(() => core.encodeBatch([bad as unknown as RecordInput])),
      'CORRUPT_BATCH',
      JSON.stringify(bad),
    );
  }
});

test('decodeRecords: snappy and zstd batches are UNSUPPORTED; bad gzip is CORRUPT_BATCH', () => {
  const b = core.encodeBatch([{ value: enc.encode('x') }], { compression: 'gzip' });
  for (const codec of [2, 4]) {
    const c = Uint8Array.from(b);
    new DataView(c.buffer).setInt16(21, codec);
    assert.throws(
      () => core.decodeRecords(recrc(c)),
      (e: CoreError) => e.code === 'UNSUPPORTED',
    );
  }
  const g = Uint8Array.from(b);
  g[g.length - 9]! ^= 0xff; // inside the gzip stream
  assert.throws(
    () => core.decodeRecords(recrc(g)),
    (e: CoreError) => e.code === 'CORRUPT_BATCH',
  );
});

test.run();
