// Real `cairn serve` processes on 127.0.0.1, killed with SIGKILL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, ProcessCluster } from './support/procs.js';
import { checkReplicas, Producer } from './support/workload.js';

async function partitionLeader(c: ProcessCluster, stream: string): Promise<number> {
  return eventually(async () => {
    for (const id of c.live()) {
      const s = await c.nodeStatus(id);
      const g = s.groups.find((x) => x.stream === stream && x.role === 4 /* leader */);
      if (g) return id;
    }
    throw new Error('no leader yet');
  });
}

test('3 nodes: appends go on after the leader is killed; nothing acknowledged is lost or duplicated; replicas end byte-identical', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  try {
    await c.startAll();
    await c.createStream('events', 1);
    const p = new Producer(c, 'events', 0, 'e');
    await p.init();
    for (let i = 0; i < 60; i++) await p.next();
    const leader = await partitionLeader(c, 'events');
    await c.kill(leader);
    for (let i = 0; i < 60; i++) await p.next();
    const newLeader = await partitionLeader(c, 'events');
    assert.is.not(newLeader, leader);
    await c.start(leader);
    for (let i = 0; i < 60; i++) await p.next();
    assert.is(p.acked.size, 180);
    const view = await checkReplicas(c, [1, 2, 3], 'events', 0, [p]);
    assert.is(view.records.length, 180);
    // Every node killed at once (a power cut, as far as the processes know), then restarted:
    // everything acknowledged is still there, and the cluster goes on.
    for (const id of [1, 2, 3]) await c.kill(id);
    await Promise.all([1, 2, 3].map((id) => c.start(id)));
    for (let i = 0; i < 20; i++) await p.next();
    const again = await checkReplicas(c, [1, 2, 3], 'events', 0, [p]);
    assert.is(again.records.length, 200);
  } finally {
    await c.stopAll();
  }
});

test('5 nodes survive 2 failures, the leaders among them', async () => {
  const c = new ProcessCluster([1, 2, 3, 4, 5]);
  try {
    await c.startAll();
    await c.createStream('five', 1, 5);
    const p = new Producer(c, 'five', 0, 'f');
    await p.init();
    for (let i = 0; i < 30; i++) await p.next();
    const first = await partitionLeader(c, 'five');
    await c.kill(first);
    for (let i = 0; i < 30; i++) await p.next();
    const second = await partitionLeader(c, 'five');
    await c.kill(second);
    for (let i = 0; i < 30; i++) await p.next();
    // Group 0 still works with 3 of 5: a new stream can be created.
    await c.createStream('after', 1, 3);
    const live = c.live();
    assert.is(live.length, 3);
    await checkReplicas(c, live, 'five', 0, [p]);
  } finally {
    await c.stopAll();
  }
});

test.run();
