// The peer transport's check of Raft messages, for the fields of a lost-entries repair: a
// follower asks for a repair bound (`repairing`, with its token), the leader sends one
// (`repairBound`, `repairToken`).
// Well-formed messages pass; anything else is refused with a reason, never handed to Raft.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import { raftMessageValidator } from '../src/peer/raft-messages.js';

const validate = raftMessageValidator(createCore());
const envelope = { term: 3, from: 1, to: 2 };
const append = { ...envelope, type: 'append', prevIndex: 4, prevTerm: 3, entries: [], commit: 4 };
const heartbeat = { ...envelope, type: 'heartbeat', commit: 4, readSeq: 0 };
const appendResponse = {
  ...envelope,
  type: 'appendResponse',
  index: 4,
  reject: false,
  hintIndex: 0,
  hintTerm: 0,
};
const heartbeatResponse = { ...envelope, type: 'heartbeatResponse', readSeq: 0 };

test('repair fields: present and well formed, or absent', () => {
  for (const m of [
    append,
    { ...append, repairBound: 0 },
    { ...append, repairBound: 17, repairToken: 12345 },
    heartbeat,
    { ...heartbeat, repairBound: 17, repairToken: 1 },
    appendResponse,
    { ...appendResponse, repairing: 12345 },
    heartbeatResponse,
    { ...heartbeatResponse, repairing: 1, logEnd: 2 },
  ])
    assert.is(validate(m), null, JSON.stringify(m));
});

test('repair fields: any other value is refused with a reason', () => {
  for (const m of [
    { ...append, repairBound: -1 },
    { ...append, repairBound: 1.5 },
    { ...append, repairBound: '17' },
    { ...heartbeat, repairBound: Number.MAX_SAFE_INTEGER + 2 },
    { ...heartbeat, repairBound: null },
    { ...append, repairBound: 17, repairToken: -3 },
    { ...heartbeat, repairBound: 17, repairToken: 'x' },
    { ...appendResponse, repairing: true },
    { ...appendResponse, repairing: 0 },
    { ...appendResponse, repairing: 1.5 },
    { ...heartbeatResponse, repairing: 'yes' },
  ]) {
    const why = validate(m);
    assert.type(why, 'string', JSON.stringify(m));
    assert.ok(why!.length > 0);
  }
});

test.run();
