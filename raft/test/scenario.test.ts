// Scenario tests: the known hard cases, each named for what it reproduces.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppendMessage, Message, SnapshotChunkMessage } from '../src/index.js';
import { MemoryLog, RaftCore, RaftError } from '../src/index.js';
import { createPrng } from '../src/prng.js';
import { appendOk, bytes, Cluster, entriesOf, Solo, snapshotBytes, termsOf, text } from './harness.js';

const T = 10;

function terms(c: Cluster, id: number): number[] {
  const n = c.node(id);
  const out: number[] = [];
  for (let i = n.view.firstIndex(); i <= n.view.lastIndex(); i++) out.push(n.view.term(i)!);
  return out;
}

// ---- Figure 7: a new leader brings every kind of follower log in line ----

const FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIG7_FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

for (const [name, log] of Object.entries(FIG7_FOLLOWERS)) {
  test(`Figure 7 (${name}): the leader of term 8 makes follower log ${name} identical to its own`, () => {
    const c = new Cluster({ ids: [1, 2, 3] });
    c.load(1, FIG7_LEADER, 7);
    c.load(2, log, 7);
    c.load(3, [], 7); // an empty voter: grants the leader its second vote
    c.elect(1);
    assert.is(c.core(1).currentTerm, 8);
    c.stabilize();
    assert.equal(terms(c, 2), [...FIG7_LEADER, 8], termsOf(c.node(2)));
    assert.is(c.core(2).commitIndex, 11);
  });
}

// ---- Figure 8: an old-term entry on a majority is not committed, and may be overwritten ----

test('Figure 8: an entry of an earlier term stored on a majority is not committed and can be overwritten', () => {
  const c = new Cluster({ ids: [1, 2, 3, 4, 5], options: { preVote: false, checkQuorum: false } });
  c.elect(1);
  const t2 = c.core(1).currentTerm;
  // (a) S1 leads term 2 and replicates index 2 to S2 only.
  c.partition([1, 2], [3, 4, 5]);
  c.propose(1, 'a');
  c.stabilize();
  assert.equal(terms(c, 2), [t2, t2]);
  // (b) S1 is cut off; S5 wins term 3 with S3, S4 but its entry at index 2 reaches nobody.
  c.partition([1], [2], [3, 4, 5]);
  const base = c.filter;
  c.filter = (m) => base(m) && !(m.from === 5 && m.type === 'append');
  c.elect(5);
  const t3 = c.core(5).currentTerm;
  assert.equal(terms(c, 5), [t2, t3]);
  // (c) S1 restarts, wins term 4 with S2, S3, S4, and gets index 2 (term 2) onto S3: a majority.
  c.node(1).crash();
  c.node(1).restart();
  c.partition([1, 2, 3, 4], [5]);
  const base2 = c.filter;
  c.filter = (m) => base2(m) && !(m.from === 1 && m.type === 'append' && m.to !== 3);
  const strip = (m: Message): Message =>
    m.type === 'append' && m.from === 1 ? { ...m, entries: m.entries.filter((e) => e.index <= 2) } : m;
  const core1 = c.core(1);
  for (let i = 0; i < 100 && core1.currentRole !== 'leader'; i++) {
    core1.tick();
    for (let r = 0; r < 5; r++) {
      c.processReadies();
      c.network = c.network.map(strip);
      c.deliverAll();
    }
  }
  assert.is(core1.currentRole, 'leader');
  for (let r = 0; r < 5; r++) {
    c.processReadies();
    c.network = c.network.map(strip);
    c.deliverAll();
  }
  assert.equal(terms(c, 3).slice(0, 2), [t2, t2], 'S3 now holds index 2 of term 2');
  assert.ok(
    core1.commitIndex < 2,
    `S1 must not commit index 2 by counting replicas (commit ${core1.commitIndex})`,
  );
  // (d) S1 crashes; S5 wins with S2, S3, S4 (its last term 3 beats their term 2) and overwrites index 2.
  c.node(1).crash();
  c.node(5).crash(); // S5 still thinks it leads term 3; restarted, it campaigns afresh
  c.node(5).restart();
  c.partition([2, 3, 4, 5], [1]);
  c.elect(5);
  c.stabilize();
  for (const id of [2, 3, 4, 5]) {
    assert.is(c.node(id).view.term(2), t3, `node ${id} index 2 overwritten by S5's entry`);
    assert.ok(
      ![...c.node(id).applied.values()].some((e) => text(e) === 'a'),
      'the old entry was never applied',
    );
  }
});

test('Figure 8 (e): once an entry of the leader term is on a majority, earlier entries commit with it', () => {
  const c = new Cluster({ ids: [1, 2, 3, 4, 5], options: { preVote: false, checkQuorum: false } });
  c.elect(1);
  c.partition([1, 2], [3, 4, 5]);
  c.propose(1, 'a');
  c.stabilize();
  c.node(1).crash();
  c.node(1).restart();
  c.heal();
  c.elect(1);
  c.stabilize();
  for (const id of [1, 2, 3, 4, 5]) assert.is(text(c.node(id).applied.get(2)), 'a');
});

// ---- Dueling candidates ----

test('dueling candidates: the one with the up-to-date log wins; the loser cannot take over with a stale log', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { preVote: false } });
  c.partition([1, 2], [2, 3]); // helper: replaced below by an explicit filter (1 and 3 cannot talk)
  c.filter = (m) => !((m.from === 1 && m.to === 3) || (m.from === 3 && m.to === 1));
  // Both time out together; 2 hears 1 first.
  for (let i = 0; i < 2 * T; i++) c.tick([1, 3]);
  assert.is(c.core(1).currentRole, 'candidate');
  assert.is(c.core(3).currentRole, 'candidate');
  c.processReadies();
  c.network.sort((a, b) => (a.from === 1 ? -1 : 0) - (b.from === 1 ? -1 : 0));
  c.stabilize();
  assert.is(c.core(1).currentRole, 'leader');
  assert.is(c.core(3).currentRole, 'candidate');
  c.stabilize();
  // 3 campaigns again with a higher term but a log lacking the leader's no-op: nobody votes
  // for it. Its higher term does unseat the leader (without PreVote), and a new election
  // follows that it cannot win either.
  c.heal();
  for (let i = 0; i < 2 * T; i++) c.tick([3]);
  c.stabilize();
  assert.not.equal(c.core(3).currentRole, 'leader');
  c.ticks(10 * T);
  const l = c.leader();
  assert.ok(l === 1 || l === 2, `leader ${l}`);
  assert.not.ok([...c.leadersByTerm.values()].includes(3), 'the stale candidate never led');
  c.propose(l, 'x');
  c.ticks(3, [l]);
  for (const id of [1, 2, 3]) assert.equal(terms(c, id), terms(c, l));
});

test('dueling pre-candidates: with PreVote neither raises its term until one can win', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { preVote: true } });
  c.elect(1);
  const term = c.core(1).currentTerm;
  c.partition([1, 2], [3]);
  c.ticks(10 * T, [3]);
  assert.is(c.core(3).currentTerm, term, 'the isolated node never raised its term');
  c.heal();
  c.tick([1]);
  c.stabilize();
  assert.is(c.core(1).currentRole, 'leader', 'the leader was not disrupted');
  assert.is(c.core(1).currentTerm, term);
});

// ---- Partitioned leader, healed ----

test('partitioned leader: CheckQuorum makes it step down, the majority elects another, healing converges', () => {
  const c = new Cluster({ ids: [1, 2, 3, 4, 5] });
  c.elect(1);
  c.propose(1, 'before');
  c.stabilize();
  c.partition([1, 2], [3, 4, 5]);
  c.propose(1, 'lost');
  c.ticks(4 * T);
  assert.not.equal(c.core(1).currentRole, 'leader', 'CheckQuorum: the minority leader stepped down');
  const l = c.leader();
  assert.ok([3, 4, 5].includes(l));
  c.propose(l, 'after');
  c.stabilize();
  c.heal();
  c.ticks(3 * T);
  const final = c.leader();
  for (const id of [1, 2, 3, 4, 5]) {
    const applied = [...c.node(id).applied.values()].map(text);
    assert.ok(applied.includes('before') && applied.includes('after'), `node ${id}: ${applied}`);
    assert.not.ok(applied.includes('lost'), 'the minority leader entry was never committed');
    assert.equal(terms(c, id), terms(c, final));
  }
});

test('a rejoining partitioned follower does not disrupt the leader (PreVote), and catches up', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  const term = c.core(1).currentTerm;
  c.partition([1, 2], [3]);
  for (let i = 0; i < 8 * T; i++) {
    c.tick();
    c.propose(1, `e${i}`);
    c.stabilize();
  }
  c.heal();
  c.ticks(2 * T);
  assert.is(c.leader(), 1);
  assert.is(c.core(1).currentTerm, term);
  assert.equal(terms(c, 3), terms(c, 1));
});

// ---- Leader removal ----

test('leader removal: it commits its removal, steps down, hands off with TimeoutNow, and never disrupts again', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  c.propose(1, 'x');
  c.stabilize();
  assert.ok(c.core(1).proposeConfChange({ type: 'remove', node: 1 }).ok);
  c.stabilize();
  assert.is(c.core(1).currentRole, 'follower');
  const l = c.leader();
  assert.ok(l === 2 || l === 3, 'a new leader without waiting for an election timeout');
  const term = c.core(l).currentTerm;
  c.propose(l, 'y');
  c.ticks(10 * T);
  assert.is(c.leader(), l);
  assert.is(c.core(l).currentTerm, term, 'the removed node did not raise the term');
  assert.equal(c.core(l).status().conf, { voters: [2, 3], learners: [] });
  assert.is(text(c.node(l === 2 ? 3 : 2).applied.get(c.core(l).commitIndex)), 'y');
});

test('a leader that loses leadership before its self-removal commits campaigns again to finish it', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  assert.ok(c.core(1).proposeConfChange({ type: 'remove', node: 3 }).ok);
  c.stabilize();
  c.tick([1]);
  c.stabilize();
  assert.equal(c.core(2).status().conf.voters, [1, 2]);
  // The self-removal reaches no one: only node 1 holds it, and CheckQuorum unseats it.
  c.partition([1], [2, 3]);
  assert.ok(c.core(1).proposeConfChange({ type: 'remove', node: 1 }).ok);
  c.ticks(3 * T, [1, 2]);
  assert.not.equal(c.core(1).currentRole, 'leader');
  c.heal();
  // Node 2 needs node 1's vote, which it cannot get (node 1's log is longer); node 1, a voter
  // until its removal commits, wins by node 2's vote, commits the removal, and hands over.
  for (let i = 0; i < 10 * T && !(c.leader() === 2 && c.core(2).status().conf.voters.length === 1); i++) {
    c.tick([1, 2]);
    c.stabilize();
  }
  assert.is(c.leader(), 2);
  assert.equal(c.core(2).status().conf, { voters: [2], learners: [] });
  assert.is(c.core(1).currentRole, 'follower');
});

test('a removed follower that never learns of its removal cannot disrupt the cluster', () => {
  const c = new Cluster({ ids: [1, 2, 3, 4] });
  c.elect(1);
  c.partition([1, 2, 3], [4]);
  assert.ok(c.core(1).proposeConfChange({ type: 'remove', node: 4 }).ok);
  c.stabilize();
  c.heal();
  const term = c.core(1).currentTerm;
  c.ticks(20 * T);
  assert.is(c.leader(), 1);
  assert.is(c.core(1).currentTerm, term);
});

test('adding a node: learner first, catches up from nothing, then promoted; the new voter counts', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  for (let i = 0; i < 20; i++) c.propose(1, `e${i}`);
  c.stabilize();
  c.addNode(4);
  assert.ok(c.core(1).proposeConfChange({ type: 'addLearner', node: 4 }).ok);
  c.stabilize();
  c.tick([1]);
  c.stabilize();
  assert.equal(terms(c, 4), terms(c, 1));
  assert.ok(c.core(1).proposeConfChange({ type: 'promote', node: 4 }).ok);
  c.stabilize();
  c.partition([1, 4, 2], [3]);
  c.node(2).crash(); // 1 and 4 alone are not a majority of 4 voters
  c.propose(1, 'needs three');
  c.stabilize();
  const idx = c.core(1).lastIndex;
  assert.ok(c.core(1).commitIndex < idx);
  c.node(2).restart();
  c.tick([1]);
  c.stabilize();
  assert.is(c.core(1).commitIndex, idx);
});

// ---- Transfer to a lagging node ----

test('leadership transfer to a lagging node: the leader catches it up first, refusing proposals meanwhile', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { maxSizePerMsgBytes: 16 } });
  c.elect(1);
  c.partition([1, 2], [3]);
  for (let i = 0; i < 50; i++) c.propose(1, `entry-${i}`);
  c.stabilize();
  c.heal();
  assert.ok(c.core(1).transferLeadership(3).ok);
  assert.is(c.propose(1, 'refused').ok, false);
  for (let i = 0; i < T && c.leader() !== 3; i++) {
    c.tick([1]);
    c.stabilize();
  }
  assert.is(c.leader(), 3);
  assert.ok(terms(c, 3).length >= 52);
  assert.ok(c.propose(3, 'at new leader').ok);
  c.stabilize();
  assert.is(text(c.node(1).applied.get(c.core(3).commitIndex)), 'at new leader');
});

// ---- Snapshots: behind the log start, chunked, resumed ----

test('snapshot to a follower behind the log start: chunked, resumed after dropped chunks, then back to appends', () => {
  const c = new Cluster({
    ids: [1, 2, 3],
    options: { snapshotChunkBytes: 7, maxInflightSnapshotChunks: 2, snapshotStallTicks: 3 },
  });
  c.elect(1);
  c.partition([1, 2], [3]);
  for (let i = 0; i < 10; i++) c.propose(1, `e${i}`);
  c.stabilize();
  const meta = c.node(1).takeSnapshot(50);
  c.heal();
  // Drop every third chunk on the way, and count the bytes sent.
  let chunkNo = 0;
  let sentBytes = 0;
  c.filter = (m) => {
    if (m.type !== 'snapshotChunk') return true;
    chunkNo++;
    if (chunkNo % 3 === 0) return false;
    sentBytes += (m as SnapshotChunkMessage).length;
    return true;
  };
  for (let i = 0; i < 30 * T && c.node(3).appliedIndex < meta.index; i++) {
    c.tick([1]);
    c.stabilize();
  }
  assert.ok(c.node(3).appliedIndex >= meta.index, 'the follower installed the snapshot');
  assert.ok(c.node(3).snapshots.has(`${meta.index}/${meta.term}`));
  assert.ok(
    sentBytes < 2 * meta.size,
    `resumed, not restarted: ${sentBytes} bytes delivered for ${meta.size}`,
  );
  c.heal();
  c.propose(1, 'after');
  c.stabilize();
  assert.is(text(c.node(3).applied.get(c.core(1).commitIndex)), 'after');
  assert.equal(
    c
      .core(1)
      .status()
      .progress.find((p) => p.id === 3)?.state,
    'replicate',
  );
});

test('snapshot transfer survives a follower that stops answering: the leader resends after a stall', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { snapshotChunkBytes: 10, snapshotStallTicks: 4 } });
  c.elect(1);
  c.partition([1, 2], [3]);
  for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
  c.stabilize();
  const meta = c.node(1).takeSnapshot(35);
  // Every chunk is lost for a while: the transfer must not stay paused.
  c.heal();
  c.filter = (m) => m.type !== 'snapshotChunk';
  c.ticks(3 * T, [1]);
  assert.is(
    c
      .core(1)
      .status()
      .progress.find((p) => p.id === 3)?.state,
    'snapshot',
  );
  c.heal();
  for (let i = 0; i < 3 * T && c.node(3).appliedIndex < meta.index; i++) {
    c.tick([1]);
    c.stabilize();
  }
  assert.ok(c.node(3).appliedIndex >= meta.index);
});

test('snapshot transfer resumes after the follower restarts with the partial bytes it kept', () => {
  const meta = { index: 20, term: 3, conf: { voters: [1, 2, 3], learners: [] }, size: 30 };
  const chunk = (core: RaftCore, offset: number, length: number) =>
    core.step({
      type: 'snapshotChunk',
      term: 3,
      from: 2,
      to: 1,
      meta,
      offset,
      length,
      done: offset + length === 30,
      data: snapshotBytes(20, 3, 30).subarray(offset, offset + length),
    });
  const core = new RaftCore({
    id: 1,
    log: new MemoryLog(),
    conf: { voters: [1, 2, 3], learners: [] },
    hardState: { term: 3, vote: 0, commit: 0 },
    random: createPrng(1).next,
    partialSnapshot: { meta, receivedBytes: 20 },
  });
  chunk(core, 0, 10); // a new leader starts from 0: told to skip ahead
  const rd = core.takeReady();
  const [ack] = rd.messagesAfterPersist.filter((m) => m.type === 'snapshotAck');
  assert.equal(ack && ack.type === 'snapshotAck' && [ack.offset, ack.rewind], [20, false]);
  chunk(core, 20, 10);
  const rd2 = core.takeReady();
  assert.equal(
    rd2.snapshot.map((w) => w.type),
    ['writeChunk', 'install'],
  );
});

test('appends after a snapshot are taken while its install is being confirmed; applying waits for the confirmation', () => {
  const s = new Solo(1, [1, 2, 3], {}, { hardState: { term: 2, vote: 0, commit: 0 } });
  const meta = { index: 5, term: 2, conf: { voters: [1, 2, 3], learners: [] }, size: 1 };
  s.core.step({
    type: 'snapshotChunk',
    term: 2,
    from: 2,
    to: 1,
    meta,
    offset: 0,
    length: 1,
    done: true,
    data: bytes('s'),
  });
  s.take(false);
  s.core.step({
    type: 'append',
    term: 2,
    from: 2,
    to: 1,
    prevIndex: 5,
    prevTerm: 2,
    entries: entriesOf([2, 2], 6),
    commit: 7,
  });
  const rd = s.take(true);
  assert.equal(
    rd.logWrite?.entries.map((e) => e.index),
    [6, 7],
  );
  assert.is(rd.messagesAfterPersist.filter((m) => m.type === 'appendResponse').length, 1);
  assert.equal(s.take().committed, [], 'nothing applied before the install is confirmed');
  s.core.snapshotInstalled(meta);
  assert.equal(
    s.take().committed.map((e) => e.index),
    [6, 7],
  );
});

test('a driver that lost its snapshot reports it; the leader restarts the transfer with its newest one', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { snapshotChunkBytes: 8 } });
  c.elect(1);
  c.partition([1, 2], [3]);
  for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
  c.stabilize();
  const old = c.node(1).takeSnapshot(20);
  c.filter = (m) => m.to !== 3;
  c.heal();
  c.filter = (m) => !(m.type === 'snapshotChunk');
  c.tick([1]);
  c.stabilize();
  for (let i = 0; i < 3; i++) c.propose(1, `f${i}`);
  c.stabilize();
  c.node(1).snapshots.delete(`${old.index}/${old.term}`);
  c.core(1).reportSnapshot(3, false);
  const fresh = c.node(1).takeSnapshot(12);
  c.heal();
  for (let i = 0; i < 3 * T && c.node(3).appliedIndex < fresh.index; i++) {
    c.tick([1]);
    c.stabilize();
  }
  assert.ok(c.node(3).appliedIndex >= fresh.index);
});

test('a snapshot whose stream changed size mid-transfer is sent again from the start at its new size', () => {
  // Found by the simulator (seed 120080): key compaction below a leader's snapshot changed
  // the stream the driver sends for it; the driver refused the chunks of the size the core
  // had, the core asked again with that size, forever — and a follower resuming a partial
  // of the old stream would have spliced two streams.
  const c = new Cluster({ ids: [1, 2, 3], options: { snapshotChunkBytes: 8 } });
  c.elect(1);
  c.partition([1, 2], [3]);
  for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
  c.stabilize();
  const old = c.node(1).takeSnapshot(40);
  // Two chunks of the old stream reach node 3, then nothing.
  let chunks = 0;
  c.heal();
  c.filter = (m) => m.type !== 'snapshotChunk' || (m.meta.size === old.size && ++chunks <= 2);
  c.ticks(3, [1]);
  assert.is(chunks > 2, true, 'the transfer started');
  // The driver's stream for the same snapshot is now 48 bytes; it says so.
  const changed = { ...old, size: 48 };
  c.node(1).snapshots.set(`${old.index}/${old.term}`, snapshotBytes(old.index, old.term, 48));
  c.core(1).snapshotTaken(changed);
  c.core(1).reportSnapshot(3, false);
  const offsets: number[] = [];
  c.filter = (m) => {
    if (m.type === 'snapshotChunk') {
      assert.is(m.meta.size, 48, 'only the new stream is sent');
      offsets.push(m.offset);
    }
    return true;
  };
  c.ticks(3 * T, [1]);
  assert.is(offsets[0], 0, 'from the start');
  assert.ok(c.node(3).appliedIndex >= old.index, 'installed (the harness checks every byte)');
  assert.is(c.node(3).snapshots.get(`${old.index}/${old.term}`)?.length, 48);
});

// ---- Flow control ----

test('flow control: in-flight appends per follower are capped in messages and bytes; messages in size', () => {
  const s = new Solo(1, [1, 2], { maxInflightMsgs: 3, maxSizePerMsgBytes: 10, maxInflightBytes: 1000 });
  s.becomeLeader();
  s.core.step(appendOk(2, 1, 1, 1));
  s.take();
  for (let i = 0; i < 20; i++) s.core.propose([bytes('12345')]); // 5 bytes each
  const appends = s.take().messagesNow.filter((m): m is AppendMessage => m.type === 'append');
  assert.is(appends.length, 3, 'three messages in flight, no more');
  for (const a of appends) {
    assert.is(a.entries.length, 2);
    assert.ok(a.entries.reduce((n, e) => n + e.data.length, 0) <= 10);
  }
  // One acknowledgement frees one slot.
  s.core.step(appendOk(2, 1, 1, 3));
  const more = s.take().messagesNow.filter((m): m is AppendMessage => m.type === 'append');
  assert.equal(
    more.map((a) => a.entries[0]!.index),
    [8],
  );
  // Bytes cap.
  const b = new Solo(1, [1, 2], { maxInflightMsgs: 100, maxSizePerMsgBytes: 10, maxInflightBytes: 25 });
  b.becomeLeader();
  b.core.step(appendOk(2, 1, 1, 1));
  b.take();
  for (let i = 0; i < 20; i++) b.core.propose([bytes('12345')]);
  const byBytes = b.take().messagesNow.filter((m) => m.type === 'append');
  assert.is(byBytes.length, 3, '10 + 10 + 10 ≥ 25: the third fills the byte budget');
});

test('flow control: proposals are refused past maxUncommittedBytes and accepted again after commit', () => {
  const s = new Solo(1, [1, 2, 3], { maxUncommittedBytes: 12 });
  s.becomeLeader();
  assert.ok(s.core.propose([bytes('12345678')]).ok);
  const r = s.core.propose([bytes('12345678')]);
  assert.equal(r.ok ? '' : r.reason, 'overloaded');
  s.take();
  s.core.step(appendOk(2, 1, 1, 2));
  assert.is(s.core.commitIndex, 2);
  assert.ok(s.core.propose([bytes('12345678')]).ok);
});

test('flow control: committed entries are handed out within maxApplyBytes until applied() confirms', () => {
  const c = new Cluster({ ids: [1], options: { maxApplyBytes: 20 } });
  c.elect(1);
  c.stabilize();
  const core = c.core(1);
  for (let i = 0; i < 10; i++) core.propose([bytes('0123456789')]);
  const rd = core.takeReady();
  c.node(1).view.write(rd.logWrite!);
  const last = rd.logWrite!.entries.at(-1)!;
  core.persisted(last.index, last.term);
  const first = core.takeReady().committed;
  assert.is(first.length, 2, '2 × 10 bytes');
  assert.is(core.takeReady().committed.length, 0, 'nothing more until applied');
  core.applied(first.at(-1)!.index);
  assert.is(core.takeReady().committed.length, 2);
});

// ---- Lost acknowledged entries (DESIGN §6) ----

test('lost acknowledged entries: the node neither votes nor campaigns until repaired from a leader', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  c.partition([1, 2], [3]);
  c.propose(1, 'acked');
  c.stabilize();
  const committed = c.core(1).commitIndex;
  // Node 2's storage loses the tail it acknowledged; node 1 dies.
  const n2 = c.node(2);
  const lastBefore = n2.loseTail(2);
  c.node(1).crash();
  c.heal();
  c.ticks(10 * T);
  assert.is(c.leader(), 0, 'without node 2 voting, node 3 (missing the entry) cannot win');
  assert.not.equal(c.core(2).currentRole, 'candidate');
  c.node(1).restart();
  c.keepReadies = true;
  const l = c.electLeader();
  assert.is(l, 1, 'only the node with the committed entry can win');
  c.stabilize();
  // Done through the bound the leader gave: at least the log node 2 had acknowledged.
  assert.ok(c.node(2).readies.some((rd) => rd.repairedPast !== undefined && rd.repairedPast >= lastBefore));
  assert.is(c.core(2).status().recoveringUntil, 0);
  for (const id of [1, 2, 3]) assert.is(text(c.node(id).applied.get(committed)), 'acked');
});

test('a follower that lost its whole log is re-sent it by heartbeats alone, with no new proposals', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  c.propose(1, 'a', 'b', 'c');
  c.stabilize();
  const last = c.core(1).lastIndex;
  assert.is(c.core(3).lastIndex, last);
  // Node 3's disk is wiped (it rejoins knowing it lost what it acknowledged); the group is idle.
  const n3 = c.node(3);
  n3.wipe(last);
  c.ticks(3 * T);
  assert.is(c.core(1).lastIndex, last + 1, 'the leader appended one no-op, the repair bound');
  assert.is(c.core(3).lastIndex, last + 1, 'the leader probed it again and re-sent the log');
  assert.is(c.core(3).status().recoveringUntil, 0, 'and its repair is complete');
  assert.is(text(n3.applied.get(last)), 'c');
});

test('a wiped node votes again only once it holds the leader log through the bound the leader gave it', () => {
  // Found by the simulator (seed 1014): a rejoined node's repair ended once it held entry 1
  // from a leader, and it voted for a node missing a committed entry.
  const c = new Cluster({ ids: [1, 2, 3], options: { maxSizePerMsgBytes: 1 } });
  c.elect(1);
  c.partition([1, 2], [3]);
  // Entries larger than a message's byte limit travel one per append.
  c.propose(1, 'aa', 'bb', 'cc');
  c.stabilize();
  const committed = c.core(1).commitIndex;
  assert.is(c.core(3).lastIndex, 1, 'node 3 holds only the no-op');
  c.node(2).wipe(); // it knows it lost entries, not how many
  // Node 3 stays cut off; node 2 gets only the leader's first entry before the leader dies.
  c.filter = (m) =>
    m.to !== 3 &&
    m.from !== 3 &&
    !(m.to === 2 && m.type === 'append' && m.entries.length > 0 && m.entries.at(-1)!.index > 1);
  c.ticks(2 * T, [1]);
  assert.is(c.core(2).lastIndex, 1);
  assert.is.not(c.core(2).status().recoveringUntil, 0, 'holding entry 1 is not the end of the repair');
  c.node(1).crash();
  c.heal();
  c.ticks(10 * T);
  assert.is(c.leader(), 0, 'node 3, without the committed entries, cannot win with node 2');
  c.node(1).restart();
  assert.is(c.electLeader(), 1);
  c.stabilize();
  assert.is(c.core(2).status().recoveringUntil, 0, 'repaired from the leader');
  for (const id of [1, 2, 3]) assert.is(text(c.node(id).applied.get(committed)), 'cc');
});

test('a leader stops counting the acknowledgements a follower lost once it asks for a repair bound', () => {
  const c = new Cluster({ ids: [1, 2, 3, 4, 5] });
  c.elect(1);
  // Entries 2 and 3 reach node 2 only: acknowledged by it, not committed.
  c.partition([1, 2], [3, 4, 5]);
  c.propose(1, 'x', 'y');
  c.stabilize();
  assert.is(c.core(1).commitIndex, 1);
  const acked = c.core(2).lastIndex;
  assert.is(acked, 3);
  // Node 2's disk loses them (damage); it restarts repairing. Its log still reaches the
  // heartbeats' commit, so only its request for a bound tells the leader.
  const n2 = c.node(2);
  n2.loseTail(2);
  // Nodes 2, 4 and 5 hear the leader but get no entries (so it stays leader: a repairing
  // node does not count toward the quorum check); node 3 is reachable again.
  c.filter = (m) => !([2, 4, 5].includes(m.to) && m.type === 'append' && m.entries.length > 0);
  c.ticks(3 * T, [1]);
  assert.is(c.core(3).lastIndex, 4, 'node 3 acknowledged entries 2 and 3, and 4: the repair bound, a no-op');
  assert.is(
    c.core(1).commitIndex,
    1,
    "they are on 2 of 5 nodes: node 2's old acknowledgement no longer counts",
  );
  c.heal();
  c.ticks(3 * T, [1]);
  assert.is(c.core(1).commitIndex, 4, 'committed once on nodes 4 and 5 too');
  assert.is(c.core(2).status().recoveringUntil, 0);
});

/**
 * Node 1 leads term t1 and is then cut off (and stalls); the other two elect a leader of a
 * newer term, commit entries on both, and one of them is wiped: its term forgotten. The
 * deposed leader reaches the wiped node, and the new leader is cut off.
 */
function wipedNodeMeetsDeposedLeader(): { c: Cluster; newLeader: number; wiped: number; committed: number } {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  c.propose(1, 'a');
  c.stabilize();
  c.partition([1], [2, 3]);
  for (let i = 0; i < 8 * T && c.leader() === 1; i++) c.ticks(1, [2, 3]);
  const newLeader = [2, 3].find((id) => c.core(id).currentRole === 'leader') ?? 0;
  assert.ok(newLeader !== 0, 'nodes 2 and 3 elected a leader');
  assert.ok(c.core(newLeader).currentTerm > c.core(1).currentTerm);
  const wiped = newLeader === 2 ? 3 : 2;
  c.propose(newLeader, 'B1', 'B2');
  c.stabilize();
  const committed = c.core(newLeader).commitIndex;
  assert.is(c.core(wiped).commitIndex, committed, 'B1 and B2 committed on the new leader and the other node');
  c.node(wiped).wipe();
  c.partition([1, wiped], [newLeader]);
  assert.is(c.core(1).currentRole, 'leader', 'node 1 still believes it leads');
  return { c, newLeader, wiped, committed };
}

test('a wiped node, its term forgotten, counts for no commit of a deposed leader of an older term', () => {
  // Found in review: the wiped node took the deposed leader's term (newer than its empty
  // disk's), was repaired by it and acknowledged its entries, and two different entries
  // were committed at one index.
  const { c, newLeader, wiped, committed } = wipedNodeMeetsDeposedLeader();
  c.ticks(3, [1]);
  c.propose(1, 'A1', 'A2', 'A3');
  c.ticks(3, [1]);
  assert.is(c.core(wiped).currentTerm, c.core(1).currentTerm, 'the wiped node took the old term');
  assert.ok(c.core(wiped).lastIndex > committed, "and holds the deposed leader's entries");
  assert.is.not(c.core(wiped).status().recoveringUntil, 0, 'but it is still repairing');
  assert.ok(c.core(1).commitIndex < committed, 'and the deposed leader committed nothing with it');
  // The deposed leader steps down at its quorum check: a repairing node is no quorum.
  c.ticks(3 * T, [1]);
  assert.is.not(c.core(1).currentRole, 'leader');
  // Once healed, the newer term's leader repairs the wiped node; every node applies B1, B2.
  c.heal();
  c.ticks(10 * T);
  const l = c.leader();
  assert.ok(l === newLeader || l === wiped, `a node holding B1 and B2 leads (leader ${l})`);
  c.ticks(3 * T);
  assert.is(c.core(wiped).status().recoveringUntil, 0, 'repaired');
  for (const id of [1, 2, 3]) {
    const seen = [...c.node(id).applied.values()]
      .map(text)
      .filter((t) => t.startsWith('B') || t.startsWith('A'));
    assert.equal(seen.slice(0, 2), ['B1', 'B2'], `node ${id} applied B1 and B2 first`);
  }
});

test("a deposed leader confirms no linearizable read with a repairing node's heartbeat answers", () => {
  const { c, committed } = wipedNodeMeetsDeposedLeader();
  c.ticks(3, [1]);
  c.core(1).readIndex(77);
  c.ticks(3, [1]);
  const r = c.node(1).reads.find((x) => x.context === 77);
  assert.ok(
    r === undefined || r.type === 'failed',
    `the read is not served (${JSON.stringify(r)}; ${committed} is committed elsewhere)`,
  );
});

test('a leader counts a wiped node again only once the no-op it appended as the bound commits without it', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  c.propose(1, 'a');
  c.stabilize();
  const before = c.core(1).lastIndex;
  // Node 3 is down; node 2 is wiped: the leader alone is no quorum for the bound.
  c.node(3).crash();
  c.node(2).wipe();
  c.ticks(3, [1]);
  assert.is(c.core(1).lastIndex, before + 1, 'the leader appended the bound');
  assert.is(c.core(2).lastIndex, before + 1, 'node 2 holds it');
  assert.is(c.core(1).commitIndex, before, 'not committed: node 2 does not count yet');
  assert.is.not(c.core(2).status().recoveringUntil, 0);
  c.node(3).restart();
  c.ticks(3, [1]);
  assert.is(c.core(1).commitIndex, before + 1, 'committed with node 3');
  assert.is(c.core(2).status().recoveringUntil, 0, 'so node 2 is repaired');
  c.node(3).crash();
  c.propose(1, 'b');
  c.ticks(3, [1]);
  assert.is(c.core(1).commitIndex, before + 2, 'and counts again');
});

test('a bound the leader made for an earlier loss does not end a later repair (its token differs)', () => {
  // Found by the simulator (seed 90158): a follower lost entries, asked for a bound and
  // restarted with another loss before the leader heard it was done; the leader still sent
  // the first bound, and the new repair ended with committed entries missing.
  const c = new Cluster({ ids: [1, 2, 3], options: { maxSizePerMsgBytes: 1 } });
  c.elect(1);
  c.propose(1, 'aa');
  c.stabilize();
  const n2 = c.node(2);
  n2.loseTail(2);
  // Node 2 asks for a bound; the leader makes one, and nothing reaches node 2 after that.
  c.tick([1]);
  c.tick([1]);
  c.processReadies();
  c.deliverAll(); // the leader's heartbeat to node 2
  c.processReadies();
  c.deliverAll(); // node 2's answer, asking
  c.filter = (m) => m.to !== 2;
  c.propose(1, 'bb', 'cc');
  c.stabilize();
  const committed = c.core(1).commitIndex;
  assert.ok(committed >= 4, 'committed with node 3');
  // Node 2 loses entries again; it now gets the leader's messages, but entries only up to 2
  // (a probe past its log still reaches it, for the leader to find where it is).
  n2.loseTail(2);
  c.filter = (m) =>
    !(
      m.to === 2 &&
      m.type === 'append' &&
      m.entries.length > 0 &&
      m.entries.at(-1)!.index > 2 &&
      c.core(2).lastIndex >= 2
    );
  c.ticks(3 * T, [1]);
  assert.is(c.core(2).lastIndex, 2);
  assert.is.not(
    c.core(2).status().recoveringUntil,
    0,
    `still repairing: it lacks committed entries up to ${committed}`,
  );
  c.heal();
  c.ticks(3 * T, [1]);
  assert.is(c.core(2).status().recoveringUntil, 0);
  assert.ok(c.core(2).lastIndex >= committed);
});

test('a 21-voter cluster elects, commits and tolerates 10 failures', () => {
  const ids = Array.from({ length: 21 }, (_, i) => i + 1);
  const c = new Cluster({ ids });
  const l = c.electLeader();
  for (const id of ids.filter((id) => id !== l).slice(0, 10)) c.node(id).crash();
  c.propose(l, 'wide');
  c.stabilize();
  assert.is(text(c.node(l).applied.get(2)), 'wide');
});

// ---- Bad input ----

test('bad input gets a typed error and changes nothing', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader();
  const before = JSON.stringify(s.core.status());
  const bad: unknown[] = [
    null,
    { type: 'nope', term: 1, from: 2, to: 1 },
    { type: 'append', term: 1, from: 2, to: 9, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
    { type: 'append', term: 1, from: 1, to: 1, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
    { type: 'append', term: -1, from: 2, to: 1, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
    {
      type: 'append',
      term: 2,
      from: 2,
      to: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: entriesOf([1], 2),
      commit: 0,
    },
    {
      type: 'append',
      term: 2,
      from: 2,
      to: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: entriesOf([3]),
      commit: 0,
    },
    {
      type: 'append',
      term: 2,
      from: 2,
      to: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: [{ index: 1, term: 1, type: 'config', data: bytes('garbage') }],
      commit: 0,
    },
    { type: 'heartbeat', term: 1.5, from: 2, to: 1, commit: 0, readSeq: 0 },
    {
      type: 'snapshotChunk',
      term: 2,
      from: 2,
      to: 1,
      meta: { index: 5, term: 1, conf: { voters: [1], learners: [] }, size: 4 },
      offset: 0,
      length: 4,
      done: true,
      data: new Uint8Array(3),
    },
  ];
  for (const m of bad) {
    try {
      s.core.step(m as Message);
      assert.unreachable(`accepted ${JSON.stringify(m)}`);
    } catch (e) {
      assert.instance(e, RaftError);
      assert.is((e as RaftError).code, 'invalidMessage');
    }
  }
  assert.throws(
    () => s.core.applied(99),
    (e: unknown) => e instanceof RaftError && e.code === 'invalidInput',
  );
  assert.throws(
    () => s.core.propose([]),
    (e: unknown) => e instanceof RaftError && e.code === 'invalidInput',
  );
  assert.throws(
    () => s.core.propose(['x' as unknown as Uint8Array]),
    (e: unknown) => e instanceof RaftError && e.code === 'invalidInput',
  );
  assert.throws(
    () => s.core.persisted(-1, 0),
    (e: unknown) => e instanceof RaftError,
  );
  assert.is(JSON.stringify(s.core.status()), before);
  assert.throws(
    () =>
      new RaftCore({
        id: 0,
        log: new MemoryLog(),
        conf: { voters: [1], learners: [] },
        random: Math.random,
      }),
    (e: unknown) => e instanceof RaftError && e.code === 'invalidConfig',
  );
  assert.throws(
    () =>
      new RaftCore({
        id: 1,
        log: new MemoryLog(),
        conf: { voters: [1], learners: [] },
        random: createPrng(1).next,
        options: { heartbeatTicks: 10, electionTimeoutTicks: 10 },
      }),
    (e: unknown) => e instanceof RaftError && e.code === 'invalidConfig',
  );
});

test('answers no correct peer could send are ignored by the leader', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader();
  s.core.step(appendOk(2, 1, 1, 99));
  assert.is(s.core.status().progress.find((p) => p.id === 2)?.match, 0);
  s.core.step(appendOk(2, 1, 1, 1));
  s.take();
  s.core.readIndex(5);
  s.take();
  s.core.step({ type: 'heartbeatResponse', term: 1, from: 3, to: 1, readSeq: 1000 });
  s.core.step({ type: 'heartbeatResponse', term: 1, from: 2, to: 1, readSeq: 1000 });
  assert.equal(
    s.take().reads.map((r) => r.context),
    [],
    'a future read round confirms nothing',
  );
});

test('restart from durable state: term, vote and log survive; configuration is rebuilt from the log', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  assert.ok(c.core(1).proposeConfChange({ type: 'addLearner', node: 4 }).ok);
  c.propose(1, 'a');
  c.stabilize();
  const term = c.core(2).currentTerm;
  c.node(2).crash();
  c.node(2).restart();
  assert.is(c.core(2).currentTerm, term);
  assert.equal(c.core(2).status().conf.learners, [4], 'config entry found in the log after applied');
  c.tick([1]);
  c.stabilize();
  assert.is(c.node(2).appliedIndex, c.core(1).commitIndex);
});

test.run();
