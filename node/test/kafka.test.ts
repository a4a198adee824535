// The Kafka front door, tried with real Kafka clients against real `cairn serve`
// processes on 127.0.0.1: kafkajs (an npm dependency) creates a topic, produces with an
// idempotent producer through a leader's SIGKILL, and asks for offsets; kcat (librdkafka,
// Debian's `kcat`) lists the brokers and topics, consumes and produces. What each wrote is
// read back through Cairn's own gRPC client, an independent path. A malformed frame closes
// that connection only.
//
// kcat is required with CI=true (.ci/run installs it); without it the kcat test is
// reported as skipped with the command that installs it.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientFor, leaderOf, readAll, text } from '../../client/test/support/cluster.js';
import { eventually, ProcessCluster } from './support/procs.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs') as typeof import('kafkajs');

const haveKcat = spawnSync('sh', ['-c', 'command -v kcat']).status === 0;
const required = process.env.CI === 'true';
const KCAT_APT = 'apt-get install -y kcat';
if (!haveKcat && !required) console.log(`skipped: the kcat tests need kcat: run \`${KCAT_APT}\``);

const c = new ProcessCluster([1, 2, 3], [], { kafka: true });
const cairn = () => clientFor(c);

test.before(async () => {
  await c.startAll();
});

test.after(async () => {
  await c.stopAll();
});

function kafkaClient() {
  return new Kafka({
    clientId: 'cairn-test',
    brokers: [c.kafka(1)],
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

test('kafkajs: CreateTopics, Metadata, an idempotent producer through a leader SIGKILL, ListOffsets', async () => {
  const kafka = kafkaClient();
  const admin = kafka.admin();
  await admin.connect();
  // Made after the SIGKILL below, from a node still up (a client learns the others from it).
  let client: ReturnType<typeof cairn> | undefined;
  try {
    await admin.createTopics({
      topics: [{ topic: 'kjs', numPartitions: 3, replicationFactor: 3 }],
      waitForLeaders: true,
    });
    const meta = await admin.fetchTopicMetadata({ topics: ['kjs'] });
    assert.is(meta.topics[0]!.partitions.length, 3);
    for (const p of meta.topics[0]!.partitions) {
      assert.equal([...p.replicas].sort(), [1, 2, 3]);
      assert.ok([1, 2, 3].includes(p.leader), `partition ${p.partitionId} has a leader`);
    }
    // A second create is refused with TOPIC_ALREADY_EXISTS, which kafkajs reports as false.
    assert.is(await admin.createTopics({ topics: [{ topic: 'kjs', numPartitions: 1 }] }), false);

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const before = Date.now();
    const sent: string[][] = [[], [], []];
    const send = async (i: number) => {
      const partition = i % 3;
      const value = `v${i}`;
      await producer.send({ topic: 'kjs', acks: -1, messages: [{ key: `k${i}`, value, partition }] });
      sent[partition]!.push(value);
    };
    for (let i = 0; i < 60; i++) await send(i);
    // The leader of partition 0 dies mid-stream; the producer keeps going (retries follow
    // the new leader; a retry of an append that did land is not a duplicate).
    const victim = await leaderOf(c, 'kjs', 0);
    await c.kill(victim);
    for (let i = 60; i < 120; i++) await send(i);
    await producer.disconnect();
    const cl = cairn();
    client = cl;

    for (let p = 0; p < 3; p++) {
      const got = (await readAll(cl, 'kjs', p)).map((r) => text(r.value));
      assert.equal(got, sent[p], `partition ${p}: every acknowledged record once, in order`);
      const keys = (await readAll(cl, 'kjs', p)).map((r) => text(r.key));
      assert.ok(
        keys.every((k, j) => k === `k${Number(sent[p]![j]!.slice(1))}`),
        'keys kept',
      );
    }

    const offsets = await eventually(async () => {
      const o = await admin.fetchTopicOffsets('kjs');
      const { highWatermark } = await cl.offsets('kjs', 0);
      if (o.find((x) => x.partition === 0)!.high !== String(highWatermark)) throw new Error('not yet');
      return o;
    });
    for (const o of offsets) {
      const { logStartOffset, highWatermark } = await cl.offsets('kjs', o.partition);
      assert.is(o.high, String(highWatermark), `partition ${o.partition}: latest`);
      assert.is(o.low, String(logStartOffset), `partition ${o.partition}: earliest`);
    }
    // By time: the first record at or after a moment before the first send is the first record.
    const byTime = await admin.fetchTopicOffsetsByTimestamp('kjs', before - 1_000);
    for (const o of byTime) {
      const first = (await readAll(cl, 'kjs', o.partition))[0]!;
      assert.is(o.offset, String(first.offset), `partition ${o.partition}: by timestamp`);
    }
    // No record that late: the broker answers -1, which kafkajs turns into the latest offset.
    const future = await admin.fetchTopicOffsetsByTimestamp('kjs', Date.now() + 3_600_000);
    for (const o of future)
      assert.is(o.offset, offsets.find((x) => x.partition === o.partition)!.high, 'no record that late');
    await c.start(victim);
  } finally {
    await admin.disconnect();
    client?.close();
  }
});

(haveKcat || required ? test : test.skip)('kcat (librdkafka): metadata, consume, produce', async () => {
  if (!haveKcat) throw new Error(`CI=true requires the kcat tests: run \`${KCAT_APT}\``);
  const client = cairn();
  try {
    await client.createStream('kc', { partitions: 2 });
    await client.append(
      'kc',
      [
        { key: 'a', value: 'one' },
        { key: 'b', value: 'two' },
      ],
      { partition: 0 },
    );
    const kcat = (args: string[], input?: string) => {
      const r = spawnSync('kcat', ['-b', c.kafka(2), ...args], { encoding: 'utf8', input, timeout: 20_000 });
      // kcat exits 0 even when a message was not delivered; it says so on stderr.
      if (r.status !== 0 || /ERROR|fail/i.test(r.stderr))
        throw new Error(`kcat ${args.join(' ')}: ${r.status} ${r.stderr}`);
      return r.stdout;
    };
    const meta = JSON.parse(kcat(['-L', '-J'])) as {
      brokers: { id: number; name: string }[];
      topics: {
        topic: string;
        partitions: { partition: number; leader: number; replicas: { id: number }[] }[];
      }[];
    };
    assert.equal(
      meta.brokers.map((b) => b.id).sort(),
      [1, 2, 3],
      'three brokers, each at its own Kafka address',
    );
    for (const b of meta.brokers) assert.is(b.name, c.kafka(b.id));
    const kc = meta.topics.find((t) => t.topic === 'kc')!;
    assert.is(kc.partitions.length, 2);
    assert.equal(
      kcat(['-C', '-t', 'kc', '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%k=%s\\n']),
      'a=one\nb=two\n',
    );
    kcat(['-P', '-t', 'kc', '-p', '1', '-K', ':', '-X', 'enable.idempotence=true'], 'x:first\ny:second\n');
    const back = await readAll(client, 'kc', 1);
    assert.equal(
      back.map((r) => `${text(r.key)}=${text(r.value)}`),
      ['x=first', 'y=second'],
    );
    // Offsets by time (ListOffsets): the first record at or after a moment, -1 past the last.
    const first = (await readAll(client, 'kc', 1))[0]!;
    const q = (ts: number) => kcat(['-Q', '-t', `kc:1:${ts}`]).trim();
    assert.match(q(first.timestamp - 1000), new RegExp(`offset ${first.offset}$`));
    assert.match(q(Date.now() + 3_600_000), /offset -1$/);
    // Consuming from the end waits (a long poll), then ends at the end.
    assert.is(kcat(['-C', '-t', 'kc', '-p', '1', '-o', 'end', '-e', '-q', '-f', '%s\\n']), '');
  } finally {
    client.close();
  }
});

test('a malformed or oversized frame closes that connection; the node goes on serving', async () => {
  const closes = (bytes: Buffer) =>
    new Promise<boolean>((resolve) => {
      const [host, port] = c.kafka(3).split(':');
      const s = connect(Number(port), host!, () => s.write(bytes));
      const timer = setTimeout(() => {
        s.destroy();
        resolve(false);
      }, 5_000);
      s.on('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
      s.on('error', () => {});
    });
  // A header that does not parse (a client id longer than the frame).
  const garbage = Buffer.from([0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 7, 0x7f, 0x7f]);
  assert.ok(await closes(garbage), 'a frame that does not parse');
  const huge = Buffer.alloc(4);
  huge.writeInt32BE(0x7fff_ffff);
  assert.ok(await closes(huge), 'a frame over the size limit');
  // An API this broker does not have.
  const unknown = Buffer.from([0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
  assert.ok(await closes(unknown), 'an unknown API key');
  const kafka = new Kafka({ clientId: 't', brokers: [c.kafka(3)], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    assert.ok(topics.includes('kjs'), 'still serving');
  } finally {
    await admin.disconnect();
  }
});

test.run();
