import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import { createPrng } from '../../raft/src/index.js';
import { CairnError } from '../src/errors.js';
import { defaultLimits } from '../src/limits.js';
import {
  buildBatch,
  buildOffsetCommitBatch,
  checkClientBatch,
  classifyBatch,
  isControlBatchAt,
} from '../src/state/batches.js';

const core = createCore();
const limits = { ...defaultLimits, maxRecordBytes: 100, maxBatchBytes: 1000, maxRecordsPerAppend: 5 };
const rec = (s: string) => ({ value: new TextEncoder().encode(s) });

function refused(fn: () => unknown, code: string) {
  try {
    fn();
    assert.unreachable(`expected ${code}`);
  } catch (e) {
    assert.instance(e, CairnError);
    assert.is((e as CairnError).code, code);
  }
}

test('a client batch with producer identity passes and reports its facts', () => {
  const b = core.encodeBatch([rec('a'), rec('b')], { producerId: 9, producerEpoch: 1, baseSequence: 4 });
  const c = checkClientBatch(core, b, limits);
  assert.equal(
    [c.recordCount, c.producerId, c.producerEpoch, c.baseSequence, c.lastOffsetDelta],
    [2, 9, 1, 4, 1],
  );
});

/** Recomputes a batch's CRC (attributes..end) after a test changed bytes it covers. */
function reseal(batch: Uint8Array): Uint8Array {
  new DataView(batch.buffer, batch.byteOffset).setUint32(17, core.crc32c(batch.subarray(21)) >>> 0);
  return batch;
}

test('records a valid CRC covers must still be well formed, and each within the record limit', () => {
  // Garbage inside the CRC: the client computed the CRC over it, so only walking the records shows it.
  for (const compression of ['none', 'lz4'] as const) {
    const b = core.encodeBatch([rec('alpha'), rec('beta')], { compression });
    const bad = Uint8Array.from(b);
    // The first byte of the records: the first record's length varint, or the LZ4 frame's magic.
    bad[61]! ^= 0x7f;
    refused(() => checkClientBatch(core, reseal(bad), limits), 'CORRUPT_BATCH');
  }
  // Offset deltas must run 0..n-1: a batch whose second record repeats delta 0.
  const dup = core.encodeBatch([rec('a'), rec('b')]);
  const second = 61 + 1 + dup[61]! / 2; // first record: one-byte length varint (zigzag) + body
  assert.is(dup[second + 1 + 1 + 1], 2, 'the second record holds offset delta 1 (zigzag 2)');
  const d2 = Uint8Array.from(dup);
  d2[second + 3] = 0;
  refused(() => checkClientBatch(core, reseal(d2), limits), 'CORRUPT_BATCH');
  // One record over maxRecordBytes inside a batch that is within maxBatchBytes.
  refused(
    () => checkClientBatch(core, core.encodeBatch([rec('small'), rec('x'.repeat(101))]), limits),
    'RECORD_TOO_LARGE',
  );
  checkClientBatch(core, core.encodeBatch([rec('x'.repeat(100))]), limits);
});

test('hostile records under a valid CRC: refused with a typed error, or accepted and readable', () => {
  const random = createPrng(7);
  const cases = Number(process.env['CAIRN_FUZZ_CASES'] ?? 3000);
  for (let i = 0; i < cases; i++) {
    const records = Array.from({ length: 1 + random.int(4) }, (_, j) => ({
      key: random.int(2) === 0 ? null : new TextEncoder().encode(`k${j}`),
      value: new Uint8Array(random.int(60)).fill(j),
      headers: random.int(3) === 0 ? [{ key: 'h', value: new Uint8Array([j]) }] : [],
    }));
    const b = Uint8Array.from(
      core.encodeBatch(records, { compression: random.int(2) === 0 ? 'none' : 'lz4' }),
    );
    for (let flips = 1 + random.int(3); flips > 0; flips--)
      b[61 + random.int(b.length - 61)]! ^= 1 << random.int(8);
    reseal(b);
    let accepted = false;
    try {
      checkClientBatch(core, b, limits);
      accepted = true;
    } catch (e) {
      assert.instance(e, CairnError);
      assert.ok(['CORRUPT_BATCH', 'RECORD_TOO_LARGE', 'INVALID_REQUEST'].includes((e as CairnError).code));
    }
    // The oracle: what the node accepts, every reader can decode.
    if (accepted) assert.is(core.decodeRecords(b).length, core.readBatchHeader(b).recordCount);
  }
});

test('bad client batches are refused with typed errors', () => {
  const good = core.encodeBatch([rec('a')]);
  const flipped = Uint8Array.from(good);
  flipped[flipped.length - 1]! ^= 1;
  refused(() => checkClientBatch(core, flipped, limits), 'CORRUPT_BATCH');
  refused(() => checkClientBatch(core, good.subarray(0, 30), limits), 'CORRUPT_BATCH');
  refused(() => checkClientBatch(core, good.subarray(0, good.length - 1), limits), 'CORRUPT_BATCH');
  const two = new Uint8Array(good.length * 2);
  two.set(good);
  two.set(good, good.length);
  refused(() => checkClientBatch(core, two, limits), 'CORRUPT_BATCH');
  refused(
    () => checkClientBatch(core, core.encodeBatch([rec('a')], { control: true }), limits),
    'INVALID_REQUEST',
  );
  refused(
    () => checkClientBatch(core, core.encodeBatch([rec('x'.repeat(99))]), { ...limits, maxBatchBytes: 100 }),
    'RECORD_TOO_LARGE',
  );
  refused(
    () => checkClientBatch(core, core.encodeBatch(Array.from({ length: 6 }, () => rec('a'))), limits),
    'RECORD_TOO_LARGE',
  );
});

test('records are built into a batch within limits', () => {
  const b = buildBatch(
    core,
    [rec('a'), { ...rec('b'), timestamp: 5 }],
    { producerId: 3, producerEpoch: 0, baseSequence: 0 },
    1000,
    limits,
  );
  const back = core.decodeRecords(b.bytes);
  assert.equal(
    back.map((r) => r.timestamp),
    [1000, 5],
  );
  assert.is(core.readBatchHeader(b.bytes).producerId, 3);
  refused(() => buildBatch(core, [], undefined, 0, limits), 'INVALID_REQUEST');
  refused(() => buildBatch(core, [rec('x'.repeat(101))], undefined, 0, limits), 'RECORD_TOO_LARGE');
  refused(
    () =>
      buildBatch(
        core,
        Array.from({ length: 6 }, () => rec('a')),
        undefined,
        0,
        limits,
      ),
    'RECORD_TOO_LARGE',
  );
});

test('consumer offset commits travel as control batches that readers can skip', () => {
  const b = buildOffsetCommitBatch(core, { group: 'grüppe', offset: 2 ** 40, metadata: 'm' }, 7);
  assert.ok(isControlBatchAt(b, 0));
  core.stampBatch(b, 0, 12, 3);
  const c = classifyBatch(core, 4, b);
  assert.equal(c, {
    kind: 'offsetCommit',
    lastOffset: 12,
    commit: { group: 'grüppe', offset: 2 ** 40, metadata: 'm' },
  });
  const d = core.encodeBatch([rec('a'), rec('b')]);
  core.stampBatch(d, 0, 20, 3);
  assert.not.ok(isControlBatchAt(d, 0));
  const cd = classifyBatch(core, 5, d);
  assert.is(cd.kind, 'data');
  assert.is(cd.kind === 'data' && cd.facts.lastOffset, 21);
});

test.run();
