// Crash at every point. A workload (appends across turns and segment rolls, hard-state
// changes, a conflicting suffix truncation, a snapshot that moves the log start, a
// reopen, retention, a truncation across segments) runs on the in-memory file system;
// it is run once per mutating step k (every write, fsync, create, rename, remove,
// directory fsync: enumerated, not sampled) with the machine stopped just before step k,
// then crashed in each unsynced-loss mode ('lose', 'torn', 'reorder'). After reopening:
// - nothing is reported damaged (a crash is not corruption);
// - every entry reported durable is there, byte for byte, with its offsets;
// - the log is a valid prefix of a log that existed during the run;
// - the hard state is the one reported durable or a later one;
// - the log start is where a completed snapshot/retention put it, or later;
// - the log keeps working: more appends, a reopen, and everything is still there.
//
// CAIRN_STORAGE_CRASH_SEEDS (default 1) reruns each crash point with more seeds for the
// random choices of 'torn' and 'reorder'.
import assert from 'node:assert/strict';
import { test } from 'uvu';
import type { Entry, HardState } from '../../../raft/src/types.js';
import {
  CRASH_MODES,
  type CrashMode,
  createPrng,
  type GroupStorage,
  MemFileSystem,
} from '../../src/storage/index.js';
import { cloneEntry, entries, eqBytes, normalEntry, open } from './helpers.js';

const OPTIONS = { segmentBytes: 1500, indexIntervalBytes: 200, cacheBytes: 2000 };
const SEEDS = Number(process.env.CAIRN_STORAGE_CRASH_SEEDS ?? 1);

interface ModelEntry {
  entry: Entry; // an unstamped copy
  baseOffset: number;
  lastOffset: number;
}

/** What the workload did and what the storage acknowledged. */
class Recorder {
  log: ModelEntry[] = []; // log[i - 1] is entry i
  history: ModelEntry[][] = [[]];
  ackedIndex = 0;
  acked: ModelEntry[] = [];
  hsByVersion = new Map<number, HardState>();
  ackedHs: HardState | null = null;
  laterHs: HardState[] = [];
  ackedFirstIndex = 1;
  ackedLogStart = 0;
  snapshotTerms = new Map<number, number>([[0, 0]]);

  attach(storage: GroupStorage): void {
    this.hsByVersion = new Map([[0, storage.hardState()]]);
    storage.onDurable((d) => {
      if (d.index > this.ackedIndex || this.acked.length !== d.index) {
        this.ackedIndex = d.index;
        this.acked = this.log.slice(0, d.index);
      }
      const hs = this.hsByVersion.get(d.hardStateVersion);
      if (hs && d.hardStateVersion > 0) {
        this.ackedHs = hs;
        this.laterHs = [];
      }
    });
  }

  append(storage: GroupStorage, es: Entry[]): void {
    const copies = es.map(cloneEntry);
    const placed = storage.append(es);
    placed.forEach((p, k) => {
      this.log.push({ entry: copies[k]!, baseOffset: p.baseOffset, lastOffset: p.lastOffset });
    });
    this.history.push(this.log.slice());
  }

  truncate(storage: GroupStorage, index: number): void {
    storage.truncateSuffix(index);
    this.log.length = index - 1;
    // The driver asked for the suffix to go: it is no longer owed.
    if (this.ackedIndex > index - 1) {
      this.ackedIndex = index - 1;
      this.acked = this.acked.slice(0, index - 1);
    }
    this.history.push(this.log.slice());
  }

  setHardState(storage: GroupStorage, hs: HardState): void {
    const v = storage.setHardState(hs);
    this.hsByVersion.set(v, { ...hs });
    this.laterHs.push({ ...hs });
  }
}

/** The workload. Stops quietly when the machine "crashes" under it. */
async function workload(fs: MemFileSystem, rec: Recorder): Promise<void> {
  try {
    let { storage } = await open(fs, OPTIONS);
    rec.attach(storage);
    const turn = () => new Promise((r) => setImmediate(r));
    // Term 1: appends over several turns, some without waiting for durability.
    rec.append(
      storage,
      entries(1, 6, () => 1),
    );
    await turn();
    rec.setHardState(storage, { term: 1, vote: 1, commit: 3 });
    rec.append(
      storage,
      entries(6, 11, () => 1),
    );
    rec.append(
      storage,
      entries(11, 15, () => 1),
    );
    await storage.sync();
    // A conflict: the suffix from 12 is replaced by term-2 entries (a new leader).
    rec.truncate(storage, 12);
    rec.setHardState(storage, { term: 2, vote: 3, commit: 10 });
    rec.append(
      storage,
      entries(12, 20, (i) => (i < 13 ? 2 : 2)),
    );
    await storage.sync();
    // A snapshot at 10 moves the log start; appends continue across segment rolls.
    await storage.saveSnapshot(
      { index: 10, term: 1, conf: { voters: [1, 2, 3], learners: [] } },
      new Uint8Array([1, 2, 3]),
    );
    rec.ackedFirstIndex = 11;
    rec.snapshotTerms.set(10, 1);
    rec.append(
      storage,
      entries(20, 28, () => 2, { valueBytes: 60 }),
    );
    await turn();
    rec.append(
      storage,
      entries(28, 33, () => 3),
    );
    await storage.sync();
    // Reopen (recovery runs inside the enumeration too).
    await storage.close();
    ({ storage } = await open(fs, OPTIONS));
    rec.attach(storage);
    // Retention below the snapshot, then a truncation reaching back across segments.
    const ret = await storage.applyRetention({ maxBytes: 0, nowMs: 2_000_000_000_000 });
    rec.ackedLogStart = Math.max(rec.ackedLogStart, ret.logStartOffset);
    rec.truncate(storage, 22);
    rec.append(
      storage,
      entries(22, 30, () => 4),
    );
    rec.setHardState(storage, { term: 4, vote: 0, commit: 21 });
    await storage.sync();
    await storage.close();
  } catch {
    // The machine stopped: the storage failed its pending work, as a crashed process would.
  }
}

function sameStored(got: Entry, want: ModelEntry): boolean {
  if (got.type !== want.entry.type || got.term !== want.entry.term || got.index !== want.entry.index)
    return false;
  if (got.type !== 'normal') return eqBytes(got.data, want.entry.data);
  // Byte for byte: the model's bytes, stamped as storage must have stamped them.
  const expected = want.entry.data.slice();
  const dv = new DataView(expected.buffer);
  dv.setUint32(0, Math.floor(want.baseOffset / 2 ** 32));
  dv.setUint32(4, want.baseOffset >>> 0);
  dv.setInt32(12, want.entry.term);
  return eqBytes(got.data, expected);
}

async function verify(fs: MemFileSystem, rec: Recorder, label: string): Promise<void> {
  const { storage, report } = await open(fs, OPTIONS);
  assert.equal(
    report.possibleLoss,
    null,
    `${label}: a crash was reported as damage: ${JSON.stringify(report.possibleLoss)}`,
  );
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  assert.ok(
    first >= rec.ackedFirstIndex,
    `${label}: log start ${first} went back before a completed snapshot`,
  );
  assert.ok(storage.logStartOffset() >= rec.ackedLogStart, `${label}: log start offset went back`);
  assert.ok(last >= rec.ackedIndex, `${label}: lastIndex ${last} < durable ${rec.ackedIndex}`);
  assert.equal(storage.term(first - 1), rec.snapshotTerms.get(first - 1), `${label}: term(firstIndex - 1)`);
  const got = storage.entries(first, last + 1, Number.POSITIVE_INFINITY);
  assert.equal(got.length, last - first + 1, `${label}: entries() returned ${got.length}`);
  // Everything acknowledged is there, byte for byte, at its offsets.
  for (const e of got) {
    if (e.index > rec.ackedIndex) break;
    assert.ok(sameStored(e, rec.acked[e.index - 1]!), `${label}: durable entry ${e.index} differs`);
    const offs = storage.entryOffsets(e.index);
    assert.equal(offs.baseOffset, rec.acked[e.index - 1]!.baseOffset, `${label}: entry ${e.index} offset`);
  }
  // The log is a prefix of some log that existed.
  const matches = rec.history.some(
    (h) => h.length >= last && got.every((e) => sameStored(e, h[e.index - 1]!)),
  );
  assert.ok(matches, `${label}: recovered log [${first}, ${last}] is not a prefix of any log that existed`);
  // Hard state: the acknowledged one or a later one.
  const hs = storage.hardState();
  const allowed = rec.ackedHs
    ? [rec.ackedHs, ...rec.laterHs]
    : [{ term: 0, vote: 0, commit: 0 }, ...rec.laterHs, ...rec.hsByVersion.values()];
  assert.ok(
    allowed.some((a) => a.term === hs.term && a.vote === hs.vote && a.commit === hs.commit),
    `${label}: hard state ${JSON.stringify(hs)} is neither the durable one nor a later one`,
  );
  // Offsets are contiguous across the Raft log.
  for (let i = 1; i < got.length; i++) {
    const a = storage.entryOffsets(got[i - 1]!.index);
    const b = storage.entryOffsets(got[i]!.index);
    assert.equal(b.baseOffset, a.lastOffset + 1, `${label}: offsets jump at entry ${got[i]!.index}`);
  }
  // The log keeps working after recovery.
  const t = Math.max(storage.term(last) ?? 0, 5);
  const more = [normalEntry(last + 1, t), normalEntry(last + 2, t)];
  const copies = more.map(cloneEntry);
  storage.append(more);
  await storage.sync();
  await storage.close();
  const again = await open(fs, OPTIONS);
  assert.equal(again.report.possibleLoss, null, `${label}: damage after the second reopen`);
  assert.equal(again.storage.lastIndex(), last + 2, `${label}: appends after recovery were lost`);
  const tail = again.storage.entries(last + 1, last + 3, Number.POSITIVE_INFINITY);
  assert.ok(
    eqBytes(tail[1]!.data.subarray(16), copies[1]!.data.subarray(16)),
    `${label}: appended entry differs`,
  );
  await again.storage.close();
}

test('the workload runs to the end without a crash, deterministically', async () => {
  const counts: number[] = [];
  for (let run = 0; run < 2; run++) {
    const fs = new MemFileSystem({ prng: createPrng(7) });
    const rec = new Recorder();
    await workload(fs, rec);
    assert.equal(rec.log.length, 29);
    counts.push(fs.steps);
    await verify(fs, rec, 'no crash');
  }
  assert.equal(counts[0], counts[1], 'the step count must not vary between runs');
  assert.ok(counts[0]! > 80, `expected a long workload, got ${counts[0]} steps`);
});

test('crash before every mutating step, in every unsynced-loss mode', async () => {
  const probe = new MemFileSystem({ prng: createPrng(7) });
  await workload(probe, new Recorder());
  const steps = probe.steps;
  let runs = 0;
  for (let k = 0; k <= steps; k++) {
    for (const mode of CRASH_MODES as CrashMode[]) {
      for (let seed = 0; seed < (mode === 'lose' ? 1 : SEEDS); seed++) {
        const fs = new MemFileSystem({ prng: createPrng(1000 * k + 17 * seed + mode.length) });
        fs.armCrash(k);
        const rec = new Recorder();
        await workload(fs, rec);
        assert.ok(k === steps || fs.isFrozen, `step ${k}: the crash point was not reached`);
        fs.crash(mode);
        await verify(fs, rec, `crash before step ${k}/${steps} (${mode}, seed ${seed})`);
        runs++;
      }
    }
  }
  assert.ok(runs >= 3 * steps);
});

test.run();
