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
// Besides the two written workloads, CAIRN_STORAGE_CRASH_WORKLOADS (default 12) seeded
// random workloads run the same enumeration; CAIRN_STORAGE_CRASH_SEEDS (default 1) reruns
// each crash point with more seeds for the random choices of 'torn' and 'reorder'.
// (A run of 200 workloads x 3 seeds, 404 tests, passed in 335 s.)
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
  /** Every hard state handed to storage, in order, with the storage instance and version it got. */
  hsLog: { instance: number; version: number; hs: HardState }[] = [
    { instance: 0, version: 0, hs: { term: 0, vote: 0, commit: 0 } },
  ];
  /** hsLog[ackedHs] was reported durable (0: the initial, empty state). */
  ackedHs = 0;
  instance = 0;
  ackedFirstIndex = 1;
  ackedLogStart = 0;
  snapshotTerms = new Map<number, number>([[0, 0]]);

  attach(storage: GroupStorage): void {
    // What open read back is durable (open fsyncs it) and is where this instance starts.
    this.instance++;
    const instance = this.instance;
    this.hsLog.push({ instance, version: 0, hs: storage.hardState() });
    this.ackedHs = this.hsLog.length - 1;
    storage.onDurable((d) => {
      if (d.index > this.ackedIndex || this.acked.length !== d.index) {
        this.ackedIndex = d.index;
        this.acked = this.log.slice(0, d.index);
      }
      const at = this.hsLog.findIndex((h) => h.instance === instance && h.version === d.hardStateVersion);
      if (at > this.ackedHs) this.ackedHs = at;
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
    const last = this.hsLog[this.hsLog.length - 1]!;
    if (last.instance !== this.instance || last.version !== v)
      this.hsLog.push({ instance: this.instance, version: v, hs: { ...hs } });
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
    rec.snapshotTerms.set(10, 1);
    await storage.saveSnapshot(
      { index: 10, term: 1, conf: { voters: [1, 2, 3], learners: [] } },
      new Uint8Array([1, 2, 3]),
    );
    rec.ackedFirstIndex = 11;
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

/**
 * The racy workload: disk writes and fsyncs take a few turns (the delay hook), and the
 * driver appends and truncates while they are in flight: a truncation below bytes being
 * written, appends over it, a roll, hard-state changes in between.
 */
async function racyWorkload(fs: MemFileSystem, rec: Recorder): Promise<void> {
  try {
    const { storage } = await open(fs, OPTIONS);
    rec.attach(storage);
    const turn = () => new Promise((r) => setImmediate(r));
    rec.append(
      storage,
      entries(1, 11, () => 1),
    );
    await turn(); // the flush starts; its write is in flight
    rec.append(
      storage,
      entries(11, 16, () => 1),
    );
    rec.truncate(storage, 8); // below bytes being written
    rec.setHardState(storage, { term: 2, vote: 2, commit: 5 });
    rec.append(
      storage,
      entries(8, 21, () => 2, { valueBytes: 70 }),
    );
    await turn();
    await turn();
    rec.truncate(storage, 18);
    rec.append(
      storage,
      entries(18, 30, () => 3, { valueBytes: 70 }),
    );
    await turn();
    rec.setHardState(storage, { term: 3, vote: 1, commit: 17 });
    await storage.sync();
    rec.truncate(storage, 12); // across segments, nothing in flight
    rec.append(
      storage,
      entries(12, 16, () => 4),
    );
    await storage.sync();
    await storage.close();
  } catch {
    // The machine stopped.
  }
}

/**
 * A seeded random workload: appends of 1-6 entries (sometimes in a new term),
 * truncations, hard-state changes, turns, syncs, snapshots at a durable index,
 * retention, key compaction and reopens, in a random order.
 */
function randomWorkload(seed: number) {
  return async (fs: MemFileSystem, rec: Recorder): Promise<void> => {
    const prng = createPrng(seed);
    const pick = (n: number) => prng.nextU32() % n;
    try {
      let { storage } = await open(fs, OPTIONS);
      rec.attach(storage);
      let term = 1;
      for (let step = 0; step < 40; step++) {
        const last = storage.lastIndex();
        switch (pick(10)) {
          case 0:
          case 1:
          case 2: {
            if (pick(4) === 0) term++;
            const n = 1 + pick(6);
            rec.append(
              storage,
              entries(last + 1, last + 1 + n, () => term, { valueBytes: 10 + pick(120) }),
            );
            break;
          }
          case 3:
            if (last >= storage.firstIndex()) {
              rec.truncate(storage, storage.firstIndex() + pick(last - storage.firstIndex() + 1));
              term++;
            }
            break;
          case 4:
            rec.setHardState(storage, { term, vote: pick(4), commit: pick(last + 1) });
            break;
          case 5:
            await new Promise((r) => setImmediate(r));
            break;
          case 6:
            await storage.sync();
            break;
          case 7: {
            await storage.sync();
            const at = storage.firstIndex() - 1 + pick(storage.lastIndex() - storage.firstIndex() + 2);
            if (at >= storage.firstIndex()) {
              const t = storage.term(at)!;
              rec.snapshotTerms.set(at, t); // it may take effect even if the call does not return
              await storage.saveSnapshot(
                { index: at, term: t, conf: { voters: [1], learners: [] } },
                new Uint8Array([at]),
              );
              rec.ackedFirstIndex = Math.max(rec.ackedFirstIndex, at + 1);
            }
            break;
          }
          case 8: {
            const r = await storage.applyRetention({ maxBytes: pick(3000), nowMs: 2_000_000_000_000 });
            rec.ackedLogStart = Math.max(rec.ackedLogStart, r.logStartOffset);
            if (pick(2) === 0) await storage.compactKeys({ nowMs: 2_000_000_000_000, deleteRetentionMs: 1 });
            break;
          }
          case 9:
            await storage.close();
            ({ storage } = await open(fs, OPTIONS));
            rec.attach(storage);
            break;
        }
      }
      await storage.sync();
      await storage.close();
    } catch {
      // The machine stopped.
    }
  };
}

/** Writes and fsyncs complete two turns after they start (the simulator would use its clock). */
function slowDisk(op: { kind: string }): Promise<void> | undefined {
  if (op.kind !== 'write' && op.kind !== 'sync') return undefined;
  return new Promise((r) => setImmediate(() => setImmediate(r)));
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
  const allowed = rec.hsLog.slice(rec.ackedHs).map((h) => h.hs);
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

const RANDOM_SEEDS = Number(process.env.CAIRN_STORAGE_CRASH_WORKLOADS ?? 12);
const WORKLOADS: {
  name: string;
  run: typeof workload;
  entries: number | null;
  delay: typeof slowDisk | undefined;
}[] = [
  { name: 'workload', run: workload, entries: 29, delay: undefined },
  { name: 'racy workload', run: racyWorkload, entries: 15, delay: slowDisk },
];
for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
  WORKLOADS.push({
    name: `random workload ${seed}`,
    run: randomWorkload(seed),
    entries: null,
    delay: seed % 2 ? slowDisk : undefined,
  });
}

for (const w of WORKLOADS) {
  test(`the ${w.name} runs to the end without a crash, deterministically`, async () => {
    const counts: number[] = [];
    for (let run = 0; run < 2; run++) {
      const fs = new MemFileSystem({ prng: createPrng(7), delay: w.delay });
      const rec = new Recorder();
      await w.run(fs, rec);
      if (w.entries !== null) assert.equal(rec.log.length, w.entries);
      counts.push(fs.steps);
      await verify(fs, rec, 'no crash');
    }
    assert.equal(counts[0], counts[1], 'the step count must not vary between runs');
    assert.ok(counts[0]! > 40, `expected a long workload, got ${counts[0]} steps`);
  });

  test(`${w.name}: crash before every mutating step, in every unsynced-loss mode`, async () => {
    const probe = new MemFileSystem({ prng: createPrng(7), delay: w.delay });
    await w.run(probe, new Recorder());
    const steps = probe.steps;
    let runs = 0;
    for (let k = 0; k <= steps; k++) {
      for (const mode of CRASH_MODES as CrashMode[]) {
        for (let seed = 0; seed < (mode === 'lose' ? 1 : SEEDS); seed++) {
          const fs = new MemFileSystem({
            prng: createPrng(1000 * k + 17 * seed + mode.length),
            delay: w.delay,
          });
          fs.armCrash(k);
          const rec = new Recorder();
          await w.run(fs, rec);
          assert.ok(k === steps || fs.isFrozen, `step ${k}: the crash point was not reached`);
          fs.crash(mode);
          await verify(fs, rec, `${w.name}: crash before step ${k}/${steps} (${mode}, seed ${seed})`);
          runs++;
        }
      }
    }
    assert.ok(runs >= 3 * steps);
  });
}

test.run();
