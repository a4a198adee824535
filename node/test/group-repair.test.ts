// Damage a node finds in its own storage, and bad snapshots it receives, stop one group
// and get it repaired from the leader — never the node (DESIGN §6). Three in-process nodes
// over node/storage on MemFileSystem, whose bytes are flipped at rest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CairnNode } from '../src/cairn-node.js';
import { joinPath } from '../src/storage/index.js';
import { eventually, InProcessCluster } from './support/inproc.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const STREAM = 's';
/** Small segments, so that a few appends seal several (tail recovery trusts sealed ones). */
const SEGMENT_BYTES = 1024;
/** Inside the batch's CRC-covered part (baseTimestamp; the CRC starts at attributes, byte 21). */
const CRC_COVERED_BYTE = 34;

async function appendValues(c: InProcessCluster, g: number, values: string[]): Promise<void> {
  for (const v of values) {
    await eventually(async () => {
      const leader = await c.leaderOf(g, 10_000);
      return leader.append({ stream: STREAM, partition: 0, records: [{ value: enc.encode(v) }] });
    }, 10_000);
  }
}

/** Every value node `node` serves, reading on from each answer's nextOffset (a read stays in one segment). */
async function valuesOn(node: CairnNode): Promise<string[]> {
  const out: string[] = [];
  for (let offset = 0, reads = 0; reads < 1000; reads++) {
    const r = await node.read({
      stream: STREAM,
      partition: 0,
      offset,
      maxBytes: 0,
      maxRecords: 0,
      maxWaitMs: 0,
      linearizable: false,
      decode: true,
    });
    for (const x of r.records) out.push(dec.decode(x.value!));
    if (r.nextOffset >= r.highWatermark) return out;
    offset = r.nextOffset;
  }
  throw new Error('reads did not reach the high watermark');
}

/** The group's segment files on node `id`'s disk, in offset order, with their sizes. */
async function segments(
  c: InProcessCluster,
  id: number,
  g: number,
): Promise<{ path: string; size: number }[]> {
  const fs = c.fs(id);
  const dir = joinPath('/data/groups', String(g));
  const gen = (await fs.list(dir)).find((n) => /^g\d+$/.test(n))!;
  const logs = (await fs.list(joinPath(dir, gen))).filter((n) => n.endsWith('.log')).sort();
  const out: { path: string; size: number }[] = [];
  for (const name of logs) {
    const path = joinPath(dir, gen, name);
    const h = await fs.open(path);
    out.push({ path, size: await h.size() });
    await h.close();
  }
  return out;
}

function status(node: CairnNode, g: number) {
  const s = node.nodeStatus().groups.find((x) => x.groupId === g);
  if (s === undefined) throw new Error(`group ${g} is not running`);
  return s;
}

/**
 * Every replica runs the group, repaired, and all hold the same values, `expected` among
 * them in order (an append retried after an unknown outcome may appear twice).
 */
async function allHold(c: InProcessCluster, g: number, expected: string[]): Promise<void> {
  await eventually(
    async () => {
      let reference: string[] | undefined;
      for (const [id, n] of c.nodes) {
        const s = status(n, g);
        if (s.needsRepair) throw new Error(`node ${id} still waits for repair`);
        const got = await valuesOn(n);
        const firsts = got.filter((v, i) => got.indexOf(v) === i);
        if (firsts.join() !== expected.join())
          throw new Error(`node ${id} holds ${got.length} values, not the ${expected.length} expected`);
        if (reference !== undefined && got.join() !== reference.join())
          throw new Error(`node ${id} differs from the other replicas`);
        reference = got;
      }
    },
    15_000,
    'every replica repaired and holding every value',
  );
}

async function setUp(env: Record<string, string> = {}, cacheBytes?: number) {
  const c = new InProcessCluster(3, env, { storage: cacheBytes === undefined ? {} : { cacheBytes } });
  await c.startAll();
  const meta = await c.leaderOf(0);
  const info = await meta.createStream(STREAM, { partitions: 1, segmentBytes: SEGMENT_BYTES });
  const g = info.partitions[0]!.groupId;
  await c.leaderOf(g, 10_000);
  return { c, g };
}

const values = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `value-${from + i}`.repeat(4));

test('a bit flip in a sealed segment found when the group starts: the group is repaired, not left dead', async () => {
  const { c, g } = await setUp();
  try {
    const first = values(0, 30);
    await appendValues(c, g, first);
    const leader = await c.leaderOf(g);
    const follower = [...c.nodes].find(([, n]) => n !== leader)![0];
    await allHold(c, g, first);
    await c.stop(follower);
    // A sealed segment (not the last): its index is trusted at open, so only reading finds it.
    const sealed = (await segments(c, follower, g)).slice(0, -1);
    assert.ok(sealed.length >= 2, 'several sealed segments');
    c.fs(follower).corruptByte(sealed[1]!.path, CRC_COVERED_BYTE);
    await c.start(follower);
    // Repair completes once the group has entries past what the node held.
    const more = values(30, 3);
    await appendValues(c, g, more);
    await allHold(c, g, [...first, ...more]);
    assert.ok(c.restarts.get(follower)?.includes('damage'), 'the damage was counted');
    assert.equal([...c.fatals.keys()], []);
    // The repair done, neither the node's marker nor storage's damage record remains, so a
    // restart does not take the node for damaged again.
    const fs = c.fs(follower);
    const dir = joinPath('/data/groups', String(g));
    await eventually(async () => {
      assert.not.ok(await fs.exists(`${dir}.repair`), 'the repair marker is gone');
      assert.not.ok(await fs.exists(joinPath(dir, 'damage')), 'the damage record is gone');
    });
  } finally {
    await c.stopAll();
  }
});

test('a leader that reads a damaged entry of its own log stops leading that group and is repaired', async () => {
  // A tiny tail cache: the entries a lagging follower needs come from the segment files.
  const { c, g } = await setUp({}, 1);
  try {
    const leaderNode = await c.leaderOf(g);
    const leader = [...c.nodes].find(([, n]) => n === leaderNode)![0];
    const lagging = [...c.nodes.keys()].find((id) => id !== leader)!;
    await c.stop(lagging);
    const first = values(0, 30);
    await appendValues(c, g, first);
    const sealed = (await segments(c, leader, g)).slice(0, -1);
    assert.ok(sealed.length >= 3, 'several sealed segments');
    // Holds entries the lagging follower lacks: the leader must read them to send them.
    c.fs(leader).corruptByte(sealed[1]!.path, CRC_COVERED_BYTE);
    await c.start(lagging);
    const more = values(30, 3);
    await appendValues(c, g, more);
    await allHold(c, g, [...first, ...more]);
    assert.ok(c.restarts.get(leader)?.includes('damage'), 'the leader restarted the group for repair');
    assert.equal([...c.fatals.keys()], []);
  } finally {
    await c.stopAll();
  }
});

/** A leader whose log was compacted past a follower it stopped: the follower needs a snapshot. */
async function laggingBehindSnapshot(c: InProcessCluster, g: number, first: string[]) {
  const leaderNode = await c.leaderOf(g);
  const leader = [...c.nodes].find(([, n]) => n === leaderNode)![0];
  const lagging = [...c.nodes.keys()].find((id) => id !== leader)!;
  await c.stop(lagging);
  await appendValues(c, g, first);
  await eventually(() => {
    if (leaderNode.groupForTest(g)!.store.firstIndex() < 10) throw new Error('no snapshot yet');
  }, 10_000);
  return { leader, lagging };
}

test('a snapshot that fails its checks on install is refused, the node goes on, and a good resend installs', async () => {
  const { c, g } = await setUp({ CAIRN_SNAPSHOT_INTERVAL_ENTRIES: '8' });
  try {
    const first = values(0, 40);
    const { lagging } = await laggingBehindSnapshot(c, g, first);
    // The last chunk of every transfer to it arrives with its last byte (a record of the
    // last batch, under the batch CRC) flipped: what a faulty sender would deliver.
    c.net.tamper = (_from, to, m) => {
      if (to !== lagging || m.type !== 'snapshotChunk' || !m.done || m.data.length === 0) return m;
      const data = Uint8Array.from(m.data);
      data[data.length - 1]! ^= 0x01;
      return { ...m, data };
    };
    await c.start(lagging);
    await eventually(
      () => assert.ok(c.restarts.get(lagging)?.includes('snapshot-rejected')),
      10_000,
      'the follower refuses the snapshot',
    );
    assert.equal([...c.fatals.keys()], [], 'no node stopped');
    c.net.tamper = undefined;
    const more = values(40, 2);
    await appendValues(c, g, more);
    await allHold(c, g, [...first, ...more]);
    assert.equal([...c.fatals.keys()], []);
  } finally {
    await c.stopAll();
  }
});

test('a leader whose snapshot data is damaged finds it before sending and is repaired; nobody stops', async () => {
  const { c, g } = await setUp({ CAIRN_SNAPSHOT_INTERVAL_ENTRIES: '8' });
  try {
    const first = values(0, 40);
    const { leader, lagging } = await laggingBehindSnapshot(c, g, first);
    // A data segment under the leader's snapshot: the stream would carry it unvalidated.
    const damaged = (await segments(c, leader, g))[0]!;
    c.fs(leader).corruptByte(damaged.path, CRC_COVERED_BYTE);
    await c.start(lagging);
    const more = values(40, 2);
    await appendValues(c, g, more);
    await allHold(c, g, [...first, ...more]);
    assert.ok(c.restarts.get(leader)?.includes('damage'), 'the leader found its damage');
    assert.not.ok(c.restarts.get(lagging)?.includes('snapshot-rejected'), 'nothing bad was sent');
    assert.equal([...c.fatals.keys()], []);
  } finally {
    await c.stopAll();
  }
});

test.run();
