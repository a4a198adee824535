// Retention and key compaction: whole segments below the snapshot go by size and by age;
// compaction keeps the latest record of every key at its offset, drops tombstones after
// the delete-retention time, never resurrects a deleted or overwritten value, leaves the
// Raft log above the snapshot alone, does not block appends, and survives a crash at
// every step. Rewritten batches are checked by an independent decoder (kafkajs).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { suite } from 'uvu';
import { createCorePool } from '../../../core-wasm/src/index.js';
import type { Entry } from '../../../raft/src/types.js';
import {
  CRASH_MODES,
  createPrng,
  type GroupStorage,
  MemFileSystem,
  NodeFileSystem,
  type StorageError,
} from '../../src/storage/index.js';
import { cloneEntry, core, eqBytes, open, payload, tempDir, unstamped } from './helpers.js';

const require = createRequire(import.meta.url);
const kafkaDecode = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: unknown) => Promise<{
  firstOffset: string;
  lastOffsetDelta: number;
  records: { offset: string; key: Buffer | null; value: Buffer | null }[];
}>;
const KafkaDecoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => unknown;

const OPTS = { segmentBytes: 1200, indexIntervalBytes: 200, cacheBytes: 1 };
const NOW = 1_800_000_000_000;
const DAY = 86_400_000;
const utf8 = new TextEncoder();
const text = new TextDecoder();

interface Rec {
  key: string;
  value: string | null;
  ts: number;
}

/** Records of entry `index`: keys from a small set, some tombstones, old and new timestamps. */
function recordsOf(index: number): Rec[] {
  const out: Rec[] = [];
  const n = 1 + (index % 4);
  for (let r = 0; r < n; r++) {
    const k = (index * 5 + r * 3) % 13;
    const tomb = (index + r) % 11 === 0;
    // Early entries are old (their tombstones expire), later ones recent.
    const ts = index < 40 ? NOW - 10 * DAY + index : NOW - 1000 + index;
    out.push({
      key: `key-${k}`,
      value: tomb ? null : `v${index}.${r}-${text.decode(payload(index, r, 6).map((b) => 97 + (b % 26)))}`,
      ts,
    });
  }
  // Keys that end deleted: long ago (the tombstone expires) and recently (it stays).
  if (index < 30) out.push({ key: `gone-${index % 5}`, value: `g${index}`, ts: NOW - 10 * DAY + index });
  else if (index < 40) out.push({ key: `gone-${index % 5}`, value: null, ts: NOW - 10 * DAY + index });
  if (index >= 50 && index < 60)
    out.push({ key: `late-${index % 3}`, value: `l${index}`, ts: NOW - 1000 + index });
  else if (index >= 60 && index < 66)
    out.push({ key: `late-${index % 3}`, value: null, ts: NOW - 1000 + index });
  return out;
}

function keyedEntry(index: number, term: number, compression: 'none' | 'gzip' | 'lz4' = 'none'): Entry {
  const data = core().encodeBatch(
    recordsOf(index).map((r) => ({
      key: utf8.encode(r.key),
      value: r.value === null ? null : utf8.encode(r.value),
      timestamp: r.ts,
    })),
    { compression },
  );
  return { index, term, type: 'normal', data };
}

const codecOf = (i: number) => (['none', 'gzip', 'lz4'] as const)[i % 3]!;

/** Offset → record, for every record appended. */
type Model = Map<number, Rec>;

async function fill(
  storage: GroupStorage,
  n: number,
  snapshotAt: number,
): Promise<{ model: Model; raft: Entry[] }> {
  const es: Entry[] = [];
  for (let i = 1; i <= n; i++) es.push(keyedEntry(i, 1 + Math.floor(i / 30), codecOf(i)));
  const copies = es.map(cloneEntry);
  const placed = storage.append(es);
  const model: Model = new Map();
  placed.forEach((p, k) => {
    recordsOf(k + 1).forEach((r, j) => {
      model.set(p.baseOffset + j, r);
    });
  });
  await storage.sync();
  await storage.saveSnapshot(
    { index: snapshotAt, term: storage.term(snapshotAt)!, conf: { voters: [1], learners: [] } },
    null,
  );
  return { model, raft: copies.slice(snapshotAt) };
}

/** Every record stored below `end`, decoded (offset, key, value), plus the raw batches. */
async function storedRecords(
  storage: GroupStorage,
  end: number,
): Promise<{ recs: Map<number, Rec>; batches: Uint8Array[] }> {
  const recs = new Map<number, Rec>();
  const batches: Uint8Array[] = [];
  let offset = storage.logStartOffset();
  while (offset < end) {
    const r = await storage.read(offset, { endOffset: end });
    if (r.bytes.length === 0) break;
    const dv = new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    for (let p = 0; p < r.bytes.length; ) {
      const size = 12 + dv.getInt32(p + 8);
      const b = r.bytes.subarray(p, p + size);
      batches.push(b);
      if ((dv.getInt16(p + 21) & 0x20) === 0) {
        for (const rec of core().decodeRecords(b)) {
          assert.ok(!recs.has(rec.offset), `offset ${rec.offset} appears twice`);
          recs.set(rec.offset, {
            key: text.decode(rec.key!),
            value: rec.value ? text.decode(rec.value) : null,
            ts: rec.timestamp,
          });
        }
      }
      p += size;
    }
    offset = r.nextOffset;
  }
  return { recs, batches };
}

/** The latest record of each key among offsets below `end` in the model. */
function latestByKey(model: Model, end: number): Map<string, [number, Rec]> {
  const out = new Map<string, [number, Rec]>();
  for (const [o, r] of [...model].sort((a, b) => a[0] - b[0])) if (o < end) out.set(r.key, [o, r]);
  return out;
}

/** No stored record differs from what was appended at its offset; no key resolves to a stale value. */
function checkNoResurrection(model: Model, stored: Map<number, Rec>, end: number, label: string): void {
  for (const [o, r] of stored) {
    const m = model.get(o);
    assert.ok(
      m && m.key === r.key && m.value === r.value,
      `${label}: offset ${o} holds a record never written there`,
    );
  }
  const storedLatest = latestByKey(stored, end);
  for (const [key, [o, r]] of latestByKey(model, end)) {
    const got = storedLatest.get(key);
    if (r.value === null) {
      // A deleted key: its tombstone, or nothing (the tombstone expired) — never an older value.
      assert.ok(!got || got[0] === o, `${label}: deleted ${key} resurrected from offset ${got?.[0]}`);
    } else {
      assert.ok(
        got && got[0] === o,
        `${label}: the latest value of ${key} (offset ${o}) is missing; found ${got?.[0]}`,
      );
    }
  }
}

const c = suite('retention and compaction');

c('retention by size and by age deletes whole segments below the snapshot only', async () => {
  const fs = new MemFileSystem({ prng: createPrng(1) });
  const { storage } = await open(fs, OPTS);
  const { raft } = await fill(storage, 120, 80);
  const segs = storage.describeSegments();
  const startOffset = storage.entryOffsets(81).baseOffset;
  // Age: nothing is older than 20 days.
  let r = await storage.applyRetention({ maxAgeMs: 20 * DAY, nowMs: NOW });
  assert.equal(r.removedSegments, 0);
  // Age: segments whose newest batch is older than 5 days (entries < 40).
  r = await storage.applyRetention({ maxAgeMs: 5 * DAY, nowMs: NOW });
  assert.ok(r.removedSegments > 0);
  assert.equal(storage.logStartOffset(), storage.describeSegments()[0]!.baseOffset);
  await assert.rejects(storage.read(0), (e: StorageError) => e.code === 'OFFSET_OUT_OF_RANGE');
  // Size 0: everything below the Raft log start may go, nothing at or above it.
  r = await storage.applyRetention({ maxBytes: 0, nowMs: NOW });
  const left = storage.describeSegments();
  assert.ok(left.length < segs.length);
  assert.ok(
    left[0]!.baseOffset <= startOffset && (left[1]?.baseOffset ?? Number.POSITIVE_INFINITY) > startOffset,
  );
  storage.entries(81, 121, 1e9).forEach((e, k) => void assert.ok(eqBytes(unstamped(e), unstamped(raft[k]!))));
  await storage.close();
  const again = await open(fs, OPTS);
  assert.equal(again.report.possibleLoss, null);
  assert.equal(again.storage.logStartOffset(), storage.logStartOffset());
  await again.storage.close();
});

for (const kind of ['memfs', 'node fs', 'memfs + pool'] as const) {
  c(`key compaction keeps the latest value of every key at its offset (${kind})`, async () => {
    const t = kind === 'node fs' ? tempDir() : null;
    const pool = kind === 'memfs + pool' ? createCorePool({ maxThreads: 1 }) : undefined;
    try {
      const fs = t ? new NodeFileSystem() : new MemFileSystem({ prng: createPrng(2) });
      const dir = t ? `${t.dir}/g` : 'group';
      const opts = pool ? { ...OPTS, poolMinBytes: 1 } : OPTS;
      const { storage } = await open(fs, opts, { dir, ...(pool ? { pool } : {}) });
      const { model, raft } = await fill(storage, 150, 110);
      const end = storage.entryOffsets(111).baseOffset;
      const before = await storedRecords(storage, end);
      const bytesBefore = before.batches.reduce((n, b) => n + b.length, 0);
      const res = await storage.compactKeys({ nowMs: NOW, deleteRetentionMs: DAY });
      assert.ok(res.segmentsRewritten > 0);
      assert.ok(
        res.recordsRemoved > 0 && res.tombstonesRemoved > 0 && res.batchesRemoved > 0,
        JSON.stringify(res),
      );
      const after = await storedRecords(storage, end);
      const bytesAfter = after.batches.reduce((n, b) => n + b.length, 0);
      assert.ok(bytesAfter < bytesBefore / 2, `compaction shrank ${bytesBefore} to ${bytesAfter}`);
      checkNoResurrection(model, after.recs, end, kind);
      // Exactly the latest records remain, minus tombstones older than a day.
      const horizon = NOW - DAY;
      const expected = [...latestByKey(model, end).values()]
        .filter(([, r]) => r.value !== null || r.ts >= horizon)
        .map(([o]) => o);
      assert.deepEqual(
        [...after.recs.keys()].sort((a, b) => a - b),
        expected.sort((a, b) => a - b),
      );
      // Every batch is valid for the core and for kafkajs, with its original last offset.
      const lastOffsets = new Set(
        before.batches.map(
          (b) =>
            new DataView(b.buffer, b.byteOffset).getUint32(4) +
            new DataView(b.buffer, b.byteOffset).getInt32(23),
        ),
      );
      for (const b of after.batches) {
        assert.equal(core().scanBatches(b).validBytes, b.length);
        const dv = new DataView(b.buffer, b.byteOffset);
        if ((dv.getInt16(21) & 7) === 3) continue; // kafkajs ships no LZ4 codec
        const k = await kafkaDecode(new KafkaDecoder(Buffer.from(b)));
        assert.ok(
          lastOffsets.has(Number(k.firstOffset) + k.lastOffsetDelta),
          'a rewritten batch ends where it did',
        );
        for (const rec of k.records) {
          const m = model.get(Number(rec.offset))!;
          assert.equal(rec.key?.toString(), m.key);
          assert.equal(rec.value === null ? null : rec.value.toString(), m.value);
        }
      }
      // The Raft log above the snapshot is untouched.
      storage
        .entries(111, 151, 1e9)
        .forEach((e, k) => void assert.ok(eqBytes(unstamped(e), unstamped(raft[k]!))));
      // A second pass finds nothing to do; a reopen sees the same data.
      const again = await storage.compactKeys({ nowMs: NOW, deleteRetentionMs: DAY });
      assert.equal(again.segmentsRewritten, 0);
      await storage.close();
      const re = await open(fs, opts, { dir, ...(pool ? { pool } : {}) });
      assert.equal(re.report.possibleLoss, null);
      const reread = await storedRecords(re.storage, end);
      assert.deepEqual([...reread.recs.keys()], [...after.recs.keys()]);
      await re.storage.close();
    } finally {
      await pool?.destroy();
      t?.cleanup();
    }
  });
}

c('compaction does not block appends', async () => {
  const fs = new MemFileSystem({ prng: createPrng(3) });
  const { storage } = await open(fs, OPTS);
  await fill(storage, 150, 110);
  const compaction = storage.compactKeys({ nowMs: NOW, deleteRetentionMs: DAY });
  const appended: number[] = [];
  for (let i = 151; i <= 170; i++) {
    storage.append([keyedEntry(i, 9)]);
    await storage.whenDurable(i);
    appended.push(i);
  }
  const res = await compaction;
  assert.equal(appended.length, 20);
  assert.ok(res.segmentsRewritten > 0);
  assert.equal(storage.lastIndex(), 170);
  await storage.close();
});

c('compaction survives a crash at every step', async () => {
  const setup = async (fs: MemFileSystem) => {
    const { storage } = await open(fs, OPTS);
    const r = await fill(storage, 90, 70);
    const end = storage.entryOffsets(71).baseOffset;
    await storage.close();
    return { ...r, end };
  };
  const compact = async (fs: MemFileSystem): Promise<boolean> => {
    try {
      const { storage } = await open(fs, OPTS);
      await storage.compactKeys({ nowMs: NOW, deleteRetentionMs: DAY });
      await storage.close();
      return true;
    } catch {
      return false;
    }
  };
  const probe = new MemFileSystem({ prng: createPrng(1) });
  await setup(probe);
  const from = probe.steps;
  assert.ok(await compact(probe));
  const steps = probe.steps - from;
  for (let k = 0; k <= steps; k++) {
    for (const mode of CRASH_MODES) {
      const fs = new MemFileSystem({ prng: createPrng(31 * k + mode.length) });
      const { model, end } = await setup(fs);
      fs.armCrash(fs.steps + k);
      await compact(fs);
      fs.crash(mode);
      const label = `crash before compaction step ${k}/${steps} (${mode})`;
      const { storage, report } = await open(fs, OPTS);
      assert.equal(report.possibleLoss, null, `${label}: ${JSON.stringify(report.possibleLoss)}`);
      assert.equal(storage.firstIndex(), 71, label);
      const stored = await storedRecords(storage, end);
      checkNoResurrection(model, stored.recs, end, label);
      // And compaction can finish afterwards.
      await storage.compactKeys({ nowMs: NOW, deleteRetentionMs: DAY });
      checkNoResurrection(model, (await storedRecords(storage, end)).recs, end, `${label}, then compacted`);
      await storage.close();
    }
  }
});

c.run();
