// The benchmark helpers whose mistakes would go unnoticed in a results table: latency
// quantiles, the met/missed verdict of a target, size flags and the nodes' counters.
// Quantiles are checked against a brute-force definition of the nearest rank.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCounters } from '../lib/cairn.js';
import { Flags, parseBytes } from '../lib/flags.js';
import { Latencies, quantile } from '../lib/histogram.js';
import { cpuSeconds } from '../lib/recovery.js';
import { markdown, verdict } from '../lib/results.js';
import { closedLoop, saturating } from '../lib/shapes.js';
import type { LogSystem } from '../lib/systems.js';

test('quantile is the nearest rank: the smallest sample with at least q of all at or below it', () => {
  // 1..1000 ms: p50 is 500, p99 is 990, p99.9 is 999 (not the maximum).
  const sorted = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.is(quantile(sorted, 0.5), 500);
  assert.is(quantile(sorted, 0.99), 990);
  assert.is(quantile(sorted, 0.999), 999);
  assert.is(quantile(sorted, 1), 1000);
  assert.is(quantile(Float64Array.of(7), 0.999), 7);
  assert.ok(Number.isNaN(quantile(new Float64Array(0), 0.5)));
});

test('Latencies agrees with counting, for shuffled samples past the first buffer', () => {
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const values = Array.from({ length: 5000 }, () => Math.round(next() * 10_000) / 100);
  const lat = new Latencies();
  for (const v of values) lat.record(v);
  const s = lat.summary();
  assert.is(s.count, values.length);
  for (const [q, got] of [
    [0.5, s.p50],
    [0.99, s.p99],
    [0.999, s.p999],
  ] as const) {
    // The definition, by counting: at least q of the samples are ≤ got, and fewer are < got.
    const atOrBelow = values.filter((v) => v <= got).length;
    const below = values.filter((v) => v < got).length;
    assert.ok(atOrBelow >= q * values.length, `p${q * 100}: ${atOrBelow} at or below ${got}`);
    assert.ok(below < q * values.length, `p${q * 100}: ${below} below ${got}`);
  }
  assert.is(s.max, Math.max(...values));
});

test('verdict: met, or by how much a target is missed, either direction', () => {
  assert.is(verdict({ name: 'x', value: 6, target: 5 }), 'met');
  assert.is(verdict({ name: 'x', value: 0.25, target: 1 }), 'missed: 4.0× short');
  assert.is(verdict({ name: 'x', value: 0.05, target: 1 }), 'missed: 20× short');
  assert.is(verdict({ name: 'x', value: 0.8, target: 1, higherIsBetter: false }), 'met');
  assert.is(verdict({ name: 'x', value: 2.1, target: 1, higherIsBetter: false }), 'missed: 2.1× over');
  assert.is(verdict({ name: 'x', value: 3 }), '');
  assert.is(verdict({ name: 'x', value: Number.NaN, target: 1 }), 'not measured');
});

test('the markdown shows each ratio with its target and verdict', () => {
  const md = markdown(
    'x',
    {
      rows: [],
      ratios: [{ name: 'cairn / etcd', value: 2, target: 5 }],
      loadAverageAtStart: [1.5, 1, 0.5],
    },
    '2026-01-01',
  );
  assert.match(md, '| cairn / etcd | 2.000 | ≥ 5 | missed: 2.5× short |');
  assert.match(md, 'at the start: 1.50, 1.00, 0.50;');
});

test('sizes: plain bytes or KiB/MiB/GiB; anything else is refused', () => {
  assert.is(parseBytes('268435456'), 268435456);
  assert.is(parseBytes('256MiB'), 256 * 2 ** 20);
  assert.is(parseBytes('1GiB'), 2 ** 30);
  assert.is(parseBytes('0.5 KiB'), 512);
  assert.is(parseBytes('1GB'), undefined);
  assert.is(parseBytes('-1'), undefined);
  assert.is(parseBytes('0.3'), undefined);
  assert.is(new Flags(['--recovery-bytes=1GiB']).bytes('recovery-bytes', 1), 2 ** 30);
  assert.throws(() => new Flags(['--recovery-bytes=lots']).bytes('recovery-bytes', 1), /must be a size/);
});

test('node counters come from the unlabelled Prometheus series', () => {
  const text = [
    '# HELP cairn_persist_seconds Log write + fsync latency (group commit)',
    'cairn_persist_seconds_bucket{le="0.001"} 3',
    'cairn_persist_seconds_sum 0.125',
    'cairn_persist_seconds_count 40',
    'cairn_append_seconds_sum 2.5',
    'cairn_append_seconds_count 1000',
    'cairn_api_bytes_in_total 1.5e+6',
  ].join('\n');
  assert.equal(parseCounters(text), {
    persistCount: 40,
    persistSeconds: 0.125,
    appendCount: 1000,
    appendSeconds: 2.5,
    apiBytesIn: 1.5e6,
  });
  assert.equal(parseCounters('').persistCount, 0);
});

test('cpuSeconds reads this process from /proc as process.cpuUsage() sees it', () => {
  const end = performance.now() + 300;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1); // burn some CPU
  const fromProc = cpuSeconds(process.pid);
  const u = process.cpuUsage();
  const own = (u.user + u.system) / 1e6;
  // /proc counts in 10 ms ticks and the two reads are microseconds apart.
  assert.ok(Math.abs(fromProc - own) < 0.05, `proc ${fromProc} s vs cpuUsage ${own} s (${x > 0})`);
  assert.ok(Number.isNaN(cpuSeconds(undefined)));
});

/** A system whose every append call takes `ms` and any number may be in flight at once. */
function fakeSystem(ms: number): LogSystem & { appended: number } {
  const sleep = () => new Promise<void>((r) => setTimeout(r, ms));
  const sys = {
    name: 'fake',
    durability: 'none',
    appended: 0,
    async reset() {},
    async append() {
      await sleep();
      sys.appended++;
    },
    async appendMany(values: Uint8Array[]) {
      await sleep();
      sys.appended += values.length;
    },
    async subscribe() {
      return async () => {};
    },
    async consume() {
      return { records: sys.appended, bytes: 0 };
    },
    async close() {},
  };
  return sys;
}

test('the closed loop counts every worker: concurrency 64 does about 64 times what 1 does', async () => {
  const rate = async (concurrency: number) => {
    const sys = fakeSystem(10);
    const r = await closedLoop(sys, { payloadBytes: 8, concurrency, seconds: 0.3, warmupSeconds: 0 });
    // No warm-up: the runner's count is exactly what the fake appended, one latency per call.
    assert.is(r.records, sys.appended);
    assert.is(r.latency.count, r.records);
    return r.recordsPerSec;
  };
  const one = await rate(1);
  const many = await rate(64);
  // Each append takes 10 ms: c1 can do at most 100/s, c64 at most 6,400/s.
  assert.ok(one <= 110, `c1 ${one}/s`);
  assert.ok(many <= 64 * 110, `c64 ${many}/s`);
  assert.ok(many / one > 32, `concurrency 64 / 1 = ${(many / one).toFixed(1)}, expected about 64`);
});

test('the saturating shape counts every record of every call in flight', async () => {
  const sys = fakeSystem(10);
  const r = await saturating(sys, {
    payloadBytes: 8,
    batchRecords: 100,
    window: 8,
    seconds: 0.3,
    warmupSeconds: 0,
  });
  assert.is(r.records, sys.appended);
  assert.is(r.records % 100, 0);
  assert.ok(r.records / 100 >= 8 * 20, `${r.records / 100} calls in 0.3 s with 8 in flight`);
});
test.run();
