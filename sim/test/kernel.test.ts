// The simulator's own parts: the event queue's order, the trace hash (a known answer, so
// that a hash printed on one machine means the same run on another), the scheduler's
// handling of paused and dead owners, and the option parsers of the command line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDuration } from '../src/cli.js';
import { EventQueue } from '../src/event-queue.js';
import { Incarnation } from '../src/incarnation.js';
import { OptionsError, parseFaults } from '../src/options.js';
import { SimRandom } from '../src/random.js';
import { Scheduler } from '../src/scheduler.js';
import { Trace } from '../src/trace.js';

test('events come out by time, then in the order they were scheduled', () => {
  const q = new EventQueue();
  const r = new SimRandom(1);
  const pushed: [number, number][] = [];
  for (let i = 0; i < 500; i++) {
    const at = r.int(0, 50);
    q.push(at, () => {}, null, 1, i);
    pushed.push([at, i]);
  }
  const out: [number, number][] = [];
  for (let ev = q.pop(); ev !== undefined; ev = q.pop()) out.push([ev.at, ev.detail]);
  pushed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.equal(out, pushed);
});

test('the trace hash is a fixed function of the events (known answer)', () => {
  const t = new Trace();
  for (let i = 0; i < 1000; i++) t.record(i * 37, (i % 11) + 1, i % 7, i * 2654435761);
  t.note('node 2 crash');
  assert.is(t.hash(), '9de65b6dd2de3238');
  const u = new Trace();
  for (let i = 0; i < 1000; i++) u.record(i * 37, (i % 11) + 1, i % 7, i * 2654435761);
  assert.is.not(u.hash(), t.hash(), 'a note changes the hash');
  assert.is(t.last(2).length, 2);
  assert.match(t.last(1)[0]!, /\| node 2 crash$/);
});

test('a dead owner’s events are dropped; a paused owner’s wait and then run in order', async () => {
  const s = new Scheduler();
  const inc = new Incarnation(1, 1);
  const ran: string[] = [];
  s.after(10, () => ran.push('a'), inc, 1);
  s.after(
    20,
    () => {
      inc.paused = true;
    },
    null,
    1,
  );
  s.after(30, () => ran.push('b'), inc, 1);
  s.after(40, () => ran.push('c'), inc, 1);
  s.after(
    50,
    () => {
      inc.paused = false;
      s.release(inc);
    },
    null,
    1,
  );
  s.after(60, () => ran.push('d'), inc, 1);
  const dead = new Incarnation(2, 1);
  s.after(15, () => ran.push('dead'), dead, 1);
  dead.kill();
  await s.run(1000, () => {});
  assert.equal(ran, ['a', 'b', 'c', 'd']);
  assert.is(s.nowUs, 1000);
});

test('promise jobs started by an event finish before the next event', async () => {
  const s = new Scheduler();
  const order: string[] = [];
  s.after(
    1,
    () => {
      void (async () => {
        for (let i = 0; i < 5; i++) await Promise.resolve();
        order.push('chain');
      })();
    },
    null,
    1,
  );
  s.after(1, () => order.push('next'), null, 1);
  await s.run(10, () => {});
  assert.equal(order, ['chain', 'next']);
});

test('nextTick callbacks and the unhandled-rejection report come before the next event too', async () => {
  const s = new Scheduler();
  const order: string[] = [];
  const onRejection = (reason: unknown) => order.push(`unhandled ${reason}`);
  process.on('unhandledRejection', onRejection);
  try {
    s.after(
      1,
      () => {
        process.nextTick(() => {
          void Promise.resolve().then(() => order.push('tick job'));
          order.push('tick');
        });
        void (async () => {
          await null;
          await Promise.reject('r1');
        })();
      },
      null,
      1,
    );
    s.after(1, () => order.push('next'), null, 1);
    // More events than one slice of the scheduler, each with a job, in order.
    for (let i = 0; i < 5000; i++)
      s.after(2, () => void Promise.resolve(i).then((k) => order.push(`${k}`)), null, 1);
    await s.run(10, (ev) => {
      if (ev.at === 1) order.push('checked');
    });
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  assert.equal(order.slice(0, 6), ['tick', 'tick job', 'unhandled r1', 'checked', 'next', 'checked']);
  assert.equal(
    order.slice(6),
    Array.from({ length: 5000 }, (_, i) => `${i}`),
  );
  assert.is(s.eventsRun, 5002);
});

test('command-line durations and fault lists', () => {
  assert.is(parseDuration('500ms'), 500);
  assert.is(parseDuration('30s'), 30_000);
  assert.is(parseDuration('10m'), 600_000);
  assert.is(parseDuration('2'), 2000);
  assert.throws(
    () => parseDuration('ten'),
    (e: unknown) => e instanceof OptionsError,
  );
  assert.equal(parseFaults('crash,loss'), ['loss', 'crash']);
  assert.equal(parseFaults('net,-flap,-reorder'), [
    'loss',
    'duplicate',
    'delay',
    'partition',
    'asymmetric',
    'isolate-leader',
  ]);
  assert.equal(parseFaults('none'), []);
  assert.throws(() => parseFaults('crash,meteor'), /unknown fault 'meteor'/);
});

test.run();
