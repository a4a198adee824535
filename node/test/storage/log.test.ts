// The log's contract, over the in-memory file system and over the real one (a temp
// directory): appends stamp offsets and terms, the view reflects appends and truncations
// at once, group commit makes one write and one fsync per turn, reads by index and by
// offset return the stored bytes, the LogReader limits, recovery after a clean reopen.
import assert from 'node:assert/strict';
import { suite } from 'uvu';
import type { Entry } from '../../../raft/src/types.js';
import {
  createPrng,
  type FileSystem,
  type FsOpInfo,
  GroupStorage,
  MemFileSystem,
  NodeFileSystem,
  StorageError,
} from '../../src/storage/index.js';
import {
  cloneEntry,
  controlEntry,
  core,
  entries,
  eqBytes,
  normalEntry,
  open,
  tempDir,
  unstamped,
} from './helpers.js';

/** Parses a buffer of batches back to back into (baseOffset, lastOffset, bytes). */
function batchesIn(buf: Uint8Array): { baseOffset: number; lastOffset: number; bytes: Uint8Array }[] {
  const out = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let p = 0; p < buf.length; ) {
    const size = 12 + dv.getInt32(p + 8);
    const baseOffset = dv.getUint32(p) * 2 ** 32 + dv.getUint32(p + 4);
    out.push({ baseOffset, lastOffset: baseOffset + dv.getInt32(p + 23), bytes: buf.subarray(p, p + size) });
    p += size;
  }
  return out;
}

function sameEntry(got: Entry, want: Entry): boolean {
  return (
    got.index === want.index &&
    got.term === want.term &&
    got.type === want.type &&
    eqBytes(unstamped(got), unstamped(want))
  );
}

type Env = { name: string; make: () => { fs: FileSystem; dir: string; cleanup: () => void } };
const envs: Env[] = [
  {
    name: 'memfs',
    make: () => ({ fs: new MemFileSystem({ prng: createPrng(1) }), dir: 'group', cleanup: () => {} }),
  },
  {
    name: 'node fs',
    make: () => {
      const t = tempDir();
      return { fs: new NodeFileSystem(), dir: `${t.dir}/group`, cleanup: t.cleanup };
    },
  },
];

for (const env of envs) {
  const t = suite(`log over ${env.name}`);
  const openAt = (fs: FileSystem, dir: string, options = {}) =>
    GroupStorage.open({ fs, dir, core: core(), options });

  t('append stamps offsets and terms; entries, term and offsets read back', async () => {
    const { fs, dir, cleanup } = env.make();
    try {
      const { storage, report } = await openAt(fs, dir);
      assert.equal(report.possibleLoss, null);
      assert.equal(storage.firstIndex(), 1);
      assert.equal(storage.lastIndex(), 0);
      assert.equal(storage.term(0), 0);
      assert.equal(storage.nextOffset(), 0);
      const es = entries(1, 40, (i) => (i < 20 ? 1 : 3));
      const copies = es.map(cloneEntry);
      const placed = storage.append(es);
      // The view reflects the append at once, before anything is durable.
      assert.equal(storage.lastIndex(), 39);
      assert.equal(storage.durable().index, 0);
      let next = 0;
      for (const p of placed) {
        assert.equal(p.baseOffset, next);
        const e = es[p.index - 1]!;
        const records = e.type === 'normal' ? new DataView(e.data.buffer, e.data.byteOffset).getInt32(57) : 1;
        assert.equal(p.lastOffset, next + records - 1);
        next = p.lastOffset + 1;
        if (e.type === 'normal') {
          // Stamped in place: baseOffset and epoch in the caller's bytes.
          const dv = new DataView(e.data.buffer, e.data.byteOffset);
          assert.equal(dv.getUint32(4), p.baseOffset);
          assert.equal(dv.getInt32(12), e.term);
        }
      }
      assert.equal(storage.nextOffset(), next);
      assert.equal(storage.lastOffset(), next - 1);
      assert.equal(storage.term(19), 1);
      assert.equal(storage.term(20), 3);
      assert.equal(storage.term(40), undefined);
      await storage.sync();
      assert.equal(storage.durable().index, 39);
      assert.equal(storage.durable().term, 3);
      const got = storage.entries(1, 40, Number.POSITIVE_INFINITY);
      assert.equal(got.length, 39);
      got.forEach((g, k) => void assert.ok(sameEntry(g, copies[k]!), `entry ${k + 1}`));
      assert.equal(got[0]!.type, 'noop');
      assert.equal(got[16]!.type, 'config');
      assert.ok(eqBytes(got[16]!.data, copies[16]!.data));
      await storage.close();
    } finally {
      cleanup();
    }
  });

  t('a reopened log serves every entry from disk, byte for byte', async () => {
    const { fs, dir, cleanup } = env.make();
    try {
      const opts = { segmentBytes: 2000, indexIntervalBytes: 300, cacheBytes: 1 };
      const first = await openAt(fs, dir, opts);
      const es = entries(1, 120, (i) => 1 + Math.floor(i / 30), { valueBytes: 50 });
      const copies = es.map(cloneEntry);
      const placed = first.storage.append(es);
      first.storage.setHardState({ term: 4, vote: 2, commit: 100 });
      await first.storage.sync();
      // With a 1-byte cache, entries come from the segment files already.
      const fromDisk = first.storage.entries(1, 120, Number.POSITIVE_INFINITY);
      fromDisk.forEach((g, k) => void assert.ok(sameEntry(g, copies[k]!)));
      assert.ok(first.storage.describeSegments().length > 5, 'segments rolled');
      await first.storage.close();
      const { storage, report } = await openAt(fs, dir, opts);
      assert.equal(report.possibleLoss, null);
      assert.ok(report.segmentsTrusted > 0, 'sealed segments with a valid index are trusted');
      assert.equal(report.segmentsScanned, 1, 'only the last segment is scanned');
      assert.deepEqual(storage.hardState(), { term: 4, vote: 2, commit: 100 });
      assert.equal(storage.lastIndex(), 119);
      assert.equal(storage.nextOffset(), placed[placed.length - 1]!.lastOffset + 1);
      for (const [lo, hi] of [
        [1, 120],
        [37, 38],
        [50, 90],
        [119, 120],
      ] as const) {
        const got = storage.entries(lo, hi, Number.POSITIVE_INFINITY);
        assert.equal(got.length, hi - lo);
        got.forEach((g, k) => void assert.ok(sameEntry(g, copies[lo - 1 + k]!), `entry ${lo + k}`));
      }
      for (const p of placed)
        assert.deepEqual(storage.entryOffsets(p.index), {
          baseOffset: p.baseOffset,
          lastOffset: p.lastOffset,
        });
      for (let i = 1; i < 120; i++) assert.equal(storage.term(i), copies[i - 1]!.term);
      // 'full' recovery validates everything and agrees.
      await storage.close();
      const full = await openAt(fs, dir, { ...opts, recovery: 'full' });
      assert.equal(full.report.segmentsTrusted, 0);
      assert.equal(full.storage.lastIndex(), 119);
      assert.equal(full.report.possibleLoss, null);
      await full.storage.close();
    } finally {
      cleanup();
    }
  });

  t('entries() honours maxBytes but returns at least one entry', async () => {
    const { fs, dir, cleanup } = env.make();
    try {
      for (const cacheBytes of [1, 1 << 20]) {
        const { storage } = await openAt(fs, `${dir}${cacheBytes}`, { cacheBytes });
        const es = [];
        for (let i = 1; i <= 10; i++) es.push(normalEntry(i, 1, { records: 1, valueBytes: 100 }));
        storage.append(es);
        await storage.sync();
        const size = es[0]!.data.length;
        const three = es[0]!.data.length + es[1]!.data.length + es[2]!.data.length;
        assert.equal(storage.entries(1, 11, 0).length, 1);
        assert.equal(storage.entries(1, 11, size).length, 1);
        assert.equal(storage.entries(1, 11, three).length, 3);
        assert.equal(storage.entries(1, 11, three - 1).length, 2);
        assert.equal(storage.entries(4, 11, Number.POSITIVE_INFINITY).length, 7);
        assert.equal(storage.entries(5, 5, 100).length, 0);
        assert.throws(
          () => storage.entries(0, 2, 100),
          (e: StorageError) => e.code === 'INDEX_OUT_OF_RANGE',
        );
        assert.throws(
          () => storage.entries(3, 12, 100),
          (e: StorageError) => e.code === 'INDEX_OUT_OF_RANGE',
        );
        await storage.close();
      }
    } finally {
      cleanup();
    }
  });

  t('truncateSuffix is visible at once, reaches across segments, and survives a reopen', async () => {
    const { fs, dir, cleanup } = env.make();
    try {
      const opts = { segmentBytes: 1500, indexIntervalBytes: 200, cacheBytes: 1 };
      const { storage } = await openAt(fs, dir, opts);
      const es = entries(1, 60, () => 1);
      const copies = es.map(cloneEntry);
      const placed = storage.append(es);
      await storage.sync();
      const segsBefore = storage.describeSegments().length;
      storage.truncateSuffix(15);
      assert.equal(storage.lastIndex(), 14);
      assert.equal(storage.nextOffset(), placed[14]!.baseOffset);
      assert.equal(storage.term(15), undefined);
      assert.ok(storage.describeSegments().length < segsBefore);
      const repl = entries(15, 30, () => 2);
      const replCopies = repl.map(cloneEntry);
      const placed2 = storage.append(repl);
      assert.equal(placed2[0]!.baseOffset, placed[14]!.baseOffset, 'offsets continue from the cut');
      await storage.sync();
      // Truncating entries not yet written (same turn) needs no disk truncation.
      storage.append(entries(30, 35, () => 2));
      storage.truncateSuffix(32);
      assert.equal(storage.lastIndex(), 31);
      await storage.sync();
      await storage.close();
      const again = await openAt(fs, dir, opts);
      assert.equal(again.report.possibleLoss, null);
      assert.equal(again.storage.lastIndex(), 31);
      const got = again.storage.entries(1, 30, Number.POSITIVE_INFINITY);
      got.forEach(
        (g, k) => void assert.ok(sameEntry(g, k < 14 ? copies[k]! : replCopies[k - 14]!), `entry ${k + 1}`),
      );
      assert.equal(again.storage.term(15), 2);
      await again.storage.close();
    } finally {
      cleanup();
    }
  });

  t(
    'read(offset) returns stored batches: the batch holding the offset first, then within the byte budget',
    async () => {
      const { fs, dir, cleanup } = env.make();
      try {
        for (const cacheBytes of [1, 1 << 20]) {
          const { storage } = await openAt(fs, `${dir}${cacheBytes}`, {
            segmentBytes: 3000,
            indexIntervalBytes: 256,
            cacheBytes,
          });
          const es = entries(1, 80, () => 2, { records: 3, valueBytes: 30 });
          storage.append(es);
          await storage.sync();
          const end = storage.nextOffset();
          // Walk the whole log with small budgets: every offset exactly once, batches whole and valid.
          let offset = 0;
          const seen: number[] = [];
          while (offset < end) {
            const r = await storage.read(offset, { maxBytes: 500 });
            assert.ok(r.bytes.length > 0);
            assert.equal(core().scanBatches(r.bytes).validBytes, r.bytes.length);
            const bs = batchesIn(r.bytes);
            assert.ok(bs[0]!.baseOffset <= offset && bs[0]!.lastOffset >= offset);
            for (const b of bs) {
              for (let o = Math.max(b.baseOffset, offset); o <= b.lastOffset; o++) seen.push(o);
            }
            assert.equal(r.nextOffset, bs[bs.length - 1]!.lastOffset + 1);
            offset = r.nextOffset;
          }
          assert.deepEqual(
            seen,
            Array.from({ length: end }, (_, i) => i),
          );
          // An offset inside a batch returns that whole batch first.
          const mid = await storage.read(4, { maxBytes: 1 });
          const one = batchesIn(mid.bytes);
          assert.equal(one.length, 1);
          assert.ok(one[0]!.baseOffset <= 4 && one[0]!.lastOffset >= 4);
          // endOffset bounds what is returned (the committed offset).
          const bounded = await storage.read(0, { endOffset: 10 });
          for (const b of batchesIn(bounded.bytes)) assert.ok(b.baseOffset < 10);
          assert.equal((await storage.read(end)).bytes.length, 0);
          await assert.rejects(storage.read(end + 1), (e: StorageError) => e.code === 'OFFSET_OUT_OF_RANGE');
          await assert.rejects(storage.read(-1), (e: StorageError) => e.code === 'OFFSET_OUT_OF_RANGE');
          await storage.close();
        }
      } finally {
        cleanup();
      }
    },
  );

  t('hard state persists atomically and its durability is reported with a version', async () => {
    const { fs, dir, cleanup } = env.make();
    try {
      const { storage } = await openAt(fs, dir);
      const seen: number[] = [];
      storage.onDurable((d) => seen.push(d.hardStateVersion));
      const v1 = storage.setHardState({ term: 1, vote: 1, commit: 0 });
      const v2 = storage.setHardState({ term: 2, vote: 3, commit: 0 });
      assert.equal(storage.setHardState({ term: 2, vote: 3, commit: 0 }), v2, 'no change, no new version');
      assert.ok(v2 > v1);
      assert.equal(await storage.whenDurable(0, { hardStateVersion: v2 }), true);
      assert.ok(seen.includes(v2));
      assert.throws(
        () => storage.setHardState({ term: -1, vote: 0, commit: 0 }),
        (e: StorageError) => e.code === 'INVALID_ARGUMENT',
      );
      await storage.close();
      const again = await openAt(fs, dir);
      assert.deepEqual(again.storage.hardState(), { term: 2, vote: 3, commit: 0 });
      assert.equal(again.report.hardState, 'ok');
      await again.storage.close();
    } finally {
      cleanup();
    }
  });

  t('bad input gets a typed error and changes nothing', async () => {
    const { fs, dir, cleanup } = env.make();
    try {
      const { storage } = await openAt(fs, dir);
      storage.append(entries(1, 5, () => 2));
      const before = { last: storage.lastIndex(), next: storage.nextOffset() };
      const good = normalEntry(5, 2);
      const bad: Entry[][] = [
        [normalEntry(6, 2)], // gap
        [normalEntry(5, 1)], // term goes back
        [good, { index: 6, term: 2, type: 'normal', data: new Uint8Array(10) }], // not a batch (second of two)
        [{ index: 5, term: 2, type: 'normal', data: good.data.subarray(0, good.data.length - 1) }], // length mismatch
        [
          {
            index: 5,
            term: 2,
            type: 'normal',
            data: core().encodeBatch([{ value: null }], { control: true }),
          },
        ],
        [{ index: 5, term: 2, type: 'bogus' as 'normal', data: new Uint8Array(0) }],
        [{ index: 5, term: 2 ** 31, type: 'noop', data: new Uint8Array(0) }],
      ];
      for (const b of bad) {
        assert.throws(
          () => storage.append(b),
          (e: StorageError) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT',
        );
        assert.equal(storage.lastIndex(), before.last);
        assert.equal(storage.nextOffset(), before.next);
      }
      assert.throws(
        () => storage.truncateSuffix(0),
        (e: StorageError) => e.code === 'INDEX_OUT_OF_RANGE',
      );
      assert.throws(
        () => storage.truncateSuffix(7),
        (e: StorageError) => e.code === 'INDEX_OUT_OF_RANGE',
      );
      // The good entry is untouched by the failed attempt that included it.
      storage.append([good]);
      await storage.sync();
      assert.equal(storage.lastIndex(), 5);
      await storage.close();
    } finally {
      cleanup();
    }
  });

  t.run();
}

const g = suite('group commit');

g('appends of one turn become one write and one fsync per file', async () => {
  const ops: FsOpInfo[] = [];
  const fs = new MemFileSystem({ prng: createPrng(3), onStep: (_, op) => ops.push(op) });
  const { storage } = await open(fs, { segmentBytes: 1 << 20 });
  await storage.sync();
  ops.length = 0;
  const durable: number[] = [];
  storage.onDurable((d) => durable.push(d.index));
  let bytes = 0;
  for (let i = 1; i <= 50; i++) {
    const e = normalEntry(i, 1);
    bytes += e.data.length;
    storage.append([e]);
  }
  assert.equal(storage.pendingBytes(), bytes, 'backpressure signal: bytes not yet handed to the disk');
  storage.setHardState({ term: 1, vote: 1, commit: 0 });
  await storage.sync();
  assert.equal(storage.pendingBytes(), 0);
  const logOps = ops.filter((o) => o.path.endsWith('.log'));
  assert.deepEqual(
    logOps.map((o) => o.kind),
    ['create', 'write', 'sync'],
    'one create, one write, one fsync for the whole turn',
  );
  assert.deepEqual(durable, [50]);
  // While a flush is in flight, later appends gather into the next one.
  ops.length = 0;
  storage.append([normalEntry(51, 1)]);
  await new Promise((r) => setImmediate(r));
  for (let i = 52; i <= 60; i++) storage.append([normalEntry(i, 1)]);
  await storage.sync();
  const writes = ops.filter((o) => o.kind === 'write' && o.path.endsWith('.log'));
  assert.ok(writes.length <= 2, `expected at most two writes, got ${writes.length}`);
  await storage.close();
});

g('whenDurable resolves false for an entry truncated away', async () => {
  const fs = new MemFileSystem({ prng: createPrng(4) });
  const { storage } = await open(fs);
  storage.append(entries(1, 10, () => 1));
  const waiting = storage.whenDurable(8, { term: 1 });
  storage.truncateSuffix(6);
  storage.append(entries(6, 12, () => 2));
  assert.equal(await waiting, false);
  assert.equal(await storage.whenDurable(8, { term: 2 }), true);
  await storage.close();
});

g('noop and config entries are control batches that read back as the same entries', async () => {
  const fs = new MemFileSystem({ prng: createPrng(5) });
  const { storage } = await open(fs, { cacheBytes: 1 });
  const es = [controlEntry(1, 1, 'noop'), controlEntry(2, 1, 'config'), normalEntry(3, 1)];
  const copies = es.map(cloneEntry);
  storage.append(es);
  await storage.sync();
  const got = storage.entries(1, 4, Number.POSITIVE_INFINITY);
  got.forEach((e, k) => void assert.ok(sameEntry(e, copies[k]!)));
  // As stored: control batches (attributes bit 5) with key (0, 100 or 101).
  const r = await storage.read(0);
  const bs = batchesIn(r.bytes);
  assert.equal(bs.length, 3);
  for (const [k, type] of [
    [0, 100],
    [1, 101],
  ] as const) {
    const dv = new DataView(bs[k]!.bytes.buffer, bs[k]!.bytes.byteOffset);
    assert.equal(dv.getInt16(21) & 0x20, 0x20);
    const rec = core().decodeRecords(bs[k]!.bytes)[0]!;
    assert.deepEqual([...rec.key!], [0, 0, 0, type]);
  }
  await storage.close();
});

g.run();
