import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CairnError } from '../src/errors.js';
import { eventually, InProcessCluster } from './support/inproc.js';

const enc = new TextEncoder();
const value = (s: string) => ({ value: enc.encode(s) });

async function expectError(p: Promise<unknown>, code: string): Promise<CairnError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, CairnError);
    assert.is((e as CairnError).code, code, (e as Error).message);
    return e as CairnError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('a 3-node cluster creates a stream, appends, reads, and survives its leader stopping', async () => {
  const c = new InProcessCluster(3);
  try {
    await c.startAll();
    const metaLeader = await c.leaderOf(0);
    const info = await metaLeader.createStream('orders', { partitions: 2 });
    assert.is(info.partitions.length, 2);
    const g = info.partitions[0]!.groupId;
    let leader = await c.leaderOf(g);

    const offsets: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await leader.append({ stream: 'orders', partition: 0, records: [value(`v${i}`)] });
      offsets.push(r.baseOffset);
    }
    // Offsets increase; entry 1 of the group is the leader's no-op (one offset).
    for (let i = 1; i < offsets.length; i++) assert.is(offsets[i], offsets[i - 1]! + 1);

    const read = await leader.read({
      stream: 'orders',
      partition: 0,
      offset: 0,
      maxBytes: 0,
      maxRecords: 0,
      maxWaitMs: 0,
      linearizable: true,
      decode: true,
    });
    assert.equal(
      read.records.map((r) => new TextDecoder().decode(r.value!)),
      offsets.map((_, i) => `v${i}`),
    );
    assert.is(read.nextOffset, read.highWatermark);

    // Stop the partition leader: another takes over and appends go on.
    const oldId = [...c.nodes].find(([, n]) => n === leader)![0];
    await c.stop(oldId);
    leader = await c.leaderOf(g, 10_000);
    const after = await eventually(() =>
      leader.append({ stream: 'orders', partition: 0, records: [value('after')] }),
    );
    assert.ok(after.baseOffset > offsets[offsets.length - 1]!);
    const all = await leader.read({
      stream: 'orders',
      partition: 0,
      offset: 0,
      maxBytes: 0,
      maxRecords: 0,
      maxWaitMs: 0,
      linearizable: true,
      decode: true,
    });
    const values = all.records.map((r) => new TextDecoder().decode(r.value!));
    assert.equal(values, [...offsets.map((_, i) => `v${i}`), 'after']);
  } finally {
    await c.stopAll();
  }
});

test('idempotent retries, expected offsets, consumer offsets and bad input', async () => {
  const c = new InProcessCluster(3);
  try {
    await c.startAll();
    const m = await c.leaderOf(0);
    const info = await m.createStream('acct', { partitions: 1 });
    const leader = await c.leaderOf(info.partitions[0]!.groupId);
    const p = await m.initProducer();
    const producer = { producerId: p.producerId, producerEpoch: 0, baseSequence: 0 };
    const first = await leader.append({
      stream: 'acct',
      partition: 0,
      records: [value('a'), value('b')],
      producer,
    });
    const dup = await expectError(
      leader.append({ stream: 'acct', partition: 0, records: [value('a'), value('b')], producer }),
      'DUPLICATE_SEQUENCE',
    );
    assert.equal([dup.facts.baseOffset, dup.facts.lastOffset], [first.baseOffset, first.lastOffset]);
    await expectError(
      leader.append({
        stream: 'acct',
        partition: 0,
        records: [value('c')],
        producer: { ...producer, baseSequence: 5 },
      }),
      'OUT_OF_ORDER_SEQUENCE',
    );
    // Two racing appends with the same expected offset: exactly one wins.
    const next = first.lastOffset + 1;
    const race = await Promise.allSettled([
      leader.append({ stream: 'acct', partition: 0, records: [value('x')], expectedOffset: next }),
      leader.append({ stream: 'acct', partition: 0, records: [value('y')], expectedOffset: next }),
    ]);
    assert.is(race.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.is((lost.reason as CairnError).code, 'EXPECTED_OFFSET_MISMATCH');
    assert.is((lost.reason as CairnError).facts.actualOffset, next + 1);

    await leader.commitOffset({ group: 'g1', stream: 'acct', partition: 0, offset: 2, metadata: 'm' });
    assert.equal(await leader.fetchOffset('g1', 'acct', 0), { offset: 2, metadata: 'm' });
    assert.equal(await leader.fetchOffset('nobody', 'acct', 0), { offset: -1, metadata: '' });
    // The commit is a control batch: reads skip it.
    const r = await leader.read({
      stream: 'acct',
      partition: 0,
      offset: 0,
      maxBytes: 0,
      maxRecords: 0,
      maxWaitMs: 0,
      linearizable: false,
      decode: true,
    });
    assert.equal(
      r.records.map((x) => new TextDecoder().decode(x.value!)),
      ['a', 'b', 'x'],
    );

    await expectError(
      leader.append({ stream: 'nope', partition: 0, records: [value('a')] }),
      'STREAM_NOT_FOUND',
    );
    await expectError(
      leader.append({ stream: 'acct', partition: 3, records: [value('a')] }),
      'INVALID_REQUEST',
    );
    await expectError(
      leader.read({
        stream: 'acct',
        partition: 0,
        offset: 999,
        maxBytes: 0,
        maxRecords: 0,
        maxWaitMs: 0,
        linearizable: false,
        decode: false,
      }),
      'OFFSET_OUT_OF_RANGE',
    );
    await expectError(m.createStream('acct', {}), 'STREAM_EXISTS');
    await expectError(m.createStream('bad name!', {}), 'INVALID_REQUEST');
    const follower = [...c.nodes.values()].find((n) => n !== leader)!;
    const nl = await expectError(
      follower.append({ stream: 'acct', partition: 0, records: [value('a')] }),
      'NOT_LEADER',
    );
    assert.ok(nl.facts.leaderId! > 0);
    assert.match(nl.facts.leaderAddress!, /^127\.0\.0\.1:70\d\d$/);
  } finally {
    await c.stopAll();
  }
});

test('a partition group that fails to open is tried again, so every replica the catalog names hosts it', async () => {
  const c = new InProcessCluster(3);
  let failures = 0;
  // Node 3's first open of a partition group fails (a disk error, a directory a lingering
  // handle keeps); nothing else in the catalog changes afterwards to set off reconciling.
  c.wrapStores = (id, stores) =>
    id !== 3
      ? stores
      : {
          ...stores,
          open: async (g, segmentBytes, options) => {
            if (g !== 0 && failures === 0) {
              failures++;
              throw new Error('EIO: i/o error, open');
            }
            return stores.open(g, segmentBytes, options);
          },
        };
  try {
    await c.startAll();
    const info = await (await c.leaderOf(0)).createStream('orders', { partitions: 1, replicationFactor: 3 });
    const g = info.partitions[0]!.groupId;
    assert.equal(info.partitions[0]!.replicas, [1, 2, 3]);
    await eventually(() => assert.ok(c.nodes.get(3)!.groupForTest(g)), 5000, 'node 3 hosting the partition');
    assert.is(failures, 1);
  } finally {
    await c.stopAll();
  }
});

test.run();
