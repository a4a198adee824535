// A service built on Cairn, tested under the simulator's faults through the plug-in
// (ServiceModel): a tiny bank whose instances follow one stream, apply transfers blindly,
// and decide each transfer on the state they have read. With conditional appends (the
// expected offset is where the instance has read up to) no balance ever goes below zero;
// without them, two instances deciding on the same state overdraw an account, and the
// simulator reports the broken invariant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeFailure } from '../src/cli.js';
import { type ServiceModel, simulate } from '../src/index.js';

type Bank = Record<string, number>;
const ACCOUNTS = ['alice', 'bob', 'carol'];
const TOTAL = 300;
const enc = new TextEncoder();
const dec = new TextDecoder();

function bank(conditional: boolean): ServiceModel<Bank> {
  return {
    name: 'bank',
    instances: 3,
    conditional,
    initial: () => Object.fromEntries(ACCOUNTS.map((a) => [a, TOTAL / ACCOUNTS.length])),
    apply(state, record) {
      // Blind: the transfer was checked against the state it was decided on.
      const t = JSON.parse(record.value) as { from: string; to: string; amount: number };
      state[t.from]! -= t.amount;
      state[t.to]! += t.amount;
      return state;
    },
    snapshot: (state) => enc.encode(JSON.stringify(ACCOUNTS.map((a) => state[a]))),
    restore: (bytes) => {
      const v = JSON.parse(dec.decode(bytes)) as number[];
      return Object.fromEntries(ACCOUNTS.map((a, i) => [a, v[i]!]));
    },
    command(state, random) {
      const from = ACCOUNTS[Math.floor(random() * ACCOUNTS.length)]!;
      const to = ACCOUNTS.find((a) => a !== from && random() < 0.5) ?? ACCOUNTS.find((a) => a !== from)!;
      const balance = state[from]!;
      if (balance <= 0) return undefined;
      // Most of what is there: two such transfers decided on the same state overdraw it.
      const amount = Math.max(1, Math.ceil(balance * (0.6 + 0.4 * random())));
      return { key: from, value: JSON.stringify({ from, to, amount }) };
    },
    invariant(state) {
      const total = ACCOUNTS.reduce((n, a) => n + state[a]!, 0);
      if (total !== TOTAL) return `money appeared or vanished: the accounts hold ${total}`;
      const negative = ACCOUNTS.find((a) => state[a]! < 0);
      return negative === undefined ? undefined : `${negative} is overdrawn: ${state[negative]}`;
    },
  };
}

const faults = {
  timeMs: 10_000,
  nodes: 3,
  faults: ['crash', 'partition', 'loss', 'pause'] as const,
  workload: { thinkMs: 20 },
};

test('with conditional appends the bank stays consistent under faults', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await simulate({
      ...faults,
      faults: [...faults.faults],
      seed,
      service: bank(true) as ServiceModel<unknown>,
    });
    assert.ok(r.passed, r.passed ? '' : describeFailure(r).join('\n'));
    const s = r.stats.service!;
    assert.ok(s.accepted > 5, `transfers went through (${s.accepted} of ${s.commands})`);
    assert.ok(s.applied > s.accepted, 'every instance applied them');
  }
});

test('without conditional appends the simulator finds an overdrawn account', async () => {
  let found: string | undefined;
  for (let seed = 1; seed <= 10 && found === undefined; seed++) {
    const r = await simulate({
      ...faults,
      faults: [...faults.faults],
      seed,
      service: bank(false) as ServiceModel<unknown>,
    });
    if (!r.passed) {
      assert.is(r.violation!.property, 'service-invariant', r.violation!.message);
      found = r.violation!.message;
    }
  }
  assert.ok(found !== undefined, 'no overdraft found in 10 seeds');
  assert.match(found!, /overdrawn/);
});

test.run();
