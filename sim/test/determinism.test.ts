// One seed, one run: the same seed gives the same trace hash (and the same everything);
// another seed gives another run; simulated code cannot reach the real clock, randomness,
// timers or disk while a run lasts, and gets them back after.
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CairnNode } from '../../node/src/cairn-node.js';
import { resolveOptions, simulate } from '../src/index.js';
import { DeterminismError, Sandbox } from '../src/sandbox.js';

const busy = {
  timeMs: 8000,
  nodes: 5,
  faults: ['loss', 'duplicate', 'partition', 'crash', 'power-loss', 'pause'] as const,
};

test('the same seed twice: the same trace hash, events and outcome', async () => {
  const a = await simulate({ ...busy, faults: [...busy.faults], seed: 77 });
  const b = await simulate({ ...busy, faults: [...busy.faults], seed: 77 });
  assert.ok(a.passed, a.violation?.message);
  assert.is(a.traceHash, b.traceHash);
  assert.is(a.stats.events, b.stats.events);
  assert.equal(a.stats.operations, b.stats.operations);
  assert.equal(a.stats.network, b.stats.network);
  assert.ok(a.stats.faultsStruck > 0 && a.stats.events > 10_000, 'a run with something in it');
  const c = await simulate({ ...busy, faults: [...busy.faults], seed: 78 });
  assert.is.not(c.traceHash, a.traceHash);
});

test('the seed picks the options; fixing one option leaves the other picks alone', () => {
  assert.equal(resolveOptions({ seed: 5 }), resolveOptions({ seed: 5 }));
  assert.not.equal(resolveOptions({ seed: 5 }), resolveOptions({ seed: 6 }));
  const picked = resolveOptions({ seed: 9 });
  const fixed = resolveOptions({ seed: 9, nodes: picked.nodes === 3 ? 5 : 3 });
  assert.is.not(fixed.nodes, picked.nodes);
  assert.equal(fixed.faults, picked.faults);
  assert.is(fixed.tickMs, picked.tickMs);
  assert.equal(fixed.workload.mix, picked.workload.mix);
});

test('inside a run the clock, randomness, timers and node:fs throw; outside they work', () => {
  const s = new Sandbox();
  s.enter();
  const calls: [string, () => unknown][] = [
    ['Date.now', () => Date.now()],
    ['new Date()', () => new Date()],
    ['Math.random', () => Math.random()],
    ['performance.now', () => performance.now()],
    ['setTimeout', () => setTimeout(() => {}, 1)],
    ['setImmediate', () => setImmediate(() => {})],
    ['setInterval', () => setInterval(() => {}, 1)],
    ['fs.readFileSync', () => fs.readFileSync('/etc/hostname')],
  ];
  const thrown: string[] = [];
  try {
    for (const [name, call] of calls) {
      try {
        call();
      } catch (e) {
        if (e instanceof DeterminismError) thrown.push(name);
      }
    }
    // A date from a value is fine: it reads no clock.
    assert.is(new Date(0).getTime(), 0);
  } finally {
    s.exit();
  }
  assert.equal(
    thrown,
    calls.map(([n]) => n),
  );
  assert.is(s.offences.length, Math.min(10, calls.length));
  assert.ok(Date.now() > 0 && Math.random() < 1 && performance.now() > 0);
  assert.ok(fs.readFileSync('/etc/hostname').length >= 0);
  clearTimeout(setTimeout(() => {}, 1));
});

test('simulated code reaching the real clock fails the run, even if it swallows the error', async () => {
  const original = CairnNode.prototype.append;
  CairnNode.prototype.append = function (this: CairnNode, input) {
    try {
      Date.now();
    } catch {
      // swallowed: the sandbox still saw it
    }
    return original.call(this, input);
  };
  try {
    const r = await simulate({ seed: 3, timeMs: 2000, faults: [] });
    assert.is(r.violation?.property, 'determinism');
    assert.match(r.violation!.message, /Date\.now was called inside a simulation/);
  } finally {
    CairnNode.prototype.append = original;
  }
});

test.run();
