// Rolling replacement with real `cairn serve` processes: wipe a node's disk, bring it back
// with --join, wait until it has caught up, then the next one. Seen by a user: both
// replaced nodes re-synced their data but neither stood for election nor voted in the
// metadata group (group 0) until restarted, so killing the third left group 0 without a
// leader while 2 of 3 nodes were up, and stream admin and InitProducer stopped. Then (found
// by the simulator, seed 20010): a stream created after the replacements never elected a
// leader — both replaced nodes took its new partition for one they might have held before.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, ProcessCluster } from './support/procs.js';
import { checkPartitions, Producer } from './support/workload.js';

const LEADER = 4;

/** The node that leads group `groupId` among `ids`, by their own status. */
async function leaderOf(c: ProcessCluster, ids: number[], groupId: number): Promise<number> {
  for (const id of ids) {
    const s = await c.nodeStatus(id);
    if (s.groups.some((g) => Number(g.groupId) === groupId && g.role === LEADER)) return id;
  }
  throw new Error(`group ${groupId} has no leader among ${ids}`);
}

/** Waits until node `id` holds every group at the leader's last index, repaired. */
async function caughtUp(c: ProcessCluster, id: number, ids: number[]): Promise<void> {
  await eventually(
    async () => {
      const mine = await c.nodeStatus(id);
      for (const other of ids.filter((x) => x !== id)) {
        for (const g of (await c.nodeStatus(other)).groups) {
          if (g.role !== LEADER) continue;
          const held = mine.groups.find((x) => x.groupId === g.groupId);
          assert.ok(held, `node ${id} hosts group ${g.groupId}`);
          assert.ok(held.appliedIndex >= g.commitIndex, `node ${id} applied group ${g.groupId}`);
          assert.ok(!held.needsRepair, `node ${id} repaired group ${g.groupId}`);
        }
      }
    },
    30_000,
    `node ${id} caught up`,
  );
}

test('two nodes replaced in turn become voters of every group by themselves; the third can then die', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  try {
    await c.startAll();
    await c.createStream('events', 2);
    const producers = [new Producer(c, 'events', 0, 'a'), new Producer(c, 'events', 1, 'b')];
    for (const p of producers) await p.init();
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) for (const p of producers) await p.next();
    };
    await write(20);
    for (const replaced of [1, 2]) {
      await c.kill(replaced);
      c.wipe(replaced);
      await write(10);
      await c.start(replaced, { join: [1, 2, 3].filter((id) => id !== replaced) });
      await write(10);
      await caughtUp(c, replaced, [1, 2, 3]);
    }
    // Only the two replaced nodes are left: they must form a majority of every group.
    await c.kill(3);
    const meta = await eventually(
      () => leaderOf(c, [1, 2], 0),
      20_000,
      'a group-0 leader among nodes 1 and 2',
    );
    assert.ok([1, 2].includes(meta));
    await eventually(() => c.createStream('after', 1), 20_000, 'stream admin after the third node died');
    // Its partition's replicas are the two replaced nodes and the dead one. The replaced
    // nodes never held it, so they must not wait for a repair no leader could give them.
    const fresh = new Producer(c, 'after', 0, 'new');
    await eventually(() => fresh.init(), 20_000, 'InitProducer for the new stream');
    await eventually(() => fresh.next(), 20_000, 'an append to a stream created after the replacements');
    const late = new Producer(c, 'events', 0, 'late');
    await eventually(() => late.init(), 20_000, 'InitProducer after the third node died');
    await eventually(() => late.next(), 20_000, 'an append after the third node died');
    producers.push(late);
    await write(5);
    await checkPartitions(c, [1, 2], 'events', [0, 1], producers);
  } finally {
    await c.stopAll();
  }
});

test.run();
