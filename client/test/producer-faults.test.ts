// The producer against a fake cluster that loses answers, times out after appending,
// moves leadership, refuses, and lets requests overtake each other (support/fake-cluster).
// The fake checks producer sequences with the node's own PartitionState. After every run:
// nothing appended twice, every acknowledged offset holds its record, nothing in the log
// that was not acknowledged (unless its append failed as "outcome unknown"), and records
// in the log in the order they were appended.
//
//   CAIRN_PRODUCER_FAULT_SEEDS=N   seeds per scenario (default 6)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../core-wasm/test/rng.js';
import { CairnClient, CairnClientError, type RecordPosition } from '../src/index.js';
import { FakeCluster, type FaultRates } from './support/fake-cluster.js';

const SEEDS = Number(process.env['CAIRN_PRODUCER_FAULT_SEEDS'] ?? 6);

const faults: FaultRates = {
  notLeader: 0.06,
  leaderUnknown: 0.3,
  lostAnswer: 0.08,
  timeoutAfter: 0.04,
  refuse: 0.04,
  delay: 0.25,
  maxDelayMs: 15,
};

interface Outcome {
  value: string;
  conditional: number | undefined;
  result: RecordPosition | CairnClientError;
}

async function run(
  seed: number,
  opts: { idempotent: boolean; deliveryTimeoutMs: number; appends: number; rates: FaultRates },
): Promise<{ fake: FakeCluster; outcomes: Outcome[] }> {
  const fake = new FakeCluster(seed, opts.rates);
  await fake.start();
  const client = new CairnClient({
    servers: [fake.addresses[0]!],
    idempotent: opts.idempotent,
    maxBatchBytes: 120, // a few records per batch: many batches in flight
    maxInFlightPerPartition: 5,
    requestTimeoutMs: 2_000,
    retryBackoffMs: 1,
    retryBackoffMaxMs: 10,
    deliveryTimeoutMs: opts.deliveryTimeoutMs,
  });
  const rng = new Rng(seed * 7919);
  const outcomes: Outcome[] = [];
  const pending: Promise<void>[] = [];
  try {
    for (let i = 0; i < opts.appends; i++) {
      const value = `v${i}`;
      // One append in 12 is conditional, on an offset near the partition's next one.
      const conditional = rng.int(12) === 0 ? fake.state.nextOffset + rng.int(3) : undefined;
      const o: Outcome = { value, conditional, result: new CairnClientError('INTERNAL', 'not settled') };
      outcomes.push(o);
      pending.push(
        client
          .append(
            's',
            { value },
            { partition: 0, ...(conditional !== undefined ? { expectedOffset: conditional } : {}) },
          )
          .then(
            (p) => {
              o.result = p;
            },
            (e: CairnClientError) => {
              o.result = e;
            },
          ),
      );
      if (rng.int(4) === 0) await new Promise((r) => setTimeout(r, rng.int(3)));
    }
    await Promise.all(pending);
  } finally {
    await client.close();
    await fake.stop();
  }
  return { fake, outcomes };
}

function check(fake: FakeCluster, outcomes: Outcome[], allowUnknown: boolean, ordered = true): void {
  const where = new Map<string, number>();
  for (const r of fake.log) {
    assert.not.ok(
      where.has(r.value),
      `${r.value} appended twice (offsets ${where.get(r.value)} and ${r.offset})`,
    );
    where.set(r.value, r.offset);
  }
  const acked = new Set<string>();
  for (const o of outcomes) {
    if (o.result instanceof CairnClientError) {
      const e = o.result;
      if (e.code === 'EXPECTED_OFFSET_MISMATCH') {
        assert.ok(o.conditional !== undefined, `${o.value}: mismatch for an unconditional append`);
        assert.not.ok(where.has(o.value), `${o.value} was refused but is in the log`);
        assert.is.not(e.facts.actualOffset, o.conditional, 'the actual offset differs from the expected one');
        continue;
      }
      assert.ok(allowUnknown, `${o.value} failed: ${e.code}: ${e.message}`);
      // Given up on: unknown outcome, or (OUT_OF_ORDER_SEQUENCE) refused while out of step.
      assert.ok(
        ['TIMEOUT', 'UNAVAILABLE', 'NOT_LEADER', 'OUT_OF_ORDER_SEQUENCE'].includes(e.code),
        `${o.value}: ${e.code} ${e.message}`,
      );
      continue; // outcome unknown: in the log at most once (checked above)
    }
    acked.add(o.value);
    assert.is(where.get(o.value), o.result.offset, `${o.value} acknowledged at ${o.result.offset}`);
    if (o.conditional !== undefined) assert.is(o.result.offset, o.conditional, `${o.value} conditional`);
  }
  if (!allowUnknown)
    for (const r of fake.log) assert.ok(acked.has(r.value), `${r.value} in the log, never acknowledged`);
  if (!ordered) return;
  // Order: the log lists acknowledged records in the order their appends were made.
  const order = outcomes.filter((o) => acked.has(o.value)).map((o) => o.value);
  const logOrder = fake.log.filter((r) => acked.has(r.value)).map((r) => r.value);
  assert.equal(logOrder, order);
}

test('idempotent producer: retries across lost answers, timeouts and leader changes never duplicate, lose or reorder', async () => {
  const totals = { duplicates: 0, outOfOrder: 0, lost: 0, notLeader: 0, timeout: 0, delayed: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const { fake, outcomes } = await run(seed, {
      idempotent: true,
      deliveryTimeoutMs: 60_000,
      appends: 250,
      rates: faults,
    });
    check(fake, outcomes, false);
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += fake.counts[k];
  }
  // The faults this test is about did happen (otherwise it proves nothing).
  for (const [k, n] of Object.entries(totals)) assert.ok(n > 0, `no ${k} in ${SEEDS} runs`);
});

test('idempotent producer giving up (short delivery timeout, heavy faults): failures are "outcome unknown" and still nothing is appended twice', async () => {
  const heavy: FaultRates = { ...faults, notLeader: 0.15, lostAnswer: 0.2, timeoutAfter: 0.1, refuse: 0.1 };
  let failed = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const { fake, outcomes } = await run(100 + seed, {
      idempotent: true,
      deliveryTimeoutMs: 25,
      appends: 150,
      rates: heavy,
    });
    check(fake, outcomes, true);
    failed += outcomes.filter(
      (o) => o.result instanceof CairnClientError && o.result.code !== 'EXPECTED_OFFSET_MISMATCH',
    ).length;
  }
  assert.ok(failed > 0, 'no append gave up');
});

test('non-idempotent producer: an append whose outcome is unknown fails instead of being retried, so nothing is appended twice', async () => {
  let failed = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const { fake, outcomes } = await run(200 + seed, {
      idempotent: false,
      deliveryTimeoutMs: 60_000,
      appends: 150,
      rates: faults,
    });
    // Without sequences nothing keeps batches that overtake each other in order.
    check(fake, outcomes, true, false);
    failed += outcomes.filter(
      (o) => o.result instanceof CairnClientError && o.result.code !== 'EXPECTED_OFFSET_MISMATCH',
    ).length;
    // Refusals made before appending (NOT_LEADER, a server's UNAVAILABLE) were retried, not failed.
    for (const o of outcomes) {
      if (o.result instanceof CairnClientError && o.result.code === 'UNAVAILABLE')
        assert.not.ok(o.result.fromServer);
    }
  }
  assert.ok(failed > 0, 'no append failed with an unknown outcome');
});

test.run();
