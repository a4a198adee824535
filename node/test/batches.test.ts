import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
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
