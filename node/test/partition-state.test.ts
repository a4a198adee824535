import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  addSequence,
  type BatchFacts,
  decodePartitionSnapshot,
  encodePartitionSnapshot,
  PartitionState,
} from '../src/state/partition.js';

const limits = {
  maxProducersPerPartition: 3,
  producerBatchesRemembered: 5,
  maxConsumerGroupsPerPartition: 2,
};

/** Appends like a leader would: check against `s`, then apply with the next offsets. */
function append(s: PartitionState, pid: number, epoch: number, seq: number, count: number): BatchFacts {
  const f: BatchFacts = {
    index: s.appliedIndex + 1,
    baseOffset: s.nextOffset,
    lastOffset: s.nextOffset + count - 1,
    producerId: pid,
    producerEpoch: epoch,
    baseSequence: seq,
    recordCount: count,
  };
  s.applyBatch(f);
  return f;
}

test('offsets advance by record count; entries apply in index order only', () => {
  const s = new PartitionState(limits);
  append(s, -1, 0, 0, 3);
  append(s, -1, 0, 0, 1);
  assert.is(s.nextOffset, 4);
  assert.is(s.appliedIndex, 2);
  s.applyOther(3, 4); // a no-op entry consuming one offset
  assert.is(s.nextOffset, 5);
  assert.throws(() => s.applyOther(5, 5), /applied after 3/);
  assert.throws(() => s.applyOther(4, 2), /before/);
});

test('a new producer may start at any sequence; then sequences must follow on', () => {
  const s = new PartitionState(limits);
  assert.equal(s.check(7, 0, 42, 2, undefined), { kind: 'ok' });
  append(s, 7, 0, 42, 2);
  assert.equal(s.check(7, 0, 44, 1, undefined), { kind: 'ok' });
  const gap = s.check(7, 0, 46, 1, undefined);
  assert.is(gap.kind, 'refused');
  assert.is(gap.kind === 'refused' && gap.error.code, 'OUT_OF_ORDER_SEQUENCE');
});

test('an exact retry of a remembered batch is a duplicate carrying the original offsets', () => {
  const s = new PartitionState(limits);
  append(s, -1, 0, 0, 10); // someone else's records first
  const first = append(s, 7, 0, 0, 3);
  append(s, 7, 0, 3, 2);
  const dup = s.check(7, 0, 0, 3, undefined);
  assert.is(dup.kind, 'duplicate');
  if (dup.kind === 'duplicate') {
    assert.is(dup.original.baseOffset, first.baseOffset);
    assert.is(dup.original.lastOffset, first.lastOffset);
    assert.is(dup.original.index, first.index);
  }
  // A duplicate wins over a now-stale expectedOffset: the retry already succeeded.
  assert.is(s.check(7, 0, 0, 3, 10).kind, 'duplicate');
});

test('a sequence older than the remembered batches is DUPLICATE_SEQUENCE without offsets', () => {
  const s = new PartitionState(limits);
  for (let i = 0; i < 8; i++) append(s, 7, 0, i, 1);
  const old = s.check(7, 0, 1, 1, undefined);
  assert.is(old.kind, 'refused');
  if (old.kind === 'refused') {
    assert.is(old.error.code, 'DUPLICATE_SEQUENCE');
    assert.is(old.error.facts.baseOffset, -1);
  }
  // The five most recent are still recognised.
  assert.is(s.check(7, 0, 3, 1, undefined).kind, 'duplicate');
  assert.is(s.check(7, 0, 7, 1, undefined).kind, 'duplicate');
});

test('epochs: older is fenced, newer must restart at sequence 0 and resets the window', () => {
  const s = new PartitionState(limits);
  append(s, 7, 2, 0, 5);
  const fenced = s.check(7, 1, 5, 1, undefined);
  assert.is(fenced.kind === 'refused' && fenced.error.code, 'PRODUCER_FENCED');
  const badBump = s.check(7, 3, 5, 1, undefined);
  assert.is(badBump.kind === 'refused' && badBump.error.code, 'OUT_OF_ORDER_SEQUENCE');
  assert.is(s.check(7, 3, 0, 1, undefined).kind, 'ok');
  append(s, 7, 3, 0, 1);
  assert.is(s.producer(7)!.epoch, 3);
  assert.is(s.producer(7)!.batches.length, 1);
});

test('sequences wrap from 2^31 - 1 to 0 (Kafka)', () => {
  assert.is(addSequence(2 ** 31 - 1, 1), 0);
  const s = new PartitionState(limits);
  append(s, 7, 0, 2 ** 31 - 2, 2); // sequences 2^31-2 and 2^31-1
  assert.is(s.check(7, 0, 0, 1, undefined).kind, 'ok');
  append(s, 7, 0, 0, 3);
  assert.is(s.check(7, 0, 3, 1, undefined).kind, 'ok');
  assert.is(s.check(7, 0, 2 ** 31 - 2, 2, undefined).kind, 'duplicate');
});

test('expectedOffset must equal the next offset', () => {
  const s = new PartitionState(limits);
  append(s, -1, 0, 0, 4);
  assert.is(s.check(-1, 0, 0, 1, 4).kind, 'ok');
  const r = s.check(-1, 0, 0, 1, 3);
  assert.is(r.kind, 'refused');
  if (r.kind === 'refused') {
    assert.is(r.error.code, 'EXPECTED_OFFSET_MISMATCH');
    assert.is(r.error.facts.actualOffset, 4);
  }
});

test('the tail view stops two racing appends that both pass against the applied state', () => {
  const applied = new PartitionState(limits);
  append(applied, 7, 0, 0, 1);
  const tail = applied.clone();
  // Two clients race: same expectedOffset, and a producer retry with the same sequence.
  assert.is(tail.check(-1, 0, 0, 1, 1).kind, 'ok');
  append(tail, -1, 0, 0, 1); // proposed, not committed
  assert.is(applied.check(-1, 0, 0, 1, 1).kind, 'ok', 'the applied state alone would accept the second');
  assert.is(tail.check(-1, 0, 0, 1, 1).kind, 'refused');
  assert.is(tail.check(7, 0, 1, 1, undefined).kind, 'ok');
  const inflight = append(tail, 7, 0, 1, 1);
  const dup = tail.check(7, 0, 1, 1, undefined);
  assert.is(dup.kind, 'duplicate');
  assert.is(dup.kind === 'duplicate' && dup.original.index, inflight.index);
  assert.is(applied.check(7, 0, 1, 1, undefined).kind, 'ok', 'the applied state alone would append it twice');
  // The clone is independent.
  assert.is(applied.nextOffset, 1);
  assert.is(applied.producer(7)!.batches.length, 1);
});

test('producers beyond the bound are forgotten least recently used first', () => {
  const s = new PartitionState(limits);
  append(s, 1, 0, 0, 1);
  append(s, 2, 0, 0, 1);
  append(s, 3, 0, 0, 1);
  append(s, 1, 0, 1, 1); // 1 is now the most recent
  append(s, 4, 0, 0, 1); // evicts 2
  assert.is(s.producerCount(), 3);
  assert.ok(s.producer(1));
  assert.not.ok(s.producer(2));
  assert.ok(s.producer(3));
});

test('consumer offsets: stored, bounded in groups, overwritten', () => {
  const s = new PartitionState(limits);
  s.applyOffsetCommit(1, 0, { group: 'a', offset: 10, metadata: 'm' });
  s.applyOffsetCommit(2, 1, { group: 'b', offset: 3, metadata: '' });
  assert.ok(s.canStoreOffset('a'));
  assert.not.ok(s.canStoreOffset('c'));
  s.applyOffsetCommit(3, 2, { group: 'a', offset: 11, metadata: 'n' });
  assert.equal(s.committedOffset('a'), { offset: 11, metadata: 'n' });
  assert.is(s.committedOffset('zz'), undefined);
});

test('snapshot round trip keeps offsets, producers (with recency) and consumer offsets', () => {
  const s = new PartitionState(limits);
  append(s, 1, 0, 0, 2);
  append(s, 2, 5, 9, 1);
  append(s, 1, 0, 2, 1);
  s.applyOffsetCommit(4, 4, { group: 'g', offset: 3, metadata: 'x' });
  const bytes = encodePartitionSnapshot(s.snapshot());
  const r = new PartitionState(limits);
  r.restore(decodePartitionSnapshot(bytes));
  assert.equal(r.snapshot(), s.snapshot());
  assert.is(r.check(1, 0, 2, 1, undefined).kind, 'duplicate');
  assert.is(r.check(2, 5, 10, 1, 5).kind, 'ok');
  assert.throws(() => decodePartitionSnapshot(new Uint8Array([0xc0])), /malformed/);
});

test.run();
