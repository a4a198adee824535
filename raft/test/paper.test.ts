// One test per rule of the Raft paper (Ongaro & Ousterhout 2014, "§5.x") and of the
// dissertation (Ongaro 2014, "thesis §x"), named by the section it checks.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppendMessage, Message, SnapshotMeta, VoteMessage } from '../src/index.js';
import { encodeConfState, MemoryLog } from '../src/index.js';
import { appendOk, bytes, Cluster, entriesOf, Solo, text } from './harness.js';

const T = 10; // electionTimeoutTicks (the default)

const of = <K extends Message['type']>(msgs: readonly Message[], type: K): Extract<Message, { type: K }>[] =>
  msgs.filter((m): m is Extract<Message, { type: K }> => m.type === type);

/** A follower at `term` whose log holds entries of the given terms. */
function follower(terms: number[], term: number, options = {}): Solo {
  const log = new MemoryLog();
  log.append(entriesOf(terms));
  return new Solo(1, [1, 2, 3], options, { log, hardState: { term, vote: 0, commit: 0 } });
}

function append(
  term: number,
  prevIndex: number,
  prevTerm: number,
  terms: number[],
  commit = 0,
): AppendMessage {
  return {
    type: 'append',
    term,
    from: 2,
    to: 1,
    prevIndex,
    prevTerm,
    entries: entriesOf(terms, prevIndex + 1),
    commit,
  };
}

/** A RequestVote to node 1 (a real vote unless `extra` says otherwise). */
function voteRequest(
  from: number,
  term: number,
  lastIndex = 0,
  lastTerm = 0,
  extra: Partial<VoteMessage> = {},
): VoteMessage {
  return { type: 'vote', term, from, to: 1, pre: false, lastIndex, lastTerm, transfer: false, ...extra };
}

// ---- §5.1 Raft basics ----

test('§5.1 a follower that sees a higher term adopts it and forgets its vote', () => {
  const s = new Solo(1, [1, 2, 3], {}, { hardState: { term: 2, vote: 3, commit: 0 } });
  s.core.step({ type: 'heartbeat', term: 5, from: 2, to: 1, commit: 0, readSeq: 0 });
  assert.is(s.core.currentTerm, 5);
  assert.is(s.core.currentLeader, 2);
  assert.equal(s.take().hardState, { term: 5, vote: 0, commit: 0 });
});

test('§5.1 a leader or candidate that sees a higher term becomes a follower', () => {
  const l = new Solo(1, [1, 2, 3]);
  l.becomeLeader();
  l.core.step(appendOk(2, 1, 9, 0));
  assert.is(l.core.currentRole, 'follower');
  assert.is(l.core.currentTerm, 9);
  const c = new Solo(1, [1, 2, 3]);
  c.tick(2 * T);
  assert.is(c.core.currentRole, 'candidate');
  c.core.step({ type: 'heartbeat', term: 4, from: 3, to: 1, commit: 0, readSeq: 0 });
  assert.is(c.core.currentRole, 'follower');
  assert.is(c.core.currentLeader, 3);
});

test('§5.1 a message with a stale term is refused; a stale leader is told the current term', () => {
  const s = new Solo(1, [1, 2, 3], {}, { hardState: { term: 5, vote: 0, commit: 0 } });
  s.core.step(append(3, 0, 0, [1]));
  const rd = s.take();
  assert.is(rd.logWrite, undefined, 'stale entries not taken');
  const resp = of(s.msgs(rd), 'appendResponse');
  assert.is(resp.length, 1);
  assert.is(resp[0]!.term, 5);
  s.core.step(voteRequest(3, 4, 9, 4));
  assert.equal(of(s.msgs(s.take()), 'voteResponse'), [], 'a stale vote request is dropped');
});

// ---- §5.2 Leader election ----

test('§5.2 after an election timeout a follower becomes candidate: new term, own vote, requests to every voter', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.tick(2 * T);
  assert.is(s.core.currentRole, 'candidate');
  assert.is(s.core.currentTerm, 1);
  const rd = s.take();
  assert.equal(rd.hardState, { term: 1, vote: 1, commit: 0 });
  const votes = of(rd.messagesAfterPersist, 'vote');
  assert.equal(votes.map((v) => v.to).sort(), [2, 3]);
  assert.ok(votes.every((v) => v.term === 1 && !v.pre && v.lastIndex === 0 && v.lastTerm === 0));
  assert.equal(of(rd.messagesNow, 'vote'), [], 'requests wait until the self-vote is durable');
});

test('§5.2 election timeouts are randomized in [T, 2T)', () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 200; seed++) {
    const s = new Solo(1, [1, 2, 3], {}, { seed });
    let ticks = 0;
    while (s.core.currentRole === 'follower' && ticks < 3 * T) {
      s.core.tick();
      ticks++;
    }
    assert.ok(ticks >= T && ticks < 2 * T, `seed ${seed}: campaigned after ${ticks} ticks`);
    seen.add(ticks);
  }
  assert.ok(seen.size >= T - 1, `only ${seen.size} distinct timeouts`);
});

test('§5.2 a candidate with votes from a majority becomes leader and sends appends to every peer', () => {
  const s = new Solo(1, [1, 2, 3, 4, 5]);
  s.tick(2 * T);
  s.take();
  s.core.step({ type: 'voteResponse', term: 1, from: 2, to: 1, pre: false, granted: true });
  assert.is(s.core.currentRole, 'candidate', 'two of five is not a majority');
  s.core.step({ type: 'voteResponse', term: 1, from: 3, to: 1, pre: false, granted: true });
  assert.is(s.core.currentRole, 'leader');
  const appends = of(s.take().messagesNow, 'append');
  assert.equal(appends.map((a) => a.to).sort(), [2, 3, 4, 5]);
});

test('§5.2 a node votes for at most one candidate per term, first come first served', () => {
  const s = new Solo(1, [1, 2, 3]);
  const vote = (from: number) => s.core.step(voteRequest(from, 1));
  vote(2);
  vote(3);
  vote(2); // a retransmission is answered the same way
  const grants = of(s.take().messagesAfterPersist, 'voteResponse').map((r) => [r.to, r.granted]);
  assert.equal(grants, [
    [2, true],
    [3, false],
    [2, true],
  ]);
});

test('§5.2 a vote is durable before it is granted', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.core.step(voteRequest(2, 1));
  const rd = s.take();
  assert.equal(rd.hardState, { term: 1, vote: 2, commit: 0 });
  assert.is(of(rd.messagesAfterPersist, 'voteResponse').length, 1);
  assert.is(of(rd.messagesNow, 'voteResponse').length, 0);
});

test('§5.2 a candidate that hears from a leader of its term becomes follower', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.tick(2 * T);
  s.core.step(append(1, 0, 0, []));
  assert.is(s.core.currentRole, 'follower');
  assert.is(s.core.currentLeader, 2);
});

test('§5.2 a candidate whose election times out (split vote) campaigns again in a new term', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.tick(2 * T);
  assert.is(s.core.currentTerm, 1);
  s.tick(2 * T);
  assert.is(s.core.currentRole, 'candidate');
  assert.is(s.core.currentTerm, 2);
});

test('§5.2 a candidate refused by a majority returns to follower', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.tick(2 * T);
  s.core.step({ type: 'voteResponse', term: 1, from: 2, to: 1, pre: false, granted: false });
  assert.is(s.core.currentRole, 'candidate');
  s.core.step({ type: 'voteResponse', term: 1, from: 3, to: 1, pre: false, granted: false });
  assert.is(s.core.currentRole, 'follower');
});

// ---- §5.3 Log replication ----

test('§5.3 the leader appends a proposal and sends it before its own write is durable (thesis §10.2.1)', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader();
  // Followers answer the first probe (the no-op) and move to pipelined replication.
  for (const from of [2, 3]) {
    s.core.step(appendOk(from, 1, 1, 1));
  }
  s.take();
  const r = s.core.propose([new TextEncoder().encode('x')]);
  assert.equal(r, { ok: true, firstIndex: 2, lastIndex: 2, term: 1 });
  const rd = s.take(false);
  assert.equal(
    rd.logWrite?.entries.map((e) => e.index),
    [2],
  );
  const appends = of(rd.messagesNow, 'append');
  assert.equal(appends.map((a) => a.to).sort(), [2, 3]);
  assert.ok(appends.every((a) => a.entries.some((e) => text(e) === 'x')));
});

test('§5.3 an entry commits once a majority holds it durably; the leader counts itself only after persisted()', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader(); // the no-op at index 1 is persisted
  s.core.propose([new TextEncoder().encode('x')]);
  s.take(false); // index 2 handed to storage, not yet durable
  s.core.step(appendOk(2, 1, 1, 2));
  assert.is(s.core.commitIndex, 1, 'leader (durable through 1) + follower 2: only index 1 has a majority');
  s.core.persisted(2, 1);
  assert.is(s.core.commitIndex, 2);
  const rd = s.take();
  assert.equal(
    rd.committed.map((e) => e.index),
    [1, 2],
  );
  assert.is(rd.hardState?.commit, 2);
});

test('§5.3 followers learn the commit index from appends and apply up to it', () => {
  const s = follower([], 1);
  s.core.step(append(1, 0, 0, [1, 1, 1], 2));
  const rd = s.take();
  assert.is(rd.hardState?.commit, 2);
  assert.equal(rd.committed, [], 'a follower applies only what it holds durably');
  assert.equal(
    s.take().committed.map((e) => e.index),
    [1, 2],
  );
});

test('§5.3 a follower refuses an append whose previous entry it does not hold', () => {
  const s = follower([1, 1], 2);
  s.core.step(append(2, 2, 2, [2]));
  const [resp] = of(s.msgs(s.take()), 'appendResponse');
  assert.ok(resp?.reject);
  assert.is(resp!.index, 2);
  assert.is(resp!.hintIndex, 2, 'our entry 2 has term 1 ≤ 2: the logs may agree up to there');
  assert.is(resp!.hintTerm, 1);
});

test('§5.3 a follower deletes a conflicting suffix and appends the leader entries', () => {
  const s = follower([1, 1, 1], 2);
  s.core.step(append(2, 1, 1, [2]));
  const rd = s.take();
  assert.is(rd.logWrite?.truncateFrom, 2);
  assert.equal(
    rd.logWrite?.entries.map((e) => `${e.index}:${e.term}`),
    ['2:2'],
  );
  assert.is(s.log.lastIndex(), 2);
  assert.is(s.log.term(2), 2);
});

test('§5.3 a follower acknowledges entries only once they are durable', () => {
  const s = follower([], 1);
  s.core.step(append(1, 0, 0, [1]));
  const rd = s.take();
  assert.is(of(rd.messagesNow, 'appendResponse').length, 0);
  const [ack] = of(rd.messagesAfterPersist, 'appendResponse');
  assert.ok(ack && !ack.reject && ack.index === 1);
});

test('§5.3 after a refusal the leader backs up, skipping a whole conflicting term by the hint, and retries', () => {
  const log = new MemoryLog();
  log.append(entriesOf([1, 1, 2, 2, 2]));
  const s = new Solo(1, [1, 2, 3], {}, { log, hardState: { term: 2, vote: 0, commit: 0 } });
  s.becomeLeader(); // term 3, no-op at 6, probes with prevIndex 5
  // Follower 2 holds [1, 1, 1, 1]: entry 5 missing, its entry 4 has term 1.
  s.core.step({
    type: 'appendResponse',
    term: 3,
    from: 2,
    to: 1,
    index: 5,
    reject: true,
    hintIndex: 4,
    hintTerm: 1,
  });
  const [retry] = of(s.take().messagesNow, 'append').filter((a) => a.to === 2);
  assert.is(retry?.prevIndex, 2, 'our last entry of term ≤ 1 is at index 2');
  assert.is(retry?.prevTerm, 1);
  assert.equal(
    retry?.entries.map((e) => e.index),
    [3, 4, 5, 6],
  );
});

test('§5.3 §5.5 a duplicated append changes nothing and is acknowledged again', () => {
  const s = follower([], 1);
  const m = append(1, 0, 0, [1, 1]);
  s.core.step(m);
  s.take();
  s.core.step(m);
  const rd = s.take();
  assert.is(rd.logWrite, undefined);
  const [ack] = of(rd.messagesAfterPersist, 'appendResponse');
  assert.is(ack?.index, 2);
});

// ---- Figure 2, rule by rule: what a receiver does with AppendEntries and RequestVote ----
// Each test pins one rule so that breaking it fails here, not only (rarely) in a seed.

test('Figure 2 AppendEntries 1: an append of a lower term is refused and changes nothing', () => {
  const s = follower([1, 1], 3);
  s.core.step(append(2, 2, 1, [2, 2], 4));
  const rd = s.take();
  assert.is(rd.logWrite, undefined, 'nothing written');
  assert.is(s.core.commitIndex, 0, 'commit unmoved');
  assert.is(s.core.currentTerm, 3);
  assert.is(s.core.currentLeader, 0, 'a stale leader is not taken for the leader');
});

test('Figure 2 AppendEntries 2: a refused append (no matching prevLogIndex/prevLogTerm) moves neither the log nor commit', () => {
  for (const [prevIndex, prevTerm, why] of [
    [4, 1, 'prevLogIndex beyond the log'],
    [2, 2, 'a different term at prevLogIndex'],
  ] as const) {
    const s = follower([1, 1], 2);
    s.core.step(append(2, prevIndex, prevTerm, [2], 3));
    const rd = s.take();
    const [resp] = of(s.msgs(rd), 'appendResponse');
    assert.ok(resp?.reject, why);
    assert.is(rd.logWrite, undefined, `${why}: nothing written`);
    assert.is(
      s.core.commitIndex,
      0,
      `${why}: the leader's commit says nothing about a log that does not match`,
    );
  }
});

test('Figure 2 AppendEntries 3: only a conflicting entry and what follows it are deleted; matching entries stay', () => {
  const s = follower([1, 1, 1, 1], 2);
  // Entries 2 and 3 agree (term 1), entry 4 conflicts (term 2 vs our term 1).
  s.core.step(append(2, 1, 1, [1, 1, 2]));
  const rd = s.take();
  assert.is(rd.logWrite?.truncateFrom, 4, 'the cut is at the first conflict, not at the first entry sent');
  assert.equal(
    rd.logWrite?.entries.map((e) => `${e.index}:${e.term}`),
    ['4:2'],
  );
});

test('Figure 2 AppendEntries 4: an older (shorter) append never cuts entries that match it', () => {
  const s = follower([1, 1, 1, 1], 1);
  // A delayed copy of an append that carried only entry 2.
  s.core.step(append(1, 1, 1, [1]));
  const rd = s.take();
  assert.is(rd.logWrite, undefined, 'entries 3 and 4 stay');
  assert.is(s.log.lastIndex(), 4);
  const [ack] = of(s.msgs(rd), 'appendResponse');
  assert.is(ack?.index, 2, 'it acknowledges what the append proved, not its whole log');
});

test('Figure 2 AppendEntries 5: commitIndex = min(leaderCommit, index of the last new entry), never the end of our log', () => {
  // Entries 3..5 are left from term 1 and were never committed; the leader of term 2 has
  // other entries there and has committed through 5.
  const s = follower([1, 1, 1, 1, 1], 2);
  s.core.step(append(2, 2, 1, [], 5));
  s.take();
  assert.is(s.core.commitIndex, 2, 'an empty append proves the logs agree through prevLogIndex only');
  s.core.step(append(2, 2, 1, [1], 5));
  const rd = s.take();
  assert.is(s.core.commitIndex, 3, 'through the last entry the append carried');
  assert.ok(
    [...rd.committed, ...s.take().committed].every((e) => e.index <= 3),
    'no entry past the last new one is applied',
  );
  // A later append with a lower leaderCommit never lowers it.
  s.core.step(append(2, 3, 1, [], 1));
  s.take();
  assert.is(s.core.commitIndex, 3);
});

test('Figure 2 AppendEntries 5: a heartbeat commits no further than the follower’s own log', () => {
  const s = follower([1, 1], 1);
  s.core.step({ type: 'heartbeat', term: 1, from: 2, to: 1, commit: 5, readSeq: 0 });
  const rd = s.take();
  assert.is(s.core.commitIndex, 2);
  const [resp] = of(s.msgs(rd), 'heartbeatResponse');
  assert.is(resp?.logEnd, 2, 'and tells the leader where its log ends');
});

test('Figure 2 RequestVote 1: a request of a lower term is not granted and changes nothing', () => {
  const s = follower([1], 3);
  s.core.step(voteRequest(2, 2, 9, 2));
  const rd = s.take();
  assert.ok(
    of(s.msgs(rd), 'voteResponse').every((r) => !r.granted),
    'no grant',
  );
  assert.is(rd.hardState, undefined, 'neither term nor vote recorded');
  assert.is(s.core.currentTerm, 3);
});

test('Figure 2 RequestVote 2: granted only when votedFor is none or the candidate, and its log is at least as up to date', () => {
  const s = follower([1, 2], 2);
  const ask = (from: number, term: number, lastIndex: number, lastTerm: number) => {
    s.core.step(voteRequest(from, term, lastIndex, lastTerm));
    const [r] = of(s.msgs(s.take()), 'voteResponse');
    return r?.granted;
  };
  assert.is(ask(2, 3, 1, 1), false, 'a log behind ours (last term 1 < 2)');
  assert.is(s.core.status().vote, 0, 'a refusal records no vote');
  assert.is(ask(3, 3, 2, 2), true, 'votedFor none, log as up to date');
  assert.is(ask(2, 3, 5, 3), false, 'votedFor is 3 in term 3, even for a better log');
  assert.is(ask(3, 3, 2, 2), true, 'the same candidate again');
});

test('Figure 2 Followers: granting a vote restarts the election timer; hearing nothing lets it run out', () => {
  // Two identical followers of term 1 (same seed): one campaigns after k ticks on its own.
  // The vote asked is of their own term, so no term change resets the timer for it.
  const at1 = () => new Solo(1, [1, 2, 3], {}, { seed: 9, hardState: { term: 1, vote: 0, commit: 0 } });
  const alone = at1();
  let k = 0;
  while (alone.core.currentRole === 'follower' && k < 3 * T) {
    alone.core.tick();
    k++;
  }
  const s = at1();
  s.tick(k - 1);
  s.core.step(voteRequest(2, 1));
  s.take();
  s.tick(T - 1);
  assert.is(s.core.currentRole, 'follower', 'no campaign within T ticks of granting a vote');
  s.tick(2 * T);
  assert.is(s.core.currentRole, 'candidate', 'with no leader and no candidate it campaigns');
});

test('Figure 2 Leaders: matchIndex only grows; a reordered, older acknowledgement does not lower it', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader(); // term 1, no-op at 1
  for (let i = 0; i < 4; i++) s.core.propose([bytes(`v${i}`)]);
  s.take();
  s.core.step(appendOk(2, 1, 1, 5));
  s.core.step(appendOk(2, 1, 1, 3));
  const pr = s.core.status().progress.find((p) => p.id === 2)!;
  assert.is(pr.match, 5);
  assert.ok(pr.next >= 6);
  assert.is(s.core.commitIndex, 5, 'leader and node 2 hold 1..5');
  // A stale refusal for an earlier probe does not send next below match.
  s.core.step({
    type: 'appendResponse',
    term: 1,
    from: 2,
    to: 1,
    index: 2,
    reject: true,
    hintIndex: 1,
    hintTerm: 1,
  });
  const after = s.core.status().progress.find((p) => p.id === 2)!;
  assert.is(after.match, 5);
  assert.ok(after.next > 5);
});

// ---- §5.4 Safety ----

test('§5.4.1 a voter refuses a candidate whose log is less up-to-date', () => {
  const s = follower([1, 2], 2);
  const vote = (from: number, lastIndex: number, lastTerm: number) => {
    s.core.step(voteRequest(from, 3, lastIndex, lastTerm));
    const [r] = of(s.msgs(s.take()), 'voteResponse');
    return r?.granted;
  };
  assert.is(vote(2, 9, 1), false, 'lower last term, longer log');
  assert.is(vote(3, 1, 2), false, 'same last term, shorter log');
  assert.is(vote(3, 2, 2), true, 'same last term, same length');
});

test('§5.4.2 a leader does not commit an entry of an earlier term by counting replicas; a current-term entry commits all before it', () => {
  const log = new MemoryLog();
  log.append(entriesOf([1, 2]));
  const s = new Solo(1, [1, 2, 3], {}, { log, hardState: { term: 2, vote: 0, commit: 0 } });
  s.becomeLeader(); // term 3, no-op at index 3, durable
  s.core.step(appendOk(2, 1, 3, 2));
  assert.is(s.core.commitIndex, 0, 'index 2 (term 2) is on a majority but not of this term');
  s.core.step(appendOk(2, 1, 3, 3));
  assert.is(s.core.commitIndex, 3);
});

// ---- §6 Cluster membership changes (thesis §4) ----

function leaderWithCommittedNoop(): Cluster {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  return c;
}

test('§6 (thesis §4.1) a configuration takes effect when its entry is appended, before it commits', () => {
  const c = leaderWithCommittedNoop();
  const r = c.core(1).proposeConfChange({ type: 'addLearner', node: 4 });
  assert.ok(r.ok);
  assert.equal(c.core(1).status().conf.learners, [4]);
  assert.ok(
    c
      .core(1)
      .status()
      .progress.some((p) => p.id === 4 && p.learner),
  );
  assert.ok(c.core(1).commitIndex < (r.ok ? r.lastIndex : 0));
});

test('§6 (thesis §4.1) a follower falls back to the previous configuration when a config entry is truncated', () => {
  const s = follower([], 1);
  const configEntry = {
    index: 2,
    term: 1,
    type: 'config' as const,
    data: encodeConfState({ voters: [1, 2, 3], learners: [4] }),
  };
  s.core.step({ ...append(1, 0, 0, [1]), entries: [...entriesOf([1]), configEntry] });
  s.take();
  assert.equal(s.core.status().conf.learners, [4]);
  s.core.step(append(2, 1, 1, [2]));
  s.take();
  assert.equal(s.core.status().conf, { voters: [1, 2, 3], learners: [] });
});

test('§6 (thesis §4.1) one uncommitted change at a time, and only after the leader commits in its term', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  const l = c.core(1);
  for (let i = 0; i < 100 && l.currentRole !== 'leader'; i++) {
    l.tick();
    c.processReadies();
    c.deliverAll(); // votes arrive
    c.processReadies();
  }
  assert.is(l.currentRole, 'leader');
  if (l.commitIndex === 0) {
    const early = l.proposeConfChange({ type: 'addLearner', node: 4 });
    assert.is(early.ok ? '' : early.reason, 'leaderNotReady');
  }
  c.stabilize();
  assert.ok(l.proposeConfChange({ type: 'addLearner', node: 4 }).ok);
  const second = l.proposeConfChange({ type: 'addLearner', node: 5 });
  assert.is(second.ok ? '' : second.reason, 'changePending');
  const bad = new Cluster({ ids: [1, 2, 3] });
  bad.elect(1);
  const invalid = bad.core(1).proposeConfChange({ type: 'promote', node: 2 });
  assert.is(invalid.ok ? '' : invalid.reason, 'invalidChange');
});

test('§6 (thesis §4.2.1) a learner gets the log but neither campaigns nor counts for commit; promotion waits for catch-up', () => {
  const c = new Cluster({
    ids: [1, 2, 3, 4],
    conf: { voters: [1, 2, 3], learners: [4] },
    options: { promotionMaxLagEntries: 2 },
  });
  for (let i = 0; i < 5 * T; i++) c.tick([4]);
  assert.is(c.core(4).currentRole, 'follower', 'a learner never campaigns');
  c.elect(1);
  c.propose(1, 'a');
  c.stabilize();
  assert.is(c.node(4).appliedIndex, 2, 'the learner receives and applies the log');
  c.partition([1, 4], [2, 3]);
  c.propose(1, 'b');
  c.stabilize();
  assert.is(c.core(1).commitIndex, 2, 'leader + learner is not a majority');
  c.heal();
  c.stabilize();
  c.tick([1]);
  c.stabilize();
  assert.is(c.core(1).commitIndex, 3);
  // Lagging learner: refused promotion.
  c.partition([1, 2, 3], [4]);
  for (let i = 0; i < 5; i++) c.propose(1, `x${i}`);
  c.stabilize();
  const refused = c.core(1).proposeConfChange({ type: 'promote', node: 4 });
  assert.is(refused.ok ? '' : refused.reason, 'notCaughtUp');
  c.heal();
  c.tick([1]);
  c.stabilize();
  assert.ok(c.core(1).proposeConfChange({ type: 'promote', node: 4 }).ok);
  c.stabilize();
  assert.equal(c.core(4).status().conf.voters.sort(), [1, 2, 3, 4]);
});

test('§6 (thesis §4.2.3) a node that heard from its leader within the election timeout ignores vote requests', () => {
  const s = follower([], 1);
  s.core.step(append(1, 0, 0, [1]));
  s.take();
  s.core.step(voteRequest(3, 7, 99, 6));
  assert.is(s.core.currentTerm, 1, 'term unchanged');
  assert.equal(of(s.msgs(s.take()), 'voteResponse'), []);
  s.tick(T);
  s.core.step(voteRequest(3, 7, 99, 6));
  assert.is(s.core.currentTerm, 7, 'after the lease the request is heard');
});

test('§6 (thesis §4.2.2) a leader removed from the configuration steps down once the removal commits', () => {
  const c = leaderWithCommittedNoop();
  const r = c.core(1).proposeConfChange({ type: 'remove', node: 1 });
  assert.ok(r.ok);
  assert.is(c.core(1).currentRole, 'leader', 'it keeps leading while the removal commits');
  c.stabilize();
  assert.is(c.core(1).currentRole, 'follower');
  for (let i = 0; i < 3 * T; i++) c.tick([1]);
  assert.is(c.core(1).currentRole, 'follower', 'a removed node does not campaign');
});

// ---- §7 Log compaction ----

function metaAt(index: number, term: number, size: number): SnapshotMeta {
  return { index, term, conf: { voters: [1, 2, 3], learners: [] }, size };
}

test('§7 a leader sends a snapshot to a follower whose next entry was compacted away', () => {
  const c = new Cluster({ ids: [1, 2, 3] });
  c.elect(1);
  c.partition([1, 2], [3]);
  for (let i = 0; i < 5; i++) c.propose(1, `e${i}`);
  c.stabilize();
  c.node(1).takeSnapshot(40);
  assert.ok(c.node(1).view.firstIndex() > 2);
  c.heal();
  c.keepReadies = true;
  c.tick([1]);
  c.stabilize();
  assert.ok(c.node(3).readies.some((rd) => rd.snapshot.some((w) => w.type === 'install')));
  assert.is(c.node(3).appliedIndex, c.core(1).commitIndex);
  c.propose(1, 'after');
  c.stabilize();
  assert.is(text(c.node(3).applied.get(c.core(1).commitIndex)), 'after');
});

test('§7 a follower whose log holds the snapshot last entry keeps its log and installs nothing', () => {
  const s = follower([1, 1, 1], 1);
  s.core.step({
    type: 'snapshotChunk',
    term: 1,
    from: 2,
    to: 1,
    meta: metaAt(2, 1, 3),
    offset: 0,
    length: 3,
    done: true,
    data: new Uint8Array(3),
  });
  const rd = s.take();
  assert.equal(rd.snapshot, []);
  assert.is(s.log.lastIndex(), 3);
  assert.is(s.core.commitIndex, 2);
  assert.is(of(rd.messagesAfterPersist, 'appendResponse')[0]?.index, 2);
});

test('§7 a follower installs a snapshot, discarding its log and taking the snapshot configuration', () => {
  const s = follower([1, 1], 1);
  const meta: SnapshotMeta = { index: 5, term: 2, conf: { voters: [1, 2, 3], learners: [7] }, size: 3 };
  s.core.step({
    type: 'snapshotChunk',
    term: 2,
    from: 2,
    to: 1,
    meta,
    offset: 0,
    length: 3,
    done: true,
    data: new Uint8Array(3),
  });
  const rd = s.take();
  assert.equal(
    rd.snapshot.map((w) => w.type),
    ['writeChunk', 'install'],
  );
  assert.is(s.log.firstIndex(), 6);
  assert.is(s.log.lastIndex(), 5);
  assert.equal(s.core.status().conf.learners, [7]);
  assert.is(
    of(rd.messagesAfterPersist, 'appendResponse')[0]?.index,
    5,
    'acknowledged once the install is durable',
  );
  s.core.snapshotInstalled(meta);
  assert.is(s.core.status().applied, 5);
});

test('§7 chunks are taken in order; after a gap the follower asks to resend from what it has', () => {
  const s = follower([], 1);
  const meta = metaAt(9, 1, 6);
  const chunk = (offset: number, length: number) =>
    s.core.step({
      type: 'snapshotChunk',
      term: 1,
      from: 2,
      to: 1,
      meta,
      offset,
      length,
      done: offset + length === 6,
      data: new Uint8Array(length),
    });
  chunk(0, 2);
  chunk(4, 2);
  const acks = of(s.take().messagesAfterPersist, 'snapshotAck');
  assert.equal(
    acks.map((a) => [a.offset, a.rewind]),
    [
      [2, false],
      [2, true],
    ],
  );
});

// ---- §8 Client interaction (thesis §6) ----

test('§8 a new leader appends a no-op entry of its term', () => {
  const s = new Solo(1, [1, 2, 3]);
  const rd = s.becomeLeader();
  assert.equal(
    rd.logWrite?.entries.map((e) => [e.index, e.term, e.type]),
    [[1, 1, 'noop']],
  );
});

test('§8 (thesis §6.4) a read waits until the leader has committed an entry of its term', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader();
  assert.ok(s.core.readIndex(7).ok);
  let rd = s.take();
  assert.equal(rd.reads, []);
  assert.equal(of(rd.messagesNow, 'heartbeat'), [], 'no round before the no-op commits');
  s.core.step(appendOk(2, 1, 1, 1));
  rd = s.take();
  const hbs = of(rd.messagesNow, 'heartbeat');
  assert.equal(
    hbs.map((h) => h.readSeq),
    [1, 1],
  );
});

test('§8 (thesis §6.4) a read is served at the commit index once a quorum answers a heartbeat round', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader();
  s.core.step(appendOk(2, 1, 1, 1));
  s.take();
  s.core.readIndex(42);
  const hbs = of(s.take().messagesNow, 'heartbeat');
  assert.is(hbs.length, 2);
  assert.equal(s.take().reads, []);
  s.core.step({ type: 'heartbeatResponse', term: 1, from: 3, to: 1, readSeq: hbs[0]!.readSeq });
  assert.equal(s.take().reads, [{ type: 'ready', context: 42, index: 1 }]);
});

test('§8 (thesis §6.4) a follower forwards a read and serves it at the leader commit index', () => {
  const c = leaderWithCommittedNoop();
  c.propose(1, 'a');
  c.stabilize();
  assert.ok(c.core(2).readIndex(5).ok);
  c.stabilize();
  assert.equal(c.node(2).reads, [{ type: 'ready', context: 5, index: 2 }]);
  const lone = new Solo(1, [1, 2, 3]);
  assert.equal(lone.core.readIndex(1), { ok: false, reason: 'noLeader' });
});

test('§8 (thesis §6.4) reads pending on a leader fail when it loses leadership', () => {
  const s = new Solo(1, [1, 2, 3]);
  s.becomeLeader();
  s.core.step(appendOk(2, 1, 1, 1));
  s.core.readIndex(3);
  s.take();
  s.core.step({ type: 'heartbeat', term: 2, from: 2, to: 1, commit: 0, readSeq: 0 });
  assert.equal(s.take().reads, [{ type: 'failed', context: 3, reason: 'leaderChanged' }]);
});

// ---- thesis §3.10 Leadership transfer ----

test('thesis §3.10 the leader catches the target up, then sends TimeoutNow; the target wins at once', () => {
  const c = leaderWithCommittedNoop();
  c.partition([1, 2], [3]);
  c.propose(1, 'a', 'b');
  c.stabilize();
  c.heal();
  assert.ok(c.core(1).transferLeadership(3).ok);
  c.stabilize();
  assert.is(c.core(3).currentRole, 'leader');
  assert.is(c.core(1).currentRole, 'follower');
});

test('thesis §3.10 proposals are refused during a transfer, and accepted again after it is abandoned', () => {
  const c = leaderWithCommittedNoop();
  c.partition([1, 2], [3]);
  c.propose(1, 'a');
  c.stabilize();
  assert.ok(c.core(1).transferLeadership(3).ok);
  const r = c.propose(1, 'b');
  assert.is(r.ok ? '' : r.reason, 'transferring');
  c.ticks(T, [1]);
  assert.is(c.core(1).currentRole, 'leader');
  assert.ok(c.propose(1, 'c').ok, 'transfer abandoned after an election timeout');
});

test('thesis §3.10 voters grant a transfer campaign even within their leader lease', () => {
  const s = follower([], 1);
  s.core.step(append(1, 0, 0, [1]));
  s.take();
  s.core.step(voteRequest(3, 2, 1, 1, { transfer: true }));
  const [r] = of(s.msgs(s.take()), 'voteResponse');
  assert.ok(r?.granted);
});

// ---- thesis §9.6 PreVote ----

test('thesis §9.6 a pre-candidate asks for votes at term + 1 without changing its term', () => {
  const s = new Solo(1, [1, 2, 3], { preVote: true });
  s.tick(2 * T);
  assert.is(s.core.currentRole, 'preCandidate');
  assert.is(s.core.currentTerm, 0);
  const rd = s.take();
  const pre = of(rd.messagesNow, 'vote');
  assert.ok(pre.length === 2 && pre.every((v) => v.pre && v.term === 1));
  assert.is(rd.hardState, undefined, 'nothing durable changes');
});

test('thesis §9.6 a pre-vote is granted without recording a vote or changing the term', () => {
  const s = new Solo(1, [1, 2, 3], { preVote: true });
  s.core.step(voteRequest(2, 1, 0, 0, { pre: true }));
  const rd = s.take();
  const [r] = of(rd.messagesNow, 'voteResponse');
  assert.ok(r?.granted && r.pre && r.term === 1);
  assert.is(s.core.currentTerm, 0);
  assert.is(rd.hardState, undefined);
});

test('thesis §9.6 a pre-candidate that wins the pre-vote starts a real election', () => {
  const s = new Solo(1, [1, 2, 3], { preVote: true });
  s.tick(2 * T);
  s.core.step({ type: 'voteResponse', term: 1, from: 2, to: 1, pre: true, granted: true });
  assert.is(s.core.currentRole, 'candidate');
  assert.is(s.core.currentTerm, 1);
});

// ---- thesis §6.2 CheckQuorum ----

test('thesis §6.2 a leader that has not heard from a quorum in an election timeout steps down', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { checkQuorum: true } });
  c.elect(1);
  c.partition([1], [2, 3]);
  for (let i = 0; i < 2 * T && c.core(1).currentRole === 'leader'; i++) {
    c.tick([1]);
    c.stabilize();
  }
  assert.is(c.core(1).currentRole, 'follower');
});

test('thesis §6.2 a leader that hears from a quorum keeps leading', () => {
  const c = new Cluster({ ids: [1, 2, 3], options: { checkQuorum: true } });
  c.elect(1);
  c.partition([1, 2], [3]);
  c.ticks(5 * T, [1]);
  assert.is(c.core(1).currentRole, 'leader');
});

test.run();
