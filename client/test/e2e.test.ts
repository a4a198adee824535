// The client against a real 3-node cluster (`cairn serve` processes on 127.0.0.1), one
// cluster shared by the tests of this file, in order; the failover tests come last.
import { create } from '@bufbuild/protobuf';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { callUnary } from '../../node/src/api/grpc-service.js';
import { AppendRequestSchema, StreamService } from '../../proto/gen/cairn/v1/cairn_pb.js';
import {
  type CairnClient,
  CairnClientError,
  type ConsumedRecord,
  type RecordPosition,
} from '../src/index.js';
import {
  clientFor,
  eventually,
  leaderOf,
  oraclePartition,
  ProcessCluster,
  readAll,
  text,
} from './support/cluster.js';

const c = new ProcessCluster([1, 2, 3]);
let client: CairnClient;
const enc = new TextEncoder();

test.before(async () => {
  await c.startAll();
  client = clientFor(c);
});

test.after(async () => {
  await client?.close();
  await c.stopAll();
});

async function expectError(p: Promise<unknown>, code: string): Promise<CairnClientError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, CairnClientError);
    assert.is((err as CairnClientError).code, code, (err as Error).message);
    return err as CairnClientError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

test('round trip: records with keys, headers, tombstones and timestamps come back as appended, at their offsets', async () => {
  await client.createStream('round', { partitions: 2 });
  const one = await client.append('round', { key: 'a', value: 'first', timestamp: 1_700_000_000_000 });
  const many = await client.append(
    'round',
    [
      {
        key: 'a',
        value: 'second',
        headers: [
          { key: 'h1', value: 'x' },
          { key: 'h2', value: null },
        ],
      },
      { key: 'a', value: null },
      { key: 'a', value: new Uint8Array([0, 1, 2, 255]) },
    ],
    {},
  );
  // One call, one partition: consecutive offsets (one batch).
  assert.equal(
    many.map((p) => p.offset),
    [many[0]!.offset, many[0]!.offset + 1, many[0]!.offset + 2],
  );
  assert.ok(many.every((p) => p.partition === one.partition));
  const r = await client.read('round', one.partition, { offset: one.offset });
  assert.is(r.records.length, 4);
  const [a, b, t, d] = r.records as [ConsumedRecord, ConsumedRecord, ConsumedRecord, ConsumedRecord];
  assert.is(a.offset, one.offset);
  assert.is(text(a.key), 'a');
  assert.is(text(a.value), 'first');
  assert.is(a.timestamp, 1_700_000_000_000);
  assert.is(b.offset, many[0]!.offset);
  assert.equal(
    b.headers.map((h) => [h.key, text(h.value)]),
    [
      ['h1', 'x'],
      ['h2', null],
    ],
  );
  assert.ok(
    Math.abs(b.timestamp - Date.now()) < 60_000,
    'a record without a timestamp gets the time of its batch',
  );
  assert.is(t.value, null, 'a tombstone stays null (not empty)');
  assert.equal([...d.value!], [0, 1, 2, 255]);
  assert.is(r.nextOffset, r.highWatermark);
  // Reading from inside a batch skips its earlier records; maxRecords cuts and says where to go on.
  const mid = await client.read('round', one.partition, { offset: many[0]!.offset + 1, maxRecords: 1 });
  assert.equal(
    mid.records.map((x) => x.offset),
    [many[0]!.offset + 1],
  );
  assert.is(mid.nextOffset, many[0]!.offset + 2);
  // The server's own decoding (ReadRequest.decode) cuts the same way and says the same.
  const raw = await c.read(c.api(await leaderOf(c, 'round', one.partition)), {
    stream: 'round',
    partition: one.partition,
    offset: BigInt(many[0]!.offset + 1),
    maxRecords: 1,
    decode: true,
  });
  assert.equal(
    raw.records.map((x) => Number(x.offset)),
    [many[0]!.offset + 1],
  );
  assert.is(Number(raw.nextOffset), many[0]!.offset + 2);
});

test('compressed batches (lz4, gzip) are stored compressed and read back the same', async () => {
  await client.createStream('packed', { partitions: 1 });
  const values = Array.from({ length: 200 }, (_, i) => `value ${i} ${'abc'.repeat(i % 50)}`);
  for (const compression of ['lz4', 'gzip'] as const) {
    const packer = clientFor(c, { compression });
    try {
      const ps = await packer.append(
        'packed',
        values.map((value) => ({ value })),
        { partition: 0 },
      );
      const raw = await c.read(c.api(await leaderOf(c, 'packed', 0)), {
        stream: 'packed',
        partition: 0,
        offset: BigInt(ps[0]!.offset),
      });
      // attributes (int16 at byte 21), bits 0-2: the codec (1 gzip, 3 lz4).
      const attributes = new DataView(raw.batches.buffer, raw.batches.byteOffset).getInt16(21);
      assert.is(attributes & 7, compression === 'lz4' ? 3 : 1);
      const back = await client.read('packed', 0, { offset: ps[0]!.offset, maxRecords: values.length });
      assert.equal(
        back.records.map((r) => text(r.value)),
        values,
      );
    } finally {
      await packer.close();
    }
  }
});

test('keys → partitions: xxHash32 of the key mod partitions, as the server and an independent xxHash32 compute it', async () => {
  await client.createStream('keyed', { partitions: 4 });
  const keys = Array.from({ length: 60 }, (_, i) => `user-${i * 7919}`);
  const positions = await Promise.all(keys.map((key) => client.append('keyed', { key, value: key })));
  const used = new Set<number>();
  for (let i = 0; i < keys.length; i++) {
    const key = enc.encode(keys[i]!);
    assert.is(positions[i]!.partition, oraclePartition(key, 4), keys[i]);
    assert.is(await client.partitionFor('keyed', keys[i]!), positions[i]!.partition);
    used.add(positions[i]!.partition);
  }
  assert.is(used.size, 4, 'sixty keys spread over all four partitions');
  // The server, asked to route by key itself (AppendRequest.partition_key), agrees.
  for (const key of keys.slice(0, 10)) {
    const req = create(AppendRequestSchema, {
      stream: 'keyed',
      target: { case: 'partitionKey', value: enc.encode(key) },
      payload: { case: 'records', value: { records: [{ value: enc.encode(key) }] } },
    });
    const res = await c.routed((cl, d) => callUnary(cl, StreamService, 'append', req, { deadline: d }));
    assert.is(res.partition, oraclePartition(enc.encode(key), 4), key);
  }
  // Every record of a key is in its partition, in append order.
  for (const p of [0, 1, 2, 3]) {
    for (const r of await readAll(client, 'keyed', p)) assert.is(oraclePartition(r.value!, 4), p);
  }
});

test('concurrent appends are batched per partition; every one gets its own offset and reads back in order', async () => {
  await client.createStream('busy', { partitions: 1 });
  const n = 2_000;
  const ps = await Promise.all(
    Array.from({ length: n }, (_, i) => client.append('busy', { value: `r${i}` }, { partition: 0 })),
  );
  const offsets = ps.map((p) => p.offset);
  assert.is(new Set(offsets).size, n, 'offsets are distinct');
  // Appends made in one turn share batches, in call order: offsets increase with i.
  for (let i = 1; i < n; i++) assert.ok(offsets[i]! > offsets[i - 1]!, `offset of r${i}`);
  const all = await readAll(client, 'busy', 0);
  assert.equal(
    all.map((r) => text(r.value)),
    Array.from({ length: n }, (_, i) => `r${i}`),
  );
  for (let i = 0; i < n; i++) assert.is(all[i]!.offset, offsets[i]);
  // Far fewer batches than appends: count the stored batches.
  let batches = 0;
  const busyLeader = c.api(await leaderOf(c, 'busy', 0));
  for (let offset = 0; ; ) {
    const raw = await c.read(busyLeader, { stream: 'busy', partition: 0, offset: BigInt(offset) });
    const dv = new DataView(raw.batches.buffer, raw.batches.byteOffset, raw.batches.length);
    for (let pos = 0; pos < raw.batches.length; pos += 12 + dv.getInt32(pos + 8)) batches++;
    if (Number(raw.nextOffset) >= Number(raw.highWatermark)) break;
    offset = Number(raw.nextOffset);
  }
  assert.ok(batches < n / 10, `${batches} batches for ${n} appends`);
});

test('expectedOffset: of two writers racing for the same offset exactly one wins; the other learns the actual offset', async () => {
  await client.createStream('ledger', { partitions: 1 });
  const other = clientFor(c);
  try {
    const first = await client.append('ledger', { value: 'open' }, { partition: 0, expectedOffset: 1 }).catch(
      // Offset 0 may be the partition's first no-op or not; learn the real next offset.
      async (e: CairnClientError) => {
        assert.is(e.code, 'EXPECTED_OFFSET_MISMATCH');
        return client.append(
          'ledger',
          { value: 'open' },
          { partition: 0, expectedOffset: e.facts.actualOffset },
        );
      },
    );
    const next = first.offset + 1;
    const results = await Promise.allSettled([
      client.append('ledger', { value: 'a' }, { partition: 0, expectedOffset: next }),
      other.append('ledger', { value: 'b' }, { partition: 0, expectedOffset: next }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<RecordPosition>[];
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.is(won.length, 1);
    assert.is(won[0]!.value.offset, next);
    const e = lost[0]!.reason as CairnClientError;
    assert.is(e.code, 'EXPECTED_OFFSET_MISMATCH');
    assert.is(e.facts.actualOffset, next + 1);
    // The loser retries at the actual offset and succeeds; the log holds one of each.
    const loser = results[0]!.status === 'rejected' ? 'a' : 'b';
    const again = await other.append(
      'ledger',
      { value: loser },
      { partition: 0, expectedOffset: e.facts.actualOffset },
    );
    assert.is(again.offset, next + 1);
    const values = (await readAll(client, 'ledger', 0)).map((r) => text(r.value));
    assert.equal(values.slice(-3), ['open', loser === 'a' ? 'b' : 'a', loser]);
    // A conditional append must name one partition.
    await client.createStream('ledger4', { partitions: 4 });
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    await expectError(
      client.append(
        'ledger4',
        keys.map((key) => ({ key, value: key })),
        { expectedOffset: 0 },
      ),
      'INVALID_REQUEST',
    );
  } finally {
    await other.close();
  }
});

test('admin: create with settings, describe, list, status, leader transfer, delete', async () => {
  const info = await client.createStream('admin-x', {
    partitions: 3,
    replicationFactor: 2,
    retentionMs: 86_400_000,
    compacted: true,
  });
  assert.is(info.name, 'admin-x');
  assert.is(info.partitions.length, 3);
  assert.equal(info.config, {
    partitions: 3,
    replicationFactor: 2,
    retentionBytes: 0,
    retentionMs: 86_400_000,
    compacted: true,
    deleteRetentionMs: 0,
    segmentBytes: 0,
  });
  for (const p of info.partitions) assert.is(p.replicas.length, 2);
  const described = await client.describeStream('admin-x');
  assert.equal(described.config, info.config);
  const names = (await client.listStreams()).map((s) => s.name);
  for (const n of ['round', 'keyed', 'busy', 'admin-x']) assert.ok(names.includes(n), n);
  await expectError(client.createStream('admin-x'), 'STREAM_EXISTS');

  const status = await client.status();
  assert.is(status.members.length, 3);
  assert.ok(status.members.every((m) => m.healthy && m.node.state === 'active'));
  assert.ok(status.members.every((m) => (m.status?.groups.length ?? 0) > 0));

  // Leadership moves where it is asked to, and appends follow it (NOT_LEADER redirects).
  const before = await leaderOf(c, 'round', 0);
  const to = before === 1 ? 2 : 1;
  assert.is(await client.transferLeader('round', 0, to), to);
  assert.is(await leaderOf(c, 'round', 0), to);
  const p = await client.append('round', { value: 'after transfer' }, { partition: 0 });
  assert.is(text((await client.read('round', 0, { offset: p.offset })).records[0]!.value), 'after transfer');

  await client.deleteStream('admin-x');
  await expectError(client.describeStream('admin-x'), 'STREAM_NOT_FOUND');
  assert.not.ok((await client.listStreams()).some((s) => s.name === 'admin-x'));
});

test('subscribe: from earliest, from an offset, from latest; in order; ends on break or abort', async () => {
  await client.createStream('tail', { partitions: 1 });
  const first = await client.append(
    'tail',
    ['a', 'b', 'c'].map((value) => ({ value })),
    { partition: 0 },
  );
  const take = async (it: AsyncGenerator<ConsumedRecord>, n: number) => {
    const out: ConsumedRecord[] = [];
    for await (const r of it) {
      out.push(r);
      if (out.length === n) break;
    }
    return out;
  };
  assert.equal(
    (await take(client.subscribe('tail', { from: 'earliest' }), 3)).map((r) => text(r.value)),
    ['a', 'b', 'c'],
  );
  assert.equal(
    (await take(client.subscribe('tail', { from: first[1]!.offset }), 2)).map((r) => [
      r.offset,
      text(r.value),
    ]),
    [
      [first[1]!.offset, 'b'],
      [first[2]!.offset, 'c'],
    ],
  );
  // 'latest': only what is appended after the subscription starts.
  const latest = client.subscribe('tail', { from: 'latest' });
  const got = take(latest, 2);
  await new Promise((r) => setTimeout(r, 200));
  await client.append('tail', { value: 'd' }, { partition: 0 });
  await client.append('tail', { value: 'e' }, { partition: 0 });
  assert.equal(
    (await got).map((r) => text(r.value)),
    ['d', 'e'],
  );
  // An abort ends the iteration normally, also while it waits for records.
  const ac = new AbortController();
  const waiting = take(client.subscribe('tail', { from: 'latest', signal: ac.signal }), 1);
  setTimeout(() => ac.abort(), 100);
  assert.equal(await waiting, []);
});

test('a slow subscriber is not buffered for: while the loop does not pull, almost nothing arrives', async () => {
  await client.createStream('flood', { partitions: 1 });
  // 18 MB of backlog in 300 batches of one 60 kB record (maxBatchBytes 1: no batching).
  const single = clientFor(c, { maxBatchBytes: 1 });
  try {
    const value = new Uint8Array(60_000).fill(7);
    await Promise.all(Array.from({ length: 300 }, () => single.append('flood', { value }, { partition: 0 })));
  } finally {
    await single.close();
  }
  const it = client.subscribe('flood', { from: 'earliest', maxBytesPerMessage: 64 * 1024 });
  const first = await it.next();
  assert.ok(!first.done);
  // Hold the iterator without pulling: gRPC flow control must stop the node. Whatever
  // arrives meanwhile is buffered in this process (nothing consumes it), so the growth
  // of its buffer memory bounds what was sent.
  const before = process.memoryUsage().arrayBuffers;
  await new Promise((r) => setTimeout(r, 1_000));
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(
    grown < 6 * 1024 * 1024,
    `${(grown / 1048576).toFixed(1)} MiB arrived while the loop was not pulling`,
  );
  // Resuming gets every record, in order.
  let n = 1;
  let last = first.value!.offset;
  for await (const r of it) {
    assert.ok(r.offset > last);
    last = r.offset;
    if (++n === 300) break;
  }
  assert.is(n, 300);
});

test('consumer offsets on disk: committed, fetched, skipped by readers, and kept across a leader kill', async () => {
  await client.createStream('consumed', { partitions: 1 });
  const p = await client.append('consumed', [{ value: 'a' }, { value: 'b' }], { partition: 0 });
  assert.equal(await client.fetchOffset('g1', 'consumed', 0), { offset: -1, metadata: '' });
  await client.commitOffset('g1', 'consumed', 0, 1, 'after-a');
  await client.commitOffset('g2', 'consumed', 0, 2);
  assert.equal(await client.fetchOffset('g1', 'consumed', 0), { offset: 1, metadata: 'after-a' });
  // The commits are control batches in the partition's log: readers never see them.
  const after = await client.append('consumed', { value: 'c' }, { partition: 0 });
  assert.equal(
    (await readAll(client, 'consumed', 0)).map((r) => [r.offset, text(r.value)]),
    [
      [p[0]!.offset, 'a'],
      [p[1]!.offset, 'b'],
      [after.offset, 'c'],
    ],
  );
  const leader = await leaderOf(c, 'consumed');
  await c.kill(leader);
  await eventually(
    async () =>
      assert.equal(await client.fetchOffset('g1', 'consumed', 0), { offset: 1, metadata: 'after-a' }),
    30_000,
    'offsets readable from the new leader',
  );
  assert.equal(await client.fetchOffset('g2', 'consumed', 0), { offset: 2, metadata: '' });
  await c.start(leader);
});

test('idempotent appends across a leader kill: no duplicates, no gaps, acknowledged offsets hold their records', async () => {
  await client.createStream('failover', { partitions: 1 });
  const acked = new Map<string, number>();
  let stop = false;
  // Failures are kept for the end (an early rejection must not go unhandled).
  const failures: unknown[] = [];
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stop && i < 10_000; i++) {
      const value = `w${w}-${i}`;
      const p = await client.append('failover', { value }, { partition: 0 });
      acked.set(value, p.offset);
    }
  }).map((p) =>
    p.catch((e: unknown) => {
      failures.push(e);
      stop = true;
    }),
  );
  // A subscriber from the start, running through the kills.
  const seen: ConsumedRecord[] = [];
  const ac = new AbortController();
  const subscriber = (async () => {
    for await (const r of client.subscribe('failover', { from: 'earliest', signal: ac.signal })) seen.push(r);
  })().catch((e: unknown) => {
    failures.push(e);
  });
  const noFailures = () => {
    if (failures.length > 0) throw failures[0];
  };
  const progressed = (n: number) => () => {
    noFailures();
    assert.ok(acked.size > n);
  };
  await eventually(progressed(200), 20_000, 'appends before the kill');
  const first = await leaderOf(c, 'failover');
  await c.kill(first);
  const atKill = acked.size;
  await eventually(progressed(atKill + 200), 30_000, 'appends after the first kill');
  await c.start(first);
  const second = await leaderOf(c, 'failover');
  await c.kill(second);
  const atKill2 = acked.size;
  await eventually(progressed(atKill2 + 200), 30_000, 'appends after the second kill');
  await c.start(second);
  stop = true;
  await Promise.all(writers);
  noFailures();
  const all = await readAll(client, 'failover', 0);
  const where = new Map<string, number>();
  for (const r of all) {
    const v = text(r.value)!;
    assert.not.ok(where.has(v), `${v} appears twice`);
    where.set(v, r.offset);
  }
  assert.is(
    where.size,
    acked.size,
    'every record in the log was acknowledged, and every acknowledged one is there',
  );
  for (const [v, offset] of acked) assert.is(where.get(v), offset, v);
  // Each writer's records are in its order, with nothing missing in between.
  for (let w = 0; w < 4; w++) {
    const mine = all.map((r) => text(r.value)!).filter((v) => v.startsWith(`w${w}-`));
    assert.equal(
      mine,
      mine.map((_, i) => `w${w}-${i}`),
    );
  }
  // The subscriber saw exactly the log: no offset skipped, none repeated.
  await eventually(() => assert.is(seen.length, all.length), 20_000, 'subscriber catches up');
  ac.abort();
  await subscriber;
  noFailures();
  assert.equal(
    seen.map((r) => r.offset),
    all.map((r) => r.offset),
  );
  assert.equal(
    seen.map((r) => text(r.value)),
    all.map((r) => text(r.value)),
  );
});

test.run();
