// `cairn sim` as a user runs it: a run prints its options and a summary, --json prints a
// result, --swarm runs several seeds, --report writes an HTML page with the SVG timeline,
// bad usage exits 2; and what a failed run prints (seed, options, property, last events).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeFailure } from '../src/cli.js';
import { simulate } from '../src/index.js';
import { plantReadSkipsRestOfBatch } from './planted.js';

const cairn = (args: string[]) =>
  spawnSync(process.execPath, ['bin/cairn.js', 'sim', ...args], { encoding: 'utf8', timeout: 120_000 });

test('a run prints its options and a summary; the same seed prints the same trace', () => {
  const a = cairn(['--seed', '11', '--time', '3s', '--nodes', '3', '--faults', 'crash,loss']);
  assert.is(a.status, 0, a.stderr);
  assert.match(a.stdout, /^seed: 11$/m);
  assert.match(a.stdout, /^faults: loss,crash$/m);
  assert.match(a.stdout, /^seed 11: passed · 3 nodes ·/m);
  const b = cairn(['--seed', '11', '--time', '3s', '--nodes', '3', '--faults', 'crash,loss']);
  const trace = (s: string) => /trace ([0-9a-f]{16})/.exec(s)?.[1];
  assert.ok(trace(a.stdout) !== undefined);
  assert.is(trace(b.stdout), trace(a.stdout));
});

test('--json, --swarm and --report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-sim-'));
  try {
    const file = join(dir, 'run.html');
    const r = cairn(['--seed', '20', '--swarm', '2', '--time', '2s', '--json']);
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seed: number; passed: boolean; traceHash: string });
    assert.equal(
      lines.map((l) => [l.seed, l.passed]),
      [
        [20, true],
        [21, true],
      ],
    );
    const one = cairn(['--seed', '20', '--time', '2s', '--report', file]);
    assert.is(one.status, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^report: ${file}$`, 'm'));
    const html = readFileSync(file, 'utf8');
    assert.match(html, /<svg [^>]*>/);
    assert.match(html, /cairn sim — seed 20/);
    assert.match(html, /node 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad usage exits 2 with a message', () => {
  const r = cairn(['--nodes', '9']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /--nodes must be in \[1, 7\]/);
  const f = cairn(['--faults', 'crash,meteor']);
  assert.is(f.status, 2);
  assert.match(f.stderr, /unknown fault 'meteor'/);
});

test('a failed run is described with its seed, options, property and last events', async () => {
  const undo = plantReadSkipsRestOfBatch();
  let lines: string[] = [];
  try {
    for (let seed = 1; seed <= 8 && lines.length === 0; seed++) {
      const r = await simulate({
        seed,
        timeMs: 5000,
        faults: [],
        workload: {
          maxRecordsPerAppend: 10,
          mix: { append: 2, idempotent: 0, conditional: 0, poll: 3, linearizablePoll: 0 },
        },
      });
      if (!r.passed) lines = describeFailure(r);
    }
  } finally {
    undo();
  }
  const text = lines.join('\n');
  assert.match(text, /^FAILED: poll-skip at t=\d+\.\d{6}s \(seed \d+\)/);
  assert.match(text, /^options:\n {2}seed: \d+$/m);
  assert.match(text, /^last events before it:$/m);
  assert.match(text, /^reproduce: cairn sim --seed \d+ /m);
});

test.run();
