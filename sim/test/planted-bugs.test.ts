// The checkers can fail: known bugs are planted into the real raft/ and node/ code (by
// replacing a method for the duration of a test, planted.ts), and the simulator must
// catch each within a budget of seeds, under a fault profile that suits the bug; the seed
// that caught it must then pass with the bug taken out again (so the failure is the bug's).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type SimOptionsInput, type SimResult, simulate } from '../src/index.js';
import {
  plantAckBeforeFsync,
  plantCommitByCounting,
  plantForgetVote,
  plantHeartbeatFullCommit,
  plantReadSkipsRestOfBatch,
  plantRepairEndsAtOwnBound,
} from './planted.js';

type Profile = Omit<SimOptionsInput, 'seed'>;

async function hunt(
  plant: () => () => void,
  profile: Profile,
  firstSeed: number,
  budget: number,
  properties: string[],
): Promise<void> {
  let caught: SimResult | undefined;
  const undo = plant();
  try {
    for (let seed = firstSeed; seed < firstSeed + budget && caught === undefined; seed++) {
      const r = await simulate({ ...profile, seed });
      if (!r.passed) caught = r;
    }
  } finally {
    undo();
  }
  assert.ok(caught !== undefined, `not caught within ${budget} seeds from ${firstSeed}`);
  const v = caught.violation!;
  assert.ok(properties.includes(v.property), `caught as ${v.property}: ${v.message}`);
  const clean = await simulate({ ...profile, seed: caught.seed });
  assert.ok(clean.passed, `seed ${caught.seed} fails without the bug too: ${clean.violation?.message}`);
}

// Elections and leader changes in quick succession, small messages (several per batch).
const leaderChurn: Profile = {
  timeMs: 3000,
  nodes: 5,
  faults: ['crash', 'isolate-leader', 'partition', 'pause'],
  maxAppendEntriesBytes: 4096,
  nemesis: { meanIntervalMs: 40, meanDurationMs: 60 },
  network: { latencyUs: 1000, jitterUs: 4000 },
  disk: { syncUs: 2000 },
  electionTicks: 5,
  heartbeatTicks: 1,
  tickMs: 10,
  workload: {
    clients: 5,
    thinkMs: 5,
    valueBytes: 1500,
    maxRecordsPerAppend: 2,
    mix: { append: 3, idempotent: 0, conditional: 0, poll: 1, linearizablePoll: 0 },
  },
};

test('committing an earlier term’s entry by counting replicas (Raft §5.4.2, Figure 8)', async () => {
  await hunt(plantCommitByCounting, leaderChurn, 1000, 12, [
    'commit-rule',
    'leader-completeness',
    'state-machine-safety',
  ]);
});

test('heartbeats carrying the whole commit index, not min(match, commit): a stale suffix commits', async () => {
  await hunt(plantHeartbeatFullCommit, leaderChurn, 1, 8, ['commit-bound']);
});

test('acknowledging entries (and votes) before they are fsynced', async () => {
  await hunt(
    plantAckBeforeFsync,
    {
      timeMs: 5000,
      nodes: 3,
      faults: ['power-loss-all', 'power-loss'],
      nemesis: { meanIntervalMs: 300 },
      disk: { syncUs: 5000 },
      workload: {
        thinkMs: 5,
        mix: { append: 3, idempotent: 0, conditional: 0, poll: 1, linearizablePoll: 0 },
      },
    },
    1,
    12,
    ['leader-completeness', 'election-safety', 'vote-safety', 'state-machine-safety', 'lost-write', 'unseen'],
  );
});

test('forgetting the vote (not persisting it): a node votes twice in one term after a restart', async () => {
  await hunt(
    plantForgetVote,
    {
      timeMs: 3000,
      nodes: 7,
      faults: ['crash', 'partition', 'loss'],
      nemesis: { meanIntervalMs: 20, meanDurationMs: 5, lossP: 0.2 },
      network: { latencyUs: 3000, jitterUs: 10000 },
      disk: { syncUs: 500 },
      electionTicks: 5,
      heartbeatTicks: 1,
      tickMs: 10,
      workload: { clients: 1, thinkMs: 100 },
    },
    1,
    20,
    ['vote-safety', 'election-safety'],
  );
});

test('a read that ends inside a batch skipping the rest of it (poll-skip)', async () => {
  await hunt(
    plantReadSkipsRestOfBatch,
    {
      timeMs: 5000,
      faults: [],
      workload: {
        maxRecordsPerAppend: 10,
        mix: { append: 2, idempotent: 0, conditional: 0, poll: 3, linearizablePoll: 0 },
      },
    },
    1,
    8,
    ['poll-skip'],
  );
});

test('a repair of lost entries ending at the node’s own bound, not the leader’s (seed 1014)', async () => {
  await hunt(
    plantRepairEndsAtOwnBound,
    {
      timeMs: 5000,
      nodes: 3,
      faults: ['rolling-wipe', 'crash', 'partition'],
      nemesis: { meanIntervalMs: 200, meanDurationMs: 300 },
      streams: [
        {
          name: 's0',
          partitions: 2,
          replicationFactor: 3,
          compacted: false,
          retentionBytes: 0,
          segmentBytes: 0,
        },
      ],
      workload: { thinkMs: 5 },
    },
    // From seed 4: seed 3 of this profile meets the bug first as a liveness failure (the
    // rolling replacement took a second disk once the first node's repair had ended early,
    // before anything was committed), which proves less about the check.
    4,
    6,
    ['repair-completeness'],
  );
});

test.run();
