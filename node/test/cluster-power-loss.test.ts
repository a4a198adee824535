// Real `cairn serve` processes and power loss. Seen by a user with each data directory on
// a file system that keeps writes in its cache until fsync: after every node was cut at
// once, no node came back ("cairn serve: Unexpected end of JSON input") — the identity
// file node.json had never been fsynced and was empty. Here every node runs with
// --unsafe-lose-unsynced-writes, so a SIGKILL loses exactly the writes no fsync covered,
// as the power going would.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CairnError } from '../src/errors.js';
import { eventually, ProcessCluster } from './support/procs.js';
import { checkPartitions, Producer } from './support/workload.js';

const LOSE = ['--unsafe-lose-unsynced-writes'];

test('an empty node.json in an otherwise empty data directory (a power loss after the first start) is written again', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  try {
    for (const id of [1, 2, 3]) {
      mkdirSync(c.dataDir(id), { recursive: true });
      writeFileSync(join(c.dataDir(id), 'node.json'), '');
    }
    await c.startAll();
    await c.createStream('s', 1);
    for (const id of [1, 2, 3]) {
      // (startAll wipes the directories if it must retry on other ports: this would fail then.)
      assert.match(c.logTail(id, 100_000), /the identity file was empty or torn/);
      assert.equal(JSON.parse(readFileSync(join(c.dataDir(id), 'node.json'), 'utf8')), {
        nodeId: id,
        clusterId: 'cairn',
      });
    }
  } finally {
    await c.stopAll();
  }
});

test('an empty node.json beside data is a clear start-up error saying what to do, and changes nothing', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  try {
    await c.startAll();
    await c.createStream('s', 1);
    await c.kill(2);
    const file = join(c.dataDir(2), 'node.json');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, '');
    let message = '';
    try {
      await c.start(2);
    } catch (e) {
      message = (e as Error).message;
    }
    assert.match(message, /exited \(2\)/);
    const log = c.logTail(2);
    assert.match(log, /node\.json is empty, but .* holds data/);
    assert.match(log, /--join/);
    assert.not.match(log, /JSON input/);
    assert.equal(readFileSync(file, 'utf8'), '', 'the file is left as it was');
    // Doing what the message says brings the node back.
    writeFileSync(file, good);
    await c.start(2);
  } finally {
    await c.stopAll();
  }
});

/** Runs `n` producers (partitions 0 and 1 in turn) into `producers` until `stop` resolves. */
async function produceUntil(
  c: ProcessCluster,
  stop: Promise<void>,
  tag: string,
  n: number,
  producers: Producer[],
): Promise<void> {
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const p = new Producer(c, 'events', k % 2, `${tag}${k}`);
      try {
        await p.init();
      } catch (e) {
        if (!stopped || !(e instanceof CairnError)) throw e;
        return;
      }
      producers.push(p);
      while (!stopped) {
        try {
          await p.next();
        } catch (e) {
          // The nodes went down under the call: what was acknowledged counts, the rest may be lost.
          if (!stopped || !(e instanceof CairnError)) throw e;
        }
      }
    }),
  );
}

const ackedBy = (ps: Producer[]) => ps.reduce((n, p) => n + p.acked.size, 0);

test('every node loses its unsynced writes at once, three times: no acknowledged record is lost, the cluster goes on by itself', async () => {
  const c = new ProcessCluster([1, 2, 3], LOSE);
  try {
    await c.startAll();
    await c.createStream('events', 2);
    const all: Producer[] = [];
    for (let round = 0; round < 3; round++) {
      // Power loss in the middle of a stream of appends to both partitions.
      let cut!: () => void;
      const cutting = new Promise<void>((r) => {
        cut = r;
      });
      const producers: Producer[] = [];
      const running = produceUntil(c, cutting, `r${round}-`, 4, producers);
      await eventually(() => assert.ok(ackedBy(producers) >= 150), 30_000, '150 appends acknowledged');
      // The producers stop starting new calls; the calls in flight meet the cut.
      cut();
      await Promise.all([1, 2, 3].map((id) => c.kill(id)));
      await running;
      all.push(...producers);
      // All nodes come back with no operator action and take appends again.
      await Promise.all([1, 2, 3].map((id) => c.start(id)));
      const after = new Producer(c, 'events', round % 2, `after${round}-`);
      await eventually(() => after.init(), 20_000, 'InitProducer after the power loss');
      await eventually(() => after.next(), 20_000, 'an append after the power loss');
      all.push(after);
    }
    await checkPartitions(c, [1, 2, 3], 'events', [0, 1], all);
  } finally {
    await c.stopAll();
  }
});

test.run();
