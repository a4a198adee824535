// The client commands of `cairn` (stream, produce, consume, leader, node) as a user runs
// them: real processes against a real 3-node cluster, text and --json output, exit codes.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CairnClient } from '../src/index.js';
import { clientFor, eventually, leaderOf, ProcessCluster, readAll, text } from './support/cluster.js';

const CAIRN = fileURLToPath(new URL('../../../bin/cairn.js', import.meta.url));
const c = new ProcessCluster([1, 2, 3]);
const tmp = mkdtempSync(join(tmpdir(), 'cairn-cli-'));
let client: CairnClient;
const children = new Set<ChildProcess>();

test.before(async () => {
  await c.startAll();
  client = clientFor(c);
});

test.after(async () => {
  for (const ch of children)
    if (ch.exitCode === null && ch.pid !== undefined) process.kill(ch.pid, 'SIGKILL');
  await client?.close();
  await c.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

function cairn(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CAIRN, ...args, '--server', c.api(1)], {
    encoding: 'utf8',
    input: input ?? '',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function ok(args: string[], input?: string): string {
  const r = cairn(args, input);
  assert.is(r.code, 0, `cairn ${args.join(' ')}: ${r.err}`);
  return r.out;
}

test('stream create, list, describe, delete (text and --json)', () => {
  const created = JSON.parse(
    ok([
      'stream',
      'create',
      'cli-s',
      '--partitions',
      '3',
      '--retention-ms',
      '60000',
      '--compacted',
      '--json',
    ]),
  );
  assert.is(created.name, 'cli-s');
  assert.is(created.partitions.length, 3);
  assert.is(created.config.retentionMs, 60_000);
  assert.is(created.config.compacted, true);
  assert.match(ok(['stream', 'list']), /cli-s\s+3\s+3\s+yes\s+-\s+60000/);
  const listed = JSON.parse(ok(['stream', 'list', '--json'])) as { name: string }[];
  assert.ok(listed.some((s) => s.name === 'cli-s'));
  const described = ok(['stream', 'describe', 'cli-s']);
  assert.match(described, /stream cli-s: partitions 3, replication factor 3/);
  assert.match(described, /PARTITION\s+LEADER\s+REPLICAS\s+START\s+END/);
  assert.equal(JSON.parse(ok(['stream', 'delete', 'cli-s', '--json'])), { deleted: 'cli-s' });
  // Errors: typed, exit 1, with the code; --json also prints the error as JSON.
  const missing = cairn(['stream', 'describe', 'cli-s', '--json']);
  assert.is(missing.code, 1);
  assert.match(missing.err, /STREAM_NOT_FOUND/);
  assert.is(JSON.parse(missing.out).error.code, 'STREAM_NOT_FOUND');
  const bad = cairn(['stream', 'create', 'bad name']);
  assert.is(bad.code, 1);
  assert.match(bad.err, /INVALID_REQUEST/);
  // Usage errors: exit 2 with the usage.
  const usage = cairn(['stream', 'frobnicate']);
  assert.is(usage.code, 2);
  assert.match(usage.err, /usage:/);
  assert.is(cairn(['stream', 'create']).code, 2);
  assert.is(cairn(['stream', 'create', 'x', '--partitions', 'many']).code, 2);
});

test('produce lines from stdin and a file (keys by separator) prints offsets in input order; consume prints them back', async () => {
  ok(['stream', 'create', 'cli-p', '--partitions', '2']);
  const lines = Array.from({ length: 50 }, (_, i) => `key${i % 5}=value ${i}`);
  const out = ok(['produce', 'cli-p', '--key-separator', '='], `${lines.join('\n')}\n`);
  const positions = out
    .trim()
    .split('\n')
    .map((l) => l.split(' ').map(Number) as [number, number]);
  assert.is(positions.length, 50);
  // Each line is where the client library finds it, with its key.
  for (let i = 0; i < 50; i++) {
    const [p, o] = positions[i]!;
    assert.is(p, await client.partitionFor('cli-p', `key${i % 5}`));
    const r = await client.read('cli-p', p, { offset: o, maxRecords: 1 });
    assert.is(text(r.records[0]!.value), `value ${i}`);
    assert.is(text(r.records[0]!.key), `key${i % 5}`);
  }
  const file = join(tmp, 'lines.txt');
  writeFileSync(file, 'from\nthe\nfile\n');
  const fromFile = ok(['produce', 'cli-p', '--file', file, '--partition', '1', '--json'])
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(
    fromFile.map((p) => p.partition),
    [1, 1, 1],
  );
  // consume --json: every record of partition 1, in offset order.
  const consumed = ok(['consume', 'cli-p', '--partition', '1', '--json'])
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const expected = await readAll(client, 'cli-p', 1);
  assert.equal(
    consumed.map((r) => [r.offset, r.key, r.value]),
    expected.map((r) => [r.offset, text(r.key), text(r.value)]),
  );
  // Text output with --offsets and --keys, from an offset, limited by --count.
  const second = expected[1]!;
  const lines2 = ok([
    'consume',
    'cli-p',
    '--partition',
    '1',
    '--from',
    String(second.offset),
    '--count',
    '2',
    '--keys',
    '--offsets',
  ])
    .trim()
    .split('\n');
  assert.equal(lines2, [
    `1\t${second.offset}\t${text(second.key) ?? ''}\t${text(second.value)}`,
    `1\t${expected[2]!.offset}\t${text(expected[2]!.key) ?? ''}\t${text(expected[2]!.value)}`,
  ]);
  assert.is(ok(['consume', 'cli-p', '--from', 'latest']), '', 'nothing after latest');
});

test('produce --count/--size: synthetic load with a JSON summary; consume counts every record', async () => {
  ok(['stream', 'create', 'cli-load', '--partitions', '3']);
  const summary = JSON.parse(
    ok(['produce', 'cli-load', '--count', '3000', '--size', '64', '--compression', 'lz4', '--json']),
  );
  assert.is(summary.records, 3000);
  assert.is(summary.bytes, 3000 * 64);
  assert.ok(summary.recordsPerSecond > 0);
  const consumed = ok(['consume', 'cli-load']).trim().split('\n');
  assert.is(consumed.length, 3000);
  assert.ok(consumed.every((v) => v.length === 64));
  assert.is(new Set(consumed.map((v) => v.slice(0, 10))).size, 3000, 'every synthetic value is distinct');
});

test('consume --follow prints records as they commit and stops at --count', async () => {
  ok(['stream', 'create', 'cli-f']);
  const follower = spawn(
    process.execPath,
    [CAIRN, 'consume', 'cli-f', '--follow', '--from', 'latest', '--count', '3', '--server', c.api(2)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(follower);
  let out = '';
  follower.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => follower.once('exit', (code) => r(code)));
  await new Promise((r) => setTimeout(r, 1_500)); // let it subscribe at 'latest'
  ok(['produce', 'cli-f'], 'one\ntwo\nthree\nfour\n');
  assert.is(await exited, 0);
  assert.equal(out.trim().split('\n'), ['one', 'two', 'three']);
});

test('a progress line is drawn on a terminal only', () => {
  ok(['stream', 'create', 'cli-tty']);
  // Without a terminal: stderr has the summary but no redrawn progress line.
  const plain = cairn(['produce', 'cli-tty', '--count', '20000', '--size', '100']);
  assert.is(plain.code, 0);
  assert.not.match(plain.err, /\r/);
  assert.match(plain.err, /produced 20000 records/);
  // Under a pseudo-terminal (util-linux `script`): the progress line is redrawn in place.
  const cmd = [
    process.execPath,
    CAIRN,
    'produce',
    'cli-tty',
    '--count',
    '60000',
    '--size',
    '100',
    '--server',
    c.api(1),
  ]
    .map((a) => `'${a}'`)
    .join(' ');
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(tty.status, 0, tty.stderr);
  // The line is redrawn with CR + "erase line" (ESC [ K).
  const redraw = new RegExp(`\r${String.fromCharCode(27)}\\[Kproduced \\d+/60000 records`);
  assert.match(tty.stdout, redraw);
});

test('leader transfer moves a partition leader; node add and remove change the membership', async () => {
  ok(['stream', 'create', 'cli-l', '--partitions', '2']);
  const before = await leaderOf(c, 'cli-l', 1);
  const to = before === 3 ? 2 : 3;
  const moved = JSON.parse(
    ok(['leader', 'transfer', 'cli-l', '--partition', '1', '--to', String(to), '--json']),
  );
  assert.equal(moved, { stream: 'cli-l', partition: 1, leader: to });
  assert.is(await leaderOf(c, 'cli-l', 1), to);
  assert.match(ok(['leader', 'transfer', '--metadata']), /the metadata group is led by node \d/);

  // A fourth node, started with --join, becomes a member; then it is removed again.
  await c.start(4, { join: [1, 2, 3] });
  const added = JSON.parse(
    ok([
      'node',
      'add',
      '--id',
      '4',
      '--api-address',
      c.api(4),
      '--peer-address',
      `127.0.0.1:${c.ports.get(4)!.peer}`,
      '--json',
    ]),
  );
  assert.is(added.id, 4);
  assert.is(added.state, 'active');
  assert.ok((await client.status()).members.some((m) => m.node.id === 4));
  assert.match(ok(['node', 'remove', '4']), /node 4 removed/);
  await eventually(
    async () => assert.not.ok((await client.metadata()).nodes.some((n) => n.id === 4)),
    30_000,
  );
  await c.kill(4);
  const unknown = cairn(['node', 'remove', '99']);
  assert.is(unknown.code, 1);
  assert.match(unknown.err, /INVALID_REQUEST/);
  assert.is(cairn(['node', 'add', '--id', '5']).code, 2);
  // The cluster still works through the client.
  const p = await client.append('cli-l', { value: 'still here' }, { partition: 0 });
  assert.is(text((await client.read('cli-l', 0, { offset: p.offset })).records[0]!.value), 'still here');
});

test.run();
