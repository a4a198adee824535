// Membership under a running workload: grow 3 → 5, remove the metadata leader, transfer a
// partition's leadership, shrink back to 3 — and nothing acknowledged is lost or doubled.
import { create } from '@bufbuild/protobuf';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AdminService, GetMetadataRequestSchema } from '../../proto/gen/cairn/v1/cairn_pb.js';
import { callUnary } from '../src/api/grpc-service.js';
import { eventually, ProcessCluster } from './support/procs.js';
import { checkReplicas, Producer } from './support/workload.js';

async function metadata(c: ProcessCluster) {
  return c.routed((cl, d) =>
    callUnary(cl, AdminService, 'getMetadata', create(GetMetadataRequestSchema), { deadline: d }),
  );
}

test('grow 3 → 5, remove the leader, transfer leadership, shrink to 3, under load', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  let running = true;
  let load: Promise<unknown> = Promise.resolve();
  try {
    await c.startAll();
    await c.createStream('m', 2);
    const producers = [new Producer(c, 'm', 0, 'a'), new Producer(c, 'm', 1, 'b')];
    for (const p of producers) await p.init();
    load = Promise.all(
      producers.map(async (p) => {
        while (running) await p.next();
      }),
    );

    // Grow: two new nodes join and are added.
    for (const id of [4, 5]) {
      await c.start(id, { join: [1, 2, 3] });
      await c.addNode(id);
    }
    // Any node answers from its own catalog, which may trail the leader's by a moment.
    const grown = await eventually(async () => {
      const m = await metadata(c);
      assert.equal(
        m.nodes.map((n) => [n.id, n.state]),
        [1, 2, 3, 4, 5].map((id) => [id, 1 /* ACTIVE */]),
      );
      return m;
    });
    await eventually(async () => {
      const s = await c.clusterStatus(grown.metadataLeader);
      const leader = s.members.find((m) => m.node!.id === grown.metadataLeader)!;
      const g0 = leader.status!.groups.find((g) => g.groupId === 0n)!;
      assert.is(Object.keys(g0.followerLag).length, 4, 'group 0 replicates to the 4 others');
    });

    // Remove the metadata leader: its partitions move, it leaves group 0, then it stops.
    const leader = (await metadata(c)).metadataLeader;
    await c.removeNode(leader);
    await c.stop(leader);
    const afterRemoval = await eventually(async () => {
      const m = await metadata(c);
      assert.not.ok(
        m.nodes.some((n) => n.id === leader),
        'the removed node is gone from the catalog',
      );
      for (const s of m.streams) for (const p of s.partitions) assert.not.ok(p.replicas.includes(leader));
      return m;
    });

    // Transfer partition 0's leadership to another replica.
    const p0 = afterRemoval.streams.find((s) => s.name === 'm')!.partitions[0]!;
    const target = p0.replicas.find((id) => id !== p0.leader && id !== 0)!;
    await eventually(async () => {
      const r = await c.transferLeader('m', 0, target);
      assert.is(r.leader, target);
    }, 20_000);

    // Shrink back to three nodes.
    const extra = c
      .live()
      .filter((id) => id !== target)
      .sort((a, b) => b - a)[0]!;
    await c.removeNode(extra);
    await c.stop(extra);
    const final = await eventually(async () => {
      const m = await metadata(c);
      assert.is(m.nodes.length, 3);
      return m;
    });

    running = false;
    await load;
    for (const [k, p] of producers.entries()) {
      assert.ok(p.acked.size > 10, `producer ${k} made progress (${p.acked.size})`);
      const replicas = final.streams.find((s) => s.name === 'm')!.partitions[k]!.replicas;
      await checkReplicas(c, replicas, 'm', k, [p]);
    }
  } finally {
    running = false;
    await load.catch(() => {});
    await c.stopAll();
  }
});

test.run();
