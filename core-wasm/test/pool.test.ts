// The piscina pool: every operation gives what the in-thread core gives, errors arrive as
// typed CoreErrors, and stampBatch changes the caller's buffer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CoreError, createCore, createCorePool, POOL_THRESHOLD_BYTES } from '../src/index.js';
import { logs, text } from './corpus.js';
import { Rng } from './rng.js';

const core = createCore();
const pool = createCorePool({ minThreads: 1, maxThreads: 2 });
const rng = new Rng(5);

test('the pool gives the same results as the in-thread core', async () => {
  const data = logs(rng, 300_000);
  assert.is(await pool.crc32c(data, 7), core.crc32c(data, 7));
  assert.is(await pool.xxhash32(data), core.xxhash32(data));
  const frame = await pool.lz4Compress(data, { blockChecksum: true });
  assert.equal(frame, core.lz4Compress(data, { blockChecksum: true }));
  assert.equal(await pool.lz4Decompress(frame), data);
  const block = await pool.lz4CompressBlock(data, 2);
  assert.equal(await pool.lz4DecompressBlock(block, data.length), data);
  const records = Array.from({ length: 20 }, (_, i) => ({
    key: text(rng, 10),
    value: text(rng, 2000),
    headers: [{ key: 'n', value: Uint8Array.of(i) }],
    timestamp: 1000 + i,
  }));
  const batch = await pool.encodeBatch(records, { compression: 'lz4', baseOffset: 50 });
  assert.equal(batch, core.encodeBatch(records, { compression: 'lz4', baseOffset: 50 }));
  assert.equal(await pool.decodeRecords(batch), core.decodeRecords(batch));
  assert.equal(await pool.scanBatches(batch), core.scanBatches(batch));
  assert.equal(await pool.readBatchHeader(batch), core.readBatchHeader(batch));
  const index = await pool.buildIndex(Buffer.concat([batch, batch]), {
    segmentBaseOffset: 0,
    intervalBytes: 1,
  });
  assert.equal(
    index,
    core.buildIndex(Buffer.concat([batch, batch]), { segmentBaseOffset: 0, intervalBytes: 1 }),
  );
  assert.is(await pool.searchIndex(Uint32Array.of(1, 5, 9), 3, 6), 1);
});

test('errors cross the thread as CoreErrors with their code and position', async () => {
  try {
    await pool.lz4Decompress(Uint8Array.of(1, 2, 3, 4, 5));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, CoreError);
    assert.is((e as CoreError).code, 'LZ4_MALFORMED');
  }
  const batch = core.encodeBatch([{ value: text(rng, 100) }]);
  batch[70]! ^= 1;
  const scan = await pool.scanBatches(batch);
  assert.instance(scan.error, CoreError);
  assert.is(scan.error?.code, 'BAD_CRC');
  assert.is(scan.error?.position, 0);
});

test('stampBatch changes the caller buffer', async () => {
  const batch = core.encodeBatch([{ value: text(rng, 100) }]);
  await pool.stampBatch(batch, 0, 1234, 5);
  assert.is(core.readBatchHeader(batch).baseOffset, 1234);
  assert.is(core.scanBatches(batch).error, null);
});

test('many concurrent calls all complete correctly', async () => {
  const inputs = Array.from({ length: 40 }, (_, i) => text(new Rng(i), 10_000 + i * 1000));
  const frames = await Promise.all(inputs.map((d) => pool.lz4Compress(d)));
  const back = await Promise.all(frames.map((f) => pool.lz4Decompress(f)));
  back.forEach((b, i) => {
    assert.equal(b, inputs[i]);
  });
  assert.ok(POOL_THRESHOLD_BYTES > 0);
});

test.after(() => pool.destroy());
test.run();
