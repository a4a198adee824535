// The Raft safety checker fed by hand: each property fails on the history that breaks it
// and stays quiet on the legal one next to it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import { type Entry, MemoryLog } from '../../raft/src/index.js';
import { RaftSafetyChecker } from '../src/checkers/raft-safety.js';

const core = createCore();
const enc = new TextEncoder();

function checker(): { c: RaftSafetyChecker; failures: string[] } {
  const failures: string[] = [];
  return { c: new RaftSafetyChecker(core, (p, m) => failures.push(`${p}: ${m}`)), failures };
}
const entry = (index: number, term: number, data = `e${index}.${term}`): Entry => ({
  index,
  term,
  type: 'normal',
  data: enc.encode(data),
});
function log(entries: Entry[]): MemoryLog {
  const l = new MemoryLog();
  l.append(entries);
  return l;
}

test('election safety: two leaders of one term', () => {
  const { c, failures } = checker();
  c.sampleLeader(1, 5, 3, log([]), [1, 2, 3]);
  c.sampleLeader(1, 5, 3, log([]), [1, 2, 3]); // the same leader seen again
  c.sampleLeader(2, 5, 4, log([]), [1, 2, 3]); // a leader of a later term
  assert.equal(failures, []);
  c.sampleLeader(3, 5, 4, log([]), [1, 2, 3]);
  assert.match(failures[0]!, /^election-safety: group 5: nodes 2 and 3 both led term 4/);
});

test('vote safety: one vote per voter and term', () => {
  const { c, failures } = checker();
  c.onVoteGranted(0, 1, 7, 2);
  c.onVoteGranted(0, 1, 7, 2); // a duplicate
  c.onVoteGranted(0, 1, 8, 3);
  assert.equal(failures, []);
  c.onVoteGranted(0, 1, 8, 2);
  assert.match(failures[0]!, /^vote-safety: group 0: node 1 voted for both 3 and 2 in term 8/);
});

test('log matching: same index and term with other data, or after another term', () => {
  const { c, failures } = checker();
  c.onWrite(1, 0, { truncateFrom: undefined, entries: [entry(1, 1), entry(2, 1)] }, 0);
  c.onWrite(2, 0, { truncateFrom: undefined, entries: [entry(1, 1), entry(2, 1)] }, 0);
  assert.equal(failures, []);
  c.onWrite(3, 0, { truncateFrom: undefined, entries: [entry(2, 1, 'other')] }, 1);
  assert.match(failures[0]!, /^log-matching: group 0: entry 2 of term 1 differs between node 1 and node 3/);
  const second = checker();
  second.c.onWrite(1, 0, { truncateFrom: undefined, entries: [entry(4, 3)] }, 2);
  second.c.onWrite(2, 0, { truncateFrom: undefined, entries: [entry(4, 3)] }, 1);
  assert.match(second.failures[0]!, /follows term 2 on node 1 but term 1 on node 2/);
});

test('state-machine safety: different entries applied at one index, or out of order', () => {
  const { c, failures } = checker();
  c.onApplied(1, 0, entry(1, 1), 1);
  c.onApplied(2, 0, entry(1, 1), 1);
  c.onApplied(1, 0, entry(2, 1), 1);
  assert.equal(failures, []);
  c.onApplied(2, 0, entry(2, 2), 2);
  assert.match(failures[0]!, /^state-machine-safety: group 0: node 2 applied entry 2 \(term 2\)/);
  c.onApplied(1, 0, entry(4, 2), 2);
  assert.match(failures[1]!, /node 1 applied entry 4 after 2/);
});

test('leader completeness: a later leader must hold what was committed before its term', () => {
  const { c, failures } = checker();
  c.onApplied(1, 0, entry(1, 1), 1);
  c.onApplied(1, 0, entry(2, 1), 1);
  c.sampleLeader(2, 0, 2, log([entry(1, 1), entry(2, 1), entry(3, 2)]), [1, 2, 3]);
  assert.equal(failures, []);
  c.sampleLeader(3, 0, 3, log([entry(1, 1), entry(2, 2)]), [1, 2, 3]);
  assert.match(
    failures[0]!,
    /^leader-completeness: group 0: node 3 leads term 3 but holds an entry of term 2 at committed index 2/,
  );
});

test('leader completeness ahead of time: a voter without a committed entry that could still win', () => {
  const { c, failures } = checker();
  c.onApplied(1, 0, entry(1, 1), 1);
  c.onApplied(1, 0, entry(2, 1), 1);
  const holder = log([entry(1, 1), entry(2, 1)]);
  // Node 3 lacks entry 2 and its log is behind: nobody holding it would vote for it.
  const behind = log([entry(1, 1)]);
  c.checkElectable(
    0,
    [1, 2, 3],
    new Map([
      [1, { log: holder, canVote: true }],
      [2, { log: holder, canVote: true }],
      [3, { log: behind, canVote: true }],
    ]),
  );
  assert.equal(failures, []);
  // Node 3 holds a conflicting entry of a later term (Raft Figure 8): two voters would elect it.
  const conflicting = log([entry(1, 1), entry(2, 3)]);
  const lagging = log([entry(1, 1)]);
  c.onApplied(1, 0, entry(3, 1), 1); // a newer commit makes the check run again
  c.checkElectable(
    0,
    [1, 2, 3],
    new Map([
      [1, { log: log([entry(1, 1), entry(2, 1), entry(3, 1)]), canVote: true }],
      [2, { log: lagging, canVote: true }],
      [3, { log: conflicting, canVote: true }],
    ]),
  );
  assert.match(failures[0]!, /^leader-completeness: group 0: entry 3 \(term 1\) is committed, yet node 3/);
});

test('storage durability: what sync promised comes back after a restart, unless damage is reported', () => {
  const { c, failures } = checker();
  c.setDurable(1, 0, { index: 2, term: 1, hsTerm: 3, hsVote: 2 });
  c.checkRecovered(1, 0, { term: 3, vote: 2, commit: 0 }, log([entry(1, 1), entry(2, 1)]), false);
  assert.equal(failures, []);
  c.checkRecovered(1, 0, { term: 3, vote: 0, commit: 0 }, log([entry(1, 1), entry(2, 1)]), false);
  assert.match(failures[0]!, /vote for 2 in term 3 was durable, no vote came back/);
  c.checkRecovered(1, 0, { term: 3, vote: 2, commit: 0 }, log([entry(1, 1)]), false);
  assert.match(failures[1]!, /entry 2 of term 1 was durable; after the restart the log ends at 1/);
  c.checkRecovered(1, 0, undefined, log([]), true); // damage reported: the node waits for repair
  assert.is(failures.length, 2);
});

test.run();
