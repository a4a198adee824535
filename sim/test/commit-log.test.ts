// The commit-log checker on hand-made histories: a clean history passes, and each
// anomaly of the Jepsen/Maelstrom kafka workload (and of idempotent and conditional
// appends) is reported under its own name; retention and compaction excuse what they
// legitimately remove.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkCommitLog, type FinalPartition } from '../src/checkers/commit-log.js';
import type { Op, PolledRecord } from '../src/history.js';
import type { StreamSpec } from '../src/options.js';

const plain: StreamSpec[] = [
  { name: 's', partitions: 1, replicationFactor: 3, compacted: false, retentionBytes: 0, segmentBytes: 0 },
];

let nextId = 0;
function op(o: Partial<Op> & Pick<Op, 'kind'>): Op {
  return {
    id: nextId++,
    client: 1,
    stream: 's',
    partition: 0,
    node: 1,
    invokeUs: 0,
    completeUs: 1,
    outcome: 'ok',
    ...o,
  };
}
const append = (
  value: string,
  offset: number | undefined,
  outcome: Op['outcome'] = 'ok',
  extra: Partial<Op> = {},
) =>
  op({
    kind: 'append',
    values: [value],
    keys: [null],
    outcome,
    ...(offset === undefined ? {} : { offset }),
    ...extra,
  });
const rec = (offset: number, value: string, key: string | null = null): PolledRecord => ({
  offset,
  value,
  key,
});
const poll = (client: number, from: number, records: PolledRecord[], extra: Partial<Op> = {}) =>
  op({
    kind: 'poll',
    client,
    from,
    records,
    nextOffset: (records[records.length - 1]?.offset ?? from - 1) + 1,
    ...extra,
  });
function final(...replicas: PolledRecord[][]): FinalPartition[] {
  return [
    {
      stream: 's',
      partition: 0,
      replicas: replicas.map((records, i) => ({
        node: i + 1,
        logStartOffset: 0,
        highWatermark: (records[records.length - 1]?.offset ?? -1) + 1,
        records,
      })),
    },
  ];
}
const names = (ops: Op[], f: FinalPartition[], streams = plain) =>
  checkCommitLog(ops, f, streams).map((a) => a.property);

test('a clean history has no anomalies', () => {
  const log = [rec(1, 'a'), rec(2, 'b'), rec(4, 'c')]; // offsets 0 and 3: Raft no-ops
  const ops = [
    append('a', 1),
    append('b', 2),
    append('c', 4),
    append('x', undefined, 'unknown'), // may or may not have happened
    append('y', undefined, 'fail'),
    poll(2, 0, [rec(1, 'a'), rec(2, 'b')]),
    poll(2, 3, [rec(4, 'c')]),
  ];
  assert.equal(names(ops, final(log, log)), []);
});

test('lost-write: an acknowledged value missing, with later offsets present', () => {
  assert.equal(names([append('a', 0), append('b', 1)], final([rec(1, 'b')])), ['lost-write']);
});

test('unseen: an acknowledged value missing at the end of the log', () => {
  assert.equal(names([append('a', 0), append('b', 1)], final([rec(0, 'a')])), ['unseen']);
});

test('a polled value missing from the final log is a lost write', () => {
  assert.equal(names([append('a', undefined, 'unknown'), poll(1, 0, [rec(0, 'a')])], final([])), [
    'lost-write',
  ]);
});

test('duplicate: one value at two offsets', () => {
  assert.equal(names([append('a', 0)], final([rec(0, 'a'), rec(1, 'a')])), ['duplicate']);
});

test('inconsistent-offsets: replicas disagree, a poll disagrees with the log, two polls disagree', () => {
  assert.equal(names([], final([rec(0, 'a')], [rec(0, 'b')])), ['inconsistent-offsets']);
  assert.equal(names([poll(1, 0, [rec(0, 'z')])], final([rec(0, 'a')])), [
    'inconsistent-offsets',
    'lost-write',
  ]);
  assert.equal(
    names([poll(1, 5, [rec(5, 'p')]), poll(2, 5, [rec(5, 'q')])], final([])).filter(
      (p) => p === 'inconsistent-offsets',
    ),
    ['inconsistent-offsets'],
  );
});

test('stale-read: a linearizable read that misses an append acknowledged before it began', () => {
  const log = [rec(0, 'a'), rec(1, 'b'), rec(2, 'c')];
  const acked = [
    append('a', 0, 'ok', { invokeUs: 0, completeUs: 10 }),
    append('b', 1, 'ok', { invokeUs: 5, completeUs: 20 }),
    append('c', 2, 'ok', { invokeUs: 25, completeUs: 40 }),
  ];
  const read = (invokeUs: number, highWatermark: number, linearizable = true) =>
    poll(2, 0, log.slice(0, highWatermark), {
      invokeUs,
      completeUs: invokeUs + 1,
      linearizable,
      highWatermark,
    });
  // Began after 'b' was acknowledged but saw only 'a': stale.
  assert.equal(names([...acked, read(21, 1)], final(log)), ['stale-read']);
  // Began after 'b', saw 'b' but not 'c', which was still in flight: fine.
  assert.equal(names([...acked, read(30, 2)], final(log)), []);
  // Began while 'b' was in flight (acknowledged at 20): either answer is linearizable.
  assert.equal(names([...acked, read(15, 1)], final(log)), []);
  // A read from any replica promises no recency.
  assert.equal(names([...acked, read(41, 1, false)], final(log)), []);
});

test('nonmonotonic-poll: a consumer goes backwards', () => {
  const log = [rec(0, 'a'), rec(1, 'b')];
  assert.equal(names([poll(1, 0, [rec(0, 'a'), rec(1, 'b')]), poll(1, 2, [rec(1, 'b')])], final(log)), [
    'nonmonotonic-poll',
  ]);
});

test('poll-skip: within a poll, and across polls (a poll ending early moved the consumer too far)', () => {
  const log = [rec(0, 'a'), rec(1, 'b'), rec(2, 'c')];
  assert.equal(names([poll(1, 0, [rec(0, 'a'), rec(2, 'c')])], final(log)), ['poll-skip']);
  assert.equal(names([poll(1, 0, [rec(0, 'a')], { nextOffset: 2 }), poll(1, 2, [rec(2, 'c')])], final(log)), [
    'poll-skip',
  ]);
  // A seek after retention deleted offsets is not a skip.
  const seek = op({ kind: 'poll', client: 1, from: 0, outcome: 'fail', seek: true, nextOffset: 2 });
  assert.equal(names([seek, poll(1, 2, [rec(2, 'c')])], final(log)), []);
});

test('failed-write-appeared: a refused value in the log, unless another attempt of it may have landed', () => {
  assert.equal(names([append('a', undefined, 'fail')], final([rec(0, 'a')])), ['failed-write-appeared']);
  const retry = { producer: { id: 1, seq: 0 } };
  const ops = [
    op({ kind: 'idempotent', values: ['a'], keys: [null], outcome: 'unknown', ...retry }),
    op({ kind: 'idempotent', values: ['a'], keys: [null], outcome: 'fail', ...retry }),
  ];
  assert.equal(names(ops, final([rec(0, 'a')])), []);
});

test('ack-offset: acknowledged at one offset, found at another', () => {
  assert.equal(names([append('a', 3)], final([rec(0, 'a')])), ['ack-offset']);
});

test('conditional appends: success away from the expected offset, and two successes at one offset', () => {
  assert.equal(
    names(
      [op({ kind: 'conditional', values: ['a'], keys: [null], expectedOffset: 1, offset: 2 })],
      final([rec(2, 'a')]),
    ),
    ['conditional-offset'],
  );
  const both = [
    op({ kind: 'conditional', values: ['a'], keys: [null], expectedOffset: 1, offset: 1 }),
    op({ kind: 'conditional', values: ['b'], keys: [null], expectedOffset: 1, offset: 1 }),
  ];
  assert.ok(names(both, final([rec(1, 'a')])).includes('lost-update'));
});

test('producer-order: an idempotent producer’s batches out of sequence order', () => {
  const ops = [
    op({ kind: 'idempotent', values: ['a'], keys: [null], producer: { id: 7, seq: 0 }, offset: 1 }),
    op({ kind: 'idempotent', values: ['b'], keys: [null], producer: { id: 7, seq: 1 }, offset: 0 }),
  ];
  assert.equal(names(ops, final([rec(0, 'b'), rec(1, 'a')])), ['producer-order']);
});

test('retention and compaction excuse what they remove; nothing else', () => {
  const retention: FinalPartition[] = [
    {
      stream: 's',
      partition: 0,
      replicas: [{ node: 1, logStartOffset: 5, highWatermark: 7, records: [rec(6, 'b')] }],
    },
  ];
  assert.equal(names([append('a', 2), append('b', 6)], retention), []);
  const compacted: StreamSpec[] = [{ ...plain[0]!, compacted: true }];
  const ops = [
    append('a', 0, 'ok', { keys: ['k'] }),
    append('b', 1, 'ok', { keys: ['k'] }),
    append('c', 2, 'ok', { keys: ['j'] }),
  ];
  assert.equal(names(ops, final([rec(1, 'b', 'k'), rec(2, 'c', 'j')]), compacted), []);
  // The latest value of a key may not vanish.
  assert.equal(names(ops, final([rec(2, 'c', 'j')]), compacted), ['lost-write', 'lost-write']);
});

test.run();
