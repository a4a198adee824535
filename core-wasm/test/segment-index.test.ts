// Sparse segment index: buildIndex against a plain model of the rule ("an entry for a
// batch when at least intervalBytes of log passed since the previous entry"), chained
// calls equal one call, and searchIndex against a linear scan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CoreError, createCore } from '../src/index.js';
import { Rng } from './rng.js';

const core = createCore();

function makeLog(
  rng: Rng,
  batches: number,
  base: number,
): { log: Uint8Array; sizes: number[]; offsets: number[] } {
  const parts: Uint8Array[] = [];
  const offsets: number[] = [];
  let offset = base;
  for (let i = 0; i < batches; i++) {
    const n = 1 + rng.int(5);
    parts.push(
      core.encodeBatch(
        Array.from({ length: n }, () => ({ value: rng.bytes(rng.int(rng.int(4) === 0 ? 3000 : 200)) })),
        { baseOffset: offset },
      ),
    );
    offsets.push(offset);
    offset += n;
  }
  return { log: Buffer.concat(parts), sizes: parts.map((p) => p.length), offsets };
}

function model(
  sizes: number[],
  offsets: number[],
  base: number,
  interval: number,
  start: number,
  since0: number,
) {
  const rel: number[] = [];
  const pos: number[] = [];
  const ord: number[] = [];
  let since = since0;
  let p = start;
  sizes.forEach((size, i) => {
    if (since >= interval) {
      rel.push(offsets[i]! - base);
      pos.push(p);
      ord.push(i);
      since = 0;
    }
    since += size;
    p += size;
  });
  return { rel, pos, ord, since };
}

test('buildIndex matches the model for several intervals and starting states', () => {
  const rng = new Rng(7);
  const base = 5000;
  const { log, sizes, offsets } = makeLog(rng, 300, base);
  for (const interval of [0, 1, 100, 4096, 20000, 1 << 30]) {
    for (const [start, since] of [
      [0, 0],
      [12345, 4000],
    ] as const) {
      const got = core.buildIndex(log, {
        segmentBaseOffset: base,
        intervalBytes: interval,
        startPosition: start,
        bytesSinceLastEntry: since,
      });
      const want = model(sizes, offsets, base, interval, start, since);
      assert.equal([...got.relativeOffsets], want.rel, `interval ${interval}`);
      assert.equal([...got.positions], want.pos);
      assert.equal([...got.batchOrdinals], want.ord);
      assert.is(got.bytesSinceLastEntry, want.since);
    }
  }
});

test('building in two calls (carrying bytesSinceLastEntry) equals one call', () => {
  const rng = new Rng(8);
  const { log, sizes } = makeLog(rng, 100, 0);
  const whole = core.buildIndex(log, { segmentBaseOffset: 0, intervalBytes: 4096 });
  const cutBatches = 37;
  const cut = sizes.slice(0, cutBatches).reduce((a, b) => a + b, 0);
  const a = core.buildIndex(log.subarray(0, cut), { segmentBaseOffset: 0, intervalBytes: 4096 });
  const b = core.buildIndex(log.subarray(cut), {
    segmentBaseOffset: 0,
    intervalBytes: 4096,
    startPosition: cut,
    bytesSinceLastEntry: a.bytesSinceLastEntry,
  });
  assert.equal([...a.relativeOffsets, ...b.relativeOffsets], [...whole.relativeOffsets]);
  assert.equal([...a.positions, ...b.positions], [...whole.positions]);
  assert.equal([...a.batchOrdinals, ...b.batchOrdinals.map((o) => o + cutBatches)], [...whole.batchOrdinals]);
  assert.is(b.bytesSinceLastEntry, whole.bytesSinceLastEntry);
});

test('buildIndex: a torn tail is TRUNCATED; offsets below the segment base are CORRUPT_BATCH', () => {
  const { log } = makeLog(new Rng(9), 10, 100);
  assert.throws(
    () => core.buildIndex(log.subarray(0, log.length - 1), { segmentBaseOffset: 100, intervalBytes: 0 }),
    (e: CoreError) => e.code === 'TRUNCATED',
  );
  assert.throws(
    () => core.buildIndex(log, { segmentBaseOffset: 101, intervalBytes: 0 }),
    (e: CoreError) => e.code === 'CORRUPT_BATCH',
  );
  assert.is(
    core.buildIndex(new Uint8Array(0), { segmentBaseOffset: 0, intervalBytes: 0 }).relativeOffsets.length,
    0,
  );
});

test('searchIndex returns the last slot ≤ target, like a linear scan', () => {
  const rng = new Rng(10);
  for (let round = 0; round < 200; round++) {
    const n = rng.int(50);
    const arr = new Uint32Array(n + rng.int(5));
    let v = rng.int(10);
    for (let i = 0; i < n; i++) {
      arr[i] = v;
      v += 1 + rng.int(rng.int(2) ? 3 : 1000);
    }
    for (let probe = 0; probe < 20; probe++) {
      const target = rng.int(v + 10);
      let want = -1;
      for (let i = 0; i < n; i++) if (arr[i]! <= target) want = i;
      assert.is(core.searchIndex(arr, n, target), want);
    }
  }
  assert.throws(() => core.searchIndex(new Uint32Array(2), 3, 0), RangeError);
});

test.run();
