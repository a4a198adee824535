// Snapshots and the log start: compacting the prefix, the snapshot byte stream from a
// leader to a follower (chunked, resumable after a dropped connection or a crash),
// rejecting a bad stream without harm, and an install that is atomic at every crash point.
import assert from 'node:assert/strict';
import { suite } from 'uvu';
import type { Entry } from '../../../raft/src/types.js';
import { baseOffsetAt, dataView, lastOffsetAt } from '../../src/storage/batch-fields.js';
import {
  CRASH_MODES,
  createPrng,
  type FileSystem,
  GroupStorage,
  MemFileSystem,
  NodeFileSystem,
  type StorageError,
} from '../../src/storage/index.js';
import { cloneEntry, core, entries, eqBytes, normalEntry, open, tempDir, unstamped } from './helpers.js';

const OPTS = { segmentBytes: 2500, indexIntervalBytes: 300, cacheBytes: 1, snapshotSyncIntervalBytes: 1024 };
const CONF = { voters: [1, 2, 3], learners: [4] };

function same(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.type === b.type && eqBytes(unstamped(a), unstamped(b));
}

/** Every batch from `from` up to `to` (exclusive offset), by offset reads. */
async function readAll(s: GroupStorage, from: number, to: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let offset = from;
  while (offset < to) {
    const r = await s.read(offset, { endOffset: to });
    if (r.bytes.length === 0) break;
    parts.push(r.bytes);
    offset = r.nextOffset;
  }
  return Buffer.concat(parts);
}

/** A leader with entries 1..n and a snapshot at `snapIndex`. */
async function leader(fs: FileSystem, dir: string, n: number, snapIndex: number) {
  const { storage } = await GroupStorage.open({ fs, dir, core: core(), options: OPTS });
  const es = entries(1, n + 1, (i) => 1 + Math.floor(i / 50), { valueBytes: 30 });
  const copies = es.map(cloneEntry);
  storage.append(es);
  await storage.sync();
  const state = new TextEncoder().encode(JSON.stringify({ producers: { 7: 3 }, offsets: { g: 12 } }));
  await storage.saveSnapshot({ index: snapIndex, term: storage.term(snapIndex)!, conf: CONF }, state);
  return { storage, copies, state };
}

async function streamOf(storage: GroupStorage) {
  const reader = await storage.openSnapshotReader();
  const bytes = await reader.read(0, reader.size);
  return { reader, bytes, meta: reader.meta };
}

const s = suite('snapshots');

s(
  'saveSnapshot moves the Raft log start; data below stays readable by offset; a reopen keeps it',
  async () => {
    const fs = new MemFileSystem({ prng: createPrng(1) });
    const { storage, copies, state } = await leader(fs, 'group', 120, 70);
    assert.equal(storage.firstIndex(), 71);
    assert.equal(storage.term(70), copies[69]!.term);
    assert.equal(storage.term(69), undefined);
    assert.throws(
      () => storage.entries(70, 72, 1e9),
      (e: StorageError) => e.code === 'INDEX_OUT_OF_RANGE',
    );
    storage.entries(71, 121, 1e9).forEach((e) => void assert.ok(same(e, copies[e.index - 1]!)));
    const before = await readAll(storage, 0, storage.nextOffset());
    assert.ok(before.length > 0);
    assert.equal(storage.logStartOffset(), 0);
    const loaded = await storage.loadSnapshot();
    assert.ok(eqBytes(loaded.state!, state));
    assert.deepEqual(loaded.meta.conf, CONF);
    await storage.close();
    const again = await open(fs, OPTS);
    assert.equal(again.report.possibleLoss, null);
    assert.equal(again.storage.firstIndex(), 71);
    assert.equal(again.storage.lastIndex(), 120);
    assert.equal(again.storage.term(70), copies[69]!.term);
    assert.ok(eqBytes(await readAll(again.storage, 0, again.storage.nextOffset()), before));
    // Bad requests change nothing.
    await assert.rejects(
      again.storage.saveSnapshot({ index: 121, term: 3, conf: CONF }, null),
      (e: StorageError) => e.code === 'INDEX_OUT_OF_RANGE',
    );
    await assert.rejects(
      again.storage.saveSnapshot({ index: 100, term: 99, conf: CONF }, null),
      (e: StorageError) => e.code === 'INVALID_ARGUMENT',
    );
    await again.storage.close();
  },
);

s('saveSnapshot with dropSegments deletes the segments below the new start (group 0)', async () => {
  const fs = new MemFileSystem({ prng: createPrng(2) });
  const { storage } = await open(fs, OPTS);
  storage.append(entries(1, 121, () => 1));
  await storage.sync();
  const segsBefore = storage.describeSegments().length;
  await storage.saveSnapshot({ index: 90, term: 1, conf: CONF }, new Uint8Array([9]), { dropSegments: true });
  assert.ok(storage.describeSegments().length < segsBefore);
  assert.ok(storage.logStartOffset() > 0);
  await assert.rejects(storage.read(0), (e: StorageError) => e.code === 'OFFSET_OUT_OF_RANGE');
  await storage.close();
  const again = await open(fs, OPTS);
  assert.equal(again.report.possibleLoss, null);
  assert.equal(again.storage.logStartOffset(), storage.logStartOffset());
  assert.equal(again.storage.firstIndex(), 91);
  await again.storage.close();
});

for (const kind of ['memfs', 'node fs'] as const) {
  s(`a follower receives a snapshot in chunks and installs it (${kind})`, async () => {
    const t = kind === 'node fs' ? tempDir() : null;
    const fs: FileSystem = t ? new NodeFileSystem() : new MemFileSystem({ prng: createPrng(3) });
    const base = t ? t.dir : 'x';
    try {
      if (!t) await fs.mkdir(base);
      const L = await leader(fs, `${base}/leader`, 200, 150);
      const { reader, meta } = await streamOf(L.storage);
      // The follower has a divergent log of its own.
      const F = (await GroupStorage.open({ fs, dir: `${base}/follower`, core: core(), options: OPTS }))
        .storage;
      F.append(entries(1, 40, () => 1));
      F.setHardState({ term: 4, vote: 1, commit: 20 });
      await F.sync();
      const w = await F.receiveSnapshot(meta);
      const prng = createPrng(9);
      while (w.received() < meta.size) {
        const n = 1 + (prng.nextU32() % 700);
        await w.write(w.received(), await reader.read(w.received(), n));
      }
      // A resent chunk is ignored; a gap is refused.
      await w.write(0, await reader.read(0, 10));
      await w.finish();
      await reader.close();
      assert.equal(F.firstIndex(), 151);
      assert.equal(F.lastIndex(), 150);
      assert.equal(F.term(150), L.storage.term(150));
      const start = L.storage.entryOffsets(151).baseOffset;
      assert.equal(F.nextOffset(), start);
      assert.deepEqual(F.hardState(), { term: 4, vote: 1, commit: 20 }, 'hard state is not the log');
      assert.ok(
        eqBytes(await readAll(F, 0, start), await readAll(L.storage, 0, start)),
        'the data below the start, byte for byte',
      );
      assert.ok(eqBytes((await F.loadSnapshot()).state!, L.state));
      // Replication continues from the leader's entries; offsets agree.
      const rest = L.storage.entries(151, 201, 1e9);
      const placed = F.append(rest.map(cloneEntry));
      for (const p of placed)
        assert.deepEqual(L.storage.entryOffsets(p.index), {
          baseOffset: p.baseOffset,
          lastOffset: p.lastOffset,
        });
      await F.sync();
      await F.close();
      const again = await GroupStorage.open({ fs, dir: `${base}/follower`, core: core(), options: OPTS });
      assert.equal(again.report.possibleLoss, null);
      assert.equal(again.storage.firstIndex(), 151);
      assert.equal(again.storage.lastIndex(), 200);
      again.storage.entries(151, 201, 1e9).forEach((e) => void assert.ok(same(e, L.copies[e.index - 1]!)));
      assert.ok(
        eqBytes(
          await readAll(again.storage, 0, again.storage.nextOffset()),
          await readAll(L.storage, 0, L.storage.nextOffset()),
        ),
      );
      await again.storage.close();
      await L.storage.close();
    } finally {
      t?.cleanup();
    }
  });
}

s('a receiver resumes after a dropped connection and after a crash', async () => {
  const fs = new MemFileSystem({ prng: createPrng(4) });
  await fs.mkdir('x');
  await fs.syncDir('');
  const L = await leader(fs, 'x/leader', 150, 120);
  const { bytes, meta } = await streamOf(L.storage);
  let F = (await GroupStorage.open({ fs, dir: 'x/f', core: core(), options: OPTS })).storage;
  let w = await F.receiveSnapshot(meta);
  await w.write(0, bytes.subarray(0, 2500));
  // Dropped connection: a new transfer for the same snapshot continues where this one is.
  w = await F.receiveSnapshot(meta);
  assert.equal(w.received(), 2500, 'the chunk passed the sync interval, so it was synced');
  await w.write(2500, bytes.subarray(2500, 5000));
  await w.write(5000, bytes.subarray(5000, 5500)); // under the sync interval: not yet synced
  // Crash: unsynced bytes are lost; the progress file says where to resume.
  fs.crash('lose');
  F = (await GroupStorage.open({ fs, dir: 'x/f', core: core(), options: OPTS })).storage;
  w = await F.receiveSnapshot(meta);
  assert.equal(w.received(), 5000, 'after a crash: resumes at the last synced point');
  await assert.rejects(
    w.write(w.received() + 1, bytes.subarray(0, 1)),
    (e: StorageError) => e.code === 'BAD_SNAPSHOT',
  );
  await w.write(w.received(), bytes.subarray(w.received()));
  await w.finish();
  assert.equal(F.firstIndex(), 121);
  // A different snapshot starts over.
  const other = await F.receiveSnapshot({ ...meta, index: meta.index + 1 });
  assert.equal(other.received(), 0);
  await other.abort();
  await F.close();
  await L.storage.close();
});

s('a bad stream is refused with a typed error and the log is untouched', async () => {
  const fs = new MemFileSystem({ prng: createPrng(5) });
  await fs.mkdir('x');
  const L = await leader(fs, 'x/leader', 150, 120);
  const { bytes, meta } = await streamOf(L.storage);
  const F = (await GroupStorage.open({ fs, dir: 'x/f', core: core(), options: OPTS })).storage;
  const own = entries(1, 20, () => 1);
  F.append(own);
  await F.sync();
  const cases: [string, (b: Uint8Array) => Uint8Array, typeof meta][] = [
    [
      'a flipped bit in the data',
      (b) => {
        const c = b.slice();
        c[c.length - 100]! ^= 4;
        return c;
      },
      meta,
    ],
    [
      'a flipped bit in the header',
      (b) => {
        const c = b.slice();
        c[20]! ^= 4;
        return c;
      },
      meta,
    ],
    ['a different snapshot', (b) => b, { ...meta, term: meta.term + 1 }],
  ];
  for (const [what, mutate, m] of cases) {
    const w = await F.receiveSnapshot(m);
    await w.write(0, mutate(bytes));
    await assert.rejects(w.finish(), (e: StorageError) => e.code === 'BAD_SNAPSHOT', what);
    await w.abort();
    assert.equal(F.firstIndex(), 1, what);
    assert.equal(F.lastIndex(), 19, what);
    assert.equal(F.entries(1, 20, 1e9).length, 19);
  }
  await assert.rejects(
    F.receiveSnapshot({ ...meta, size: 3 }).then((w) => w.finish()),
    (e: StorageError) => e.code === 'BAD_SNAPSHOT',
  );
  const w = await F.receiveSnapshot(meta);
  await assert.rejects(
    w.write(0, new Uint8Array(meta.size + 1)),
    (e: StorageError) => e.code === 'BAD_SNAPSHOT',
  );
  await assert.rejects(w.finish(), (e: StorageError) => e.code === 'BAD_SNAPSHOT');
  await w.abort();
  // Still a working log.
  F.append([normalEntry(20, 1)]);
  await F.sync();
  await F.close();
  await L.storage.close();
});

s(
  'a read by offset while an install replaces the log answers the batch holding the offset (swarm seed 1005)',
  async () => {
    // The install closes the old segments, then recovers the new generation; the simulator
    // read in between and got the tail cache's first batch instead (the consumer skipped
    // every offset below it). Here the new generation's recovery waits (its directory
    // listing, the first step after the manifest switch) while a read by offset runs.
    let installing = false;
    let armed = false;
    let release = () => {};
    let reached = () => {};
    const recovering = new Promise<void>((r) => {
      reached = r;
    });
    const fs = new MemFileSystem({
      prng: createPrng(5),
      delay: (op) => {
        if (installing && op.kind === 'rename' && op.path === 'x/f/manifest.tmp') armed = true;
        else if (armed && op.kind === 'list') {
          armed = false;
          reached();
          return new Promise((r) => {
            release = r;
          });
        }
        return undefined;
      },
    });
    await fs.mkdir('x');
    const L = await leader(fs, 'x/leader', 200, 150);
    const { reader, meta } = await streamOf(L.storage);
    // The follower's older batches are only in its files (a restart emptied the tail cache).
    const options = { ...OPTS, cacheBytes: 1 << 20 };
    const before = await GroupStorage.open({ fs, dir: 'x/f', core: core(), options });
    before.storage.append(entries(1, 40));
    await before.storage.close();
    const F = (await GroupStorage.open({ fs, dir: 'x/f', core: core(), options })).storage;
    F.append(entries(40, 45));
    await F.sync();
    const at = F.entryOffsets(5).baseOffset;
    const cacheFirst = F.entryOffsets(40).baseOffset;
    const start = L.storage.entryOffsets(151).baseOffset;
    assert.ok(at < cacheFirst && at < start, 'the offset is below the tail cache and held by both logs');
    const holds = (bytes: Uint8Array) => {
      const dv = dataView(bytes);
      return bytes.length > 0 && baseOffsetAt(dv, 0) <= at && at <= lastOffsetAt(dv, 0);
    };
    const old = (await F.read(at, { maxBytes: 1 })).bytes;
    assert.ok(holds(old));

    const w = await F.receiveSnapshot(meta);
    await w.write(0, await reader.read(0, meta.size));
    installing = true;
    const installed = w.finish();
    await recovering;
    const during = F.read(at, { maxBytes: 1 }).then(
      (r) => r.bytes,
      (e: unknown) => e,
    );
    // Let the read run as far as it can while the new generation is being recovered.
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    release();
    await installed;
    await reader.close();
    const answer = await during;
    const now = (await F.read(at, { maxBytes: 1 })).bytes;
    assert.ok(holds(now));
    assert.ok(answer instanceof Uint8Array, `the read failed: ${answer}`);
    const dv = dataView(answer);
    const got = answer.length > 0 ? `the batch at ${baseOffsetAt(dv, 0)}..${lastOffsetAt(dv, 0)}` : 'nothing';
    assert.ok(
      eqBytes(answer, old) || eqBytes(answer, now),
      `read(${at}) during the install gave ${got} (the tail cache starts at ${cacheFirst}),` +
        ` not the batch holding ${at} in either log`,
    );
    await F.close();
    await L.storage.close();
  },
);

s('a transfer in progress keeps its data while retention and compaction run', async () => {
  const fs = new MemFileSystem({ prng: createPrng(7) });
  await fs.mkdir('x');
  const L = await leader(fs, 'x/leader', 200, 170);
  const reader = await L.storage.openSnapshotReader();
  const first = await reader.read(0, 4000);
  // Retention deletes the segments the reader is sending; compaction rewrites the rest.
  const r = await L.storage.applyRetention({ maxBytes: 0, nowMs: 2_000_000_000_000 });
  assert.ok(r.removedSegments > 0);
  await L.storage.compactKeys({ nowMs: 2_000_000_000_000, deleteRetentionMs: 0 });
  const rest = await reader.read(4000, reader.size - 4000);
  const stream = Buffer.concat([first, rest]);
  await reader.close();
  const F = (await GroupStorage.open({ fs, dir: 'x/f', core: core(), options: OPTS })).storage;
  const w = await F.receiveSnapshot(reader.meta);
  await w.write(0, stream);
  await w.finish();
  assert.equal(F.firstIndex(), 171);
  assert.equal(F.logStartOffset(), 0, 'the snapshot as it was when the transfer began');
  await F.close();
  await L.storage.close();
});

s('install is atomic at every crash point', async () => {
  // The stream, made once on its own file system.
  const lfs = new MemFileSystem({ prng: createPrng(6) });
  const L = await leader(lfs, 'leader', 90, 70);
  const { bytes, meta } = await streamOf(L.storage);
  const start = L.storage.entryOffsets(71).baseOffset;
  const leaderData = await readAll(L.storage, 0, start);
  const own = entries(1, 25, () => 1);
  const run = async (fs: MemFileSystem, done: { installed: boolean }): Promise<void> => {
    try {
      const F = (await open(fs, OPTS)).storage;
      F.append(own.map(cloneEntry));
      await F.sync();
      const w = await F.receiveSnapshot(meta);
      for (let at = 0; at < bytes.length; at += 900) await w.write(at, bytes.subarray(at, at + 900));
      await w.finish();
      done.installed = true;
      await F.close();
    } catch {
      // crashed
    }
  };
  const probe = new MemFileSystem({ prng: createPrng(1) });
  await run(probe, { installed: false });
  const steps = probe.steps;
  for (let k = 0; k <= steps; k++) {
    for (const mode of CRASH_MODES) {
      const fs = new MemFileSystem({ prng: createPrng(k * 3 + mode.length) });
      fs.armCrash(k);
      const done = { installed: false };
      await run(fs, done);
      fs.crash(mode);
      const { storage, report } = await open(fs, OPTS);
      const label = `crash before step ${k}/${steps} (${mode})`;
      assert.equal(report.possibleLoss, null, `${label}: ${JSON.stringify(report.possibleLoss)}`);
      if (storage.firstIndex() === 71) {
        assert.equal(storage.lastIndex(), 70, label);
        assert.ok(eqBytes(await readAll(storage, 0, start), leaderData), `${label}: installed data differs`);
      } else {
        assert.ok(!done.installed, `${label}: an acknowledged install was lost`);
        assert.equal(storage.firstIndex(), 1, label);
        // The old log: whatever prefix of it was durable, unharmed.
        storage
          .entries(1, storage.lastIndex() + 1, 1e9)
          .forEach((e) => void assert.ok(same(e, own[e.index - 1]!), label));
      }
      await storage.close();
    }
  }
  await L.storage.close();
});

s.run();
