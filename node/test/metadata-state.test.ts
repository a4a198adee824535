import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeCatalog,
  decodeMetaCommand,
  encodeCatalog,
  encodeMetaCommand,
  type MetaCommand,
  MetadataState,
  placeReplicas,
  planRemoval,
  type StreamConfig,
} from '../src/state/metadata.js';

const members = [3, 1, 2].map((id) => ({
  id,
  apiAddress: `127.0.0.1:70${id}0`,
  peerAddress: `127.0.0.1:71${id}0`,
}));
const config = (partitions: number, rf = 3): StreamConfig => ({
  partitions,
  replicationFactor: rf,
  retentionBytes: 0,
  retentionMs: 0,
  compacted: false,
  deleteRetentionMs: 0,
  segmentBytes: 0,
});

test('bootstrap: the same members in any order give the same catalog', () => {
  const a = MetadataState.bootstrap('c', members);
  const b = MetadataState.bootstrap('c', [...members].reverse());
  assert.equal(a.catalog(), b.catalog());
  assert.equal(
    a.memberList().map((m) => [m.id, m.state]),
    [
      [1, 'active'],
      [2, 'active'],
      [3, 'active'],
    ],
  );
});

test('create stream: group ids are allocated at apply, never reused; names are unique', () => {
  const s = MetadataState.bootstrap('c', members);
  const r1 = s.apply({
    type: 'createStream',
    name: 'a',
    config: config(2),
    placement: placeReplicas(s, 2, 3),
  });
  assert.ok(r1.ok);
  assert.equal(
    s.stream('a')!.partitions.map((p) => p.groupId),
    [1, 2],
  );
  const again = s.apply({ type: 'createStream', name: 'a', config: config(1), placement: [[1, 2, 3]] });
  assert.is(!again.ok && again.error.code, 'STREAM_EXISTS');
  assert.ok(s.apply({ type: 'deleteStream', name: 'a' }).ok);
  const gone = s.apply({ type: 'deleteStream', name: 'a' });
  assert.is(!gone.ok && gone.error.code, 'STREAM_NOT_FOUND');
  s.apply({ type: 'createStream', name: 'a', config: config(1), placement: [[1, 2, 3]] });
  assert.equal(s.stream('a')!.partitions[0]!.groupId, 3);
  assert.equal(s.partitionOfGroup(3)?.partition, 0);
  assert.is(s.partitionOfGroup(1), undefined);
});

test('placement spreads replicas over the least loaded active nodes', () => {
  const s = MetadataState.bootstrap('c', [
    ...members,
    { id: 4, apiAddress: '127.0.0.1:7040', peerAddress: '127.0.0.1:7140' },
  ]);
  const p = placeReplicas(s, 4, 2);
  const load = new Map<number, number>();
  for (const rs of p) {
    assert.is(new Set(rs).size, 2, 'replicas are distinct');
    for (const id of rs) load.set(id, (load.get(id) ?? 0) + 1);
  }
  assert.equal([...load.values()], [2, 2, 2, 2]);
  s.apply({ type: 'setMemberState', id: 4, state: 'leaving' });
  assert.throws(() => placeReplicas(s, 1, 4), /exceeds 3 active nodes/);
});

test('placement prefers nodes the leader hears from, and falls back when too few are live', () => {
  const s = MetadataState.bootstrap('c', [
    ...members,
    { id: 4, apiAddress: '127.0.0.1:7040', peerAddress: '127.0.0.1:7140' },
    { id: 5, apiAddress: '127.0.0.1:7050', peerAddress: '127.0.0.1:7150' },
  ]);
  const live = (id: number) => id !== 1 && id !== 2;
  for (const rs of placeReplicas(s, 4, 3, live)) assert.equal([...rs].sort(), [3, 4, 5]);
  // Not enough live nodes for rf 4: any active ones.
  assert.is(placeReplicas(s, 1, 4, live)[0]!.length, 4);
  s.apply({ type: 'createStream', name: 'x', config: config(1, 3), placement: [[1, 2, 3]] });
  const moves = planRemoval(s, 1, live);
  assert.ok(moves[0]!.replicas.includes(4) || moves[0]!.replicas.includes(5), 'the replacement is live');
});

test('removal replaces rather than shrinks when the only free member is not live', () => {
  // Simulator seed 60033: node 3 paused while node 2 was removed; s1/0 on [1,2,4] went to
  // [1,4] and, once node 1's disk was lost, had no majority that could vote.
  const s = MetadataState.bootstrap('c', [
    ...members,
    { id: 4, apiAddress: '127.0.0.1:7040', peerAddress: '127.0.0.1:7140' },
  ]);
  s.apply({
    type: 'createStream',
    name: 'x',
    config: config(2, 3),
    placement: [
      [1, 2, 3],
      [1, 2, 4],
    ],
  });
  const moves = planRemoval(s, 2, (id) => id !== 3);
  assert.equal([...moves[0]!.replicas].sort(), [1, 3, 4]);
  assert.equal([...moves[1]!.replicas].sort(), [1, 3, 4]);
});

test('removal moves each partition of the leaving node to a node not already a replica', () => {
  const s = MetadataState.bootstrap('c', [
    ...members,
    { id: 4, apiAddress: '127.0.0.1:7040', peerAddress: '127.0.0.1:7140' },
  ]);
  s.apply({ type: 'createStream', name: 'x', config: config(3, 3), placement: placeReplicas(s, 3, 3) });
  const moves = planRemoval(s, 2);
  for (const mv of moves) {
    assert.not.ok(mv.replicas.includes(2));
    assert.is(mv.replicas.length, 3);
    assert.is(new Set(mv.replicas).size, 3);
  }
  const r = s.apply({ type: 'removeMember', id: 2, moves });
  assert.ok(r.ok);
  assert.is(s.member(2)!.state, 'leaving');
  for (const p of s.stream('x')!.partitions) assert.not.ok(p.replicas.includes(2));
  // initialReplicas keep what the group was bootstrapped with.
  assert.ok(s.stream('x')!.partitions.some((p) => p.initialReplicas.includes(2)));
  assert.ok(s.apply({ type: 'forgetMember', id: 2 }).ok);
  assert.is(s.member(2), undefined);
});

test('members: adding the same node again succeeds, with other addresses it fails', () => {
  const s = MetadataState.bootstrap('c', members);
  const add: MetaCommand = { type: 'addMember', id: 9, apiAddress: 'h:1', peerAddress: 'h:2' };
  assert.ok(s.apply(add).ok);
  assert.is(s.member(9)!.state, 'joining');
  assert.ok(s.apply(add).ok);
  const clash = s.apply({ ...add, peerAddress: 'h:3' });
  assert.is(!clash.ok && clash.error.code, 'INVALID_REQUEST');
});

test('producer ids are handed out in disjoint blocks', () => {
  const s = MetadataState.bootstrap('c', members);
  const a = s.apply({ type: 'allocateProducerIds', count: 1 });
  const b = s.apply({ type: 'allocateProducerIds', count: 10 });
  const c = s.apply({ type: 'allocateProducerIds', count: 1 });
  assert.equal([a.ok && a.value, b.ok && b.value, c.ok && c.value], [1, 2, 12]);
});

test('replaying the same commands on two nodes gives byte-identical catalogs; snapshots round-trip', () => {
  const cmds: MetaCommand[] = [
    {
      type: 'createStream',
      name: 's1',
      config: config(2),
      placement: [
        [1, 2, 3],
        [2, 3, 1],
      ],
    },
    { type: 'addMember', id: 4, apiAddress: 'h:1', peerAddress: 'h:2' },
    { type: 'setMemberState', id: 4, state: 'active' },
    { type: 'setReplicas', stream: 's1', partition: 1, replicas: [2, 3, 4] },
    { type: 'allocateProducerIds', count: 5 },
    { type: 'createStream', name: 's1', config: config(1), placement: [[1]] },
    { type: 'deleteStream', name: 'nope' },
  ];
  const a = MetadataState.bootstrap('c', members);
  const b = MetadataState.bootstrap('c', members);
  for (const c of cmds) {
    a.apply(decodeMetaCommand(encodeMetaCommand(c)));
    b.apply(decodeMetaCommand(encodeMetaCommand(c)));
  }
  assert.equal(encodeCatalog(a.catalog()), encodeCatalog(b.catalog()));
  const restored = MetadataState.fromCatalog(decodeCatalog(encodeCatalog(a.catalog())));
  assert.equal(restored.catalog(), a.catalog());
  assert.throws(() => decodeMetaCommand(encodeMetaCommand(42 as unknown as MetaCommand)));
});

test.run();
