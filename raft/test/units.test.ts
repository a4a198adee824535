// Unit tests for the pieces other parts reuse: MemoryLog, the config entry encoding, the
// PRNG, the Inflights ring and the quorum arithmetic; and the small input hooks.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  applyConfChange,
  createPrng,
  decodeConfState,
  encodeConfState,
  MemoryLog,
  RaftError,
  resolveOptions,
} from '../src/index.js';
import { Inflights } from '../src/progress.js';
import { quorumValue } from '../src/quorum.js';
import { appendOk, bytes, Cluster, entriesOf, Solo } from './harness.js';

const isRaftError = (code: string) => (e: unknown) => e instanceof RaftError && e.code === code;

test('MemoryLog: append, term, entries within a byte budget (always at least one)', () => {
  const log = new MemoryLog();
  assert.is(log.firstIndex(), 1);
  assert.is(log.lastIndex(), 0);
  assert.is(log.term(0), 0);
  log.append(entriesOf([1, 1, 2, 3])); // data "1/1" … 3 bytes each
  assert.is(log.lastIndex(), 4);
  assert.is(log.term(3), 2);
  assert.is(log.term(5), undefined);
  assert.equal(
    log.entries(1, 5, 6).map((e) => e.index),
    [1, 2],
  );
  assert.equal(
    log.entries(2, 5, 0).map((e) => e.index),
    [2],
  );
  assert.equal(log.entries(3, 3, 100), []);
  assert.throws(() => log.append(entriesOf([3], 6)), isRaftError('invalidInput'));
  assert.throws(() => log.entries(0, 2, 10), isRaftError('invalidInput'));
});

test('MemoryLog: truncate, write, compact and install keep indexes and terms straight', () => {
  const log = new MemoryLog();
  log.append(entriesOf([1, 1, 1, 1, 1]));
  log.write({ truncateFrom: 4, entries: entriesOf([2, 2, 2], 4) });
  assert.equal(
    log.all().map((e) => e.term),
    [1, 1, 1, 2, 2, 2],
  );
  log.compact(3);
  assert.is(log.firstIndex(), 4);
  assert.is(log.term(3), 1, 'the compaction point keeps its term');
  assert.is(log.term(2), undefined);
  assert.throws(() => log.truncate(3), isRaftError('invalidInput'));
  for (let i = 0; i < 5000; i++) log.append(entriesOf([2], log.lastIndex() + 1));
  log.compact(4000);
  assert.is(log.firstIndex(), 4001);
  assert.is(log.entries(4001, 4002, 10)[0]!.index, 4001);
  log.installSnapshot(9000, 7);
  assert.is(log.firstIndex(), 9001);
  assert.is(log.lastIndex(), 9000);
  assert.is(log.term(9000), 7);
});

test('config encoding round-trips, and malformed bytes are a typed error', () => {
  const confs = [
    { voters: [1], learners: [] },
    { voters: [1, 2, 3], learners: [4, 5] },
    { voters: [127, 128, 16384, 2 ** 40], learners: [2 ** 53 - 1] },
  ];
  for (const c of confs) assert.equal(decodeConfState(encodeConfState(c)), c);
  // LEB128 by hand: 300 = 0b1_0010_1100 → 0xac 0x02.
  assert.equal([...encodeConfState({ voters: [300], learners: [] })], [1, 1, 0xac, 0x02, 0]);
  const bad = [
    new Uint8Array([]),
    new Uint8Array([2, 0, 0]),
    new Uint8Array([1, 1]),
    new Uint8Array([1, 1, 0x80]),
    new Uint8Array([1, 1, 0, 0]),
    new Uint8Array([1, 2, 5, 5, 0]),
    new Uint8Array([1, 0, 0, 9]),
  ];
  for (const b of bad) assert.throws(() => decodeConfState(b), isRaftError('invalidMessage'), `${[...b]}`);
});

test('single-server changes: each valid change moves one server; invalid ones say why', () => {
  const c = { voters: [1, 2, 3], learners: [4] };
  assert.equal(applyConfChange(c, { type: 'promote', node: 4 }), { voters: [1, 2, 3, 4], learners: [] });
  assert.equal(applyConfChange(c, { type: 'demote', node: 2 }), { voters: [1, 3], learners: [4, 2] });
  assert.equal(applyConfChange(c, { type: 'remove', node: 4 }), { voters: [1, 2, 3], learners: [] });
  assert.equal(applyConfChange(c, { type: 'addLearner', node: 9 }), { voters: [1, 2, 3], learners: [4, 9] });
  for (const bad of [
    { type: 'addLearner' as const, node: 1 },
    { type: 'promote' as const, node: 1 },
    { type: 'demote' as const, node: 4 },
    { type: 'remove' as const, node: 7 },
    { type: 'remove' as const, node: 0 },
  ]) {
    assert.type(applyConfChange(c, bad), 'string');
  }
  assert.type(applyConfChange({ voters: [1], learners: [] }, { type: 'remove', node: 1 }), 'string');
});

test('PRNG: the same seed gives the same stream; values are in [0, 1) and spread out', () => {
  const a = createPrng(7);
  const b = createPrng(7);
  const c = createPrng(8);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.equal(
    xs,
    Array.from({ length: 1000 }, () => b.next()),
  );
  assert.not.equal(xs[0], c.next());
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const buckets = new Array(10).fill(0);
  for (const x of xs) buckets[Math.floor(x * 10)]++;
  assert.ok(
    buckets.every((n) => n > 60 && n < 140),
    `uneven: ${buckets}`,
  );
  const ints = new Set(Array.from({ length: 200 }, () => a.int(5)));
  assert.equal([...ints].sort(), [0, 1, 2, 3, 4]);
});

test('Inflights: full by count or bytes; freed by acknowledged index, wrapping around', () => {
  const f = new Inflights(3, 100);
  f.add(5, 10);
  f.add(9, 10);
  f.add(12, 10);
  assert.ok(f.full());
  f.freeLE(9);
  assert.is(f.count, 1);
  assert.is(f.bytes, 10);
  f.add(15, 95);
  assert.ok(f.full(), 'bytes');
  f.freeFirst();
  f.add(20, 1);
  f.add(21, 1);
  assert.is(f.count, 3);
  f.freeLE(100);
  assert.is(f.count, 0);
  assert.is(f.bytes, 0);
});

test('quorumValue: the value a majority has reached', () => {
  const v = new Float64Array([5, 9, 7, 0, 0]);
  const scratch = new Float64Array(5);
  assert.is(quorumValue(v, 3, 2, scratch), 7);
  assert.is(quorumValue(v, 5, 3, scratch), 5);
  assert.is(quorumValue(new Float64Array([4]), 1, 1, scratch), 4);
});

test('options: defaults, and bad limits are refused with a typed error', () => {
  assert.is(resolveOptions(undefined).electionTimeoutTicks, 10);
  for (const bad of [{ maxInflightMsgs: 0 }, { snapshotChunkBytes: -1 }, { electionTimeoutTicks: 1.5 }]) {
    assert.throws(() => resolveOptions(bad), isRaftError('invalidConfig'));
  }
});

test('a one-voter cluster serves reads at once, and leadership changes show in softState', () => {
  const c = new Cluster({ ids: [1] });
  c.keepReadies = true;
  c.elect(1);
  assert.ok(c.node(1).readies.some((rd) => rd.softState?.role === 'leader' && rd.softState.leader === 1));
  assert.ok(c.core(1).readIndex(11).ok);
  c.stabilize();
  assert.equal(c.node(1).reads, [{ type: 'ready', context: 11, index: 1 }]);
});

test('a leader elected by its own vote alone takes proposals only once its no-op (its term) is durable', () => {
  const s = new Solo(1, [1], {}, { learners: [2] });
  for (let i = 0; i < 100 && s.core.currentRole !== 'leader'; i++) s.core.tick();
  assert.is(s.core.currentRole, 'leader');
  const rd = s.take(false); // term, vote and no-op written, not yet durable
  assert.is(rd.hardState?.term, 1);
  assert.equal(s.core.propose([bytes('a')]), { ok: false, reason: 'leaderNotReady', leader: 1 });
  s.core.persisted(1, 1);
  assert.ok(s.core.propose([bytes('a')]).ok);
});

test('reads beyond maxPendingReads are refused as overloaded', () => {
  const s = new Solo(1, [1, 2, 3], { maxPendingReads: 2 });
  s.becomeLeader();
  assert.ok(s.core.readIndex(1).ok);
  assert.ok(s.core.readIndex(2).ok);
  assert.equal(s.core.readIndex(3), { ok: false, reason: 'overloaded' });
});

test('reportUnreachable moves a pipelining follower back to probing', () => {
  const s = new Solo(1, [1, 2]);
  s.becomeLeader();
  s.core.step(appendOk(2, 1, 1, 1));
  assert.is(s.core.status().progress.find((p) => p.id === 2)?.state, 'replicate');
  s.core.reportUnreachable(2);
  assert.is(s.core.status().progress.find((p) => p.id === 2)?.state, 'probe');
  s.core.propose([bytes('a')]);
  s.core.propose([bytes('b')]);
  const appends = s.take().messagesNow.filter((m) => m.type === 'append');
  assert.is(appends.length, 1, 'one probe at a time');
});

test.run();
