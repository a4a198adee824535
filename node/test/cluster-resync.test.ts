// A follower whose data directory is wiped rejoins and catches up — through a snapshot,
// because the leader has compacted its Raft log (snapshots every few entries here).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AdminService, CreateStreamRequestSchema } from '../../proto/gen/cairn/v1/cairn_pb.js';
import { callUnary } from '../src/api/grpc-service.js';
import { CairnError } from '../src/errors.js';
import { eventually, ProcessCluster } from './support/procs.js';
import { checkReplicas, Producer } from './support/workload.js';

test('a wiped follower rejoins with --join and catches up through a snapshot', async () => {
  const c = new ProcessCluster([1, 2, 3], ['--snapshot-interval-entries', '20']);
  try {
    await c.startAll();
    const info = await c.createStream('wipe', 1);
    const leader = info.partitions[0]!.leader;
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const p = new Producer(c, 'wipe', 0, 'w');
    await p.init();
    for (let i = 0; i < 40; i++) await p.next();
    await c.kill(follower);
    c.wipe(follower);
    // More entries while it is gone: the leader snapshots (every 20) and its log starts later.
    for (let i = 0; i < 60; i++) await p.next();
    await c.start(follower, { join: [1, 2, 3].filter((id) => id !== follower) });
    for (let i = 0; i < 20; i++) await p.next();
    await checkReplicas(c, [1, 2, 3], 'wipe', 0, [p]);
    const log = readFileSync(c.logFile(follower), 'utf8');
    assert.match(log, /"msg":"snapshot installed"/);
    // It votes again once repaired: its groups no longer wait for repair.
    await eventually(async () => {
      const s = await c.nodeStatus(follower);
      assert.ok(s.groups.length >= 2);
      assert.ok(
        s.groups.every((g) => !g.needsRepair),
        'still repairing',
      );
    });
  } finally {
    await c.stopAll();
  }
});

test('retention deletes whole old segments by size on every replica; reads below the log start are refused', async () => {
  const c = new ProcessCluster([1, 2, 3], ['--snapshot-interval-entries', '20']);
  try {
    await c.startAll();
    const req = create(CreateStreamRequestSchema, {
      name: 'short',
      config: { partitions: 1, retentionBytes: 8192n, segmentBytes: 4096n },
    });
    await c.routed((cl, d) => callUnary(cl, AdminService, 'createStream', req, { deadline: d }));
    const p = new Producer(c, 'short', 0, `s${'x'.repeat(200)}`);
    await p.init();
    for (let i = 0; i < 150; i++) await p.next();
    for (const id of [1, 2, 3]) {
      const start = await eventually(
        async () => {
          const r = await c
            .read(c.api(id), { stream: 'short', partition: 0, offset: 0n, maxBytes: 1 })
            .catch((e: CairnError) => e);
          assert.instance(r, CairnError);
          assert.is((r as CairnError).code, 'OFFSET_OUT_OF_RANGE');
          return (r as CairnError).facts.logStartOffset!;
        },
        20_000,
        `retention on node ${id}`,
      );
      assert.ok(start > 0);
      // What is left is readable from the new start.
      const r = await c.read(c.api(id), {
        stream: 'short',
        partition: 0,
        offset: BigInt(start),
        decode: true,
      });
      assert.ok(r.records.length > 0);
    }
  } finally {
    await c.stopAll();
  }
});

test('a follower whose log is corrupted in the middle waits for repair from the leader, then votes again', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  try {
    await c.startAll();
    const info = await c.createStream('rot', 1);
    const group = Number(info.partitions[0]!.groupId);
    const follower = [1, 2, 3].find((id) => id !== info.partitions[0]!.leader)!;
    const p = new Producer(c, 'rot', 0, 'r');
    await p.init();
    for (let i = 0; i < 60; i++) await p.next();
    await c.stop(follower);
    // Flip a byte a third of the way into its partition's segment: a bad batch followed by good ones.
    const segment = findFiles(join(c.dataDir(follower), 'groups', String(group)), /\.log$/)[0]!;
    const bytes = readFileSync(segment);
    bytes[Math.floor(bytes.length / 3)]! ^= 0x40;
    writeFileSync(segment, bytes);
    await c.start(follower);
    for (let i = 0; i < 20; i++) await p.next();
    await checkReplicas(c, [1, 2, 3], 'rot', 0, [p]);
    const log = readFileSync(c.logFile(follower), 'utf8');
    assert.match(log, /storage found damage/);
    assert.match(log, new RegExp(`"group":${group},"index":\\d+,"msg":"repaired from the leader`));
  } finally {
    await c.stopAll();
  }
});

function findFiles(dir: string, pattern: RegExp): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findFiles(path, pattern));
    else if (pattern.test(name)) out.push(path);
  }
  return out;
}

test.run();
