// LZ4: xxHash32 vectors, then the frame format against the reference `lz4` command-line
// tool in both directions (varied data, checksums, block sizes, linked blocks, several
// frames and skippable frames), raw blocks, an independent JS codec (lz4js), output
// limits, and hand-made malformed frames and blocks.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CoreError, createCore, type Lz4CompressOptions } from '../src/index.js';
import { logs, mixed, text } from './corpus.js';
import { Rng } from './rng.js';

const require = createRequire(import.meta.url);
const lz4js = require('lz4js') as {
  compress(b: Uint8Array): Uint8Array;
  decompress(b: Uint8Array): Uint8Array;
};

const core = createCore();
const debugCore = createCore({ wasm: 'debug' });
const dir = mkdtempSync(join(tmpdir(), 'cairn-lz4-'));
let seq = 0;

const INSTALL_LZ4 =
  'the LZ4 interop tests need the reference `lz4` command-line tool: install it with `apt-get install -y lz4` (.ci/run does)';
const lz4Probe = spawnSync('lz4', ['--version'], { encoding: 'utf8' });
const lz4Missing = lz4Probe.error !== undefined || lz4Probe.status !== 0;
// Without the tool these tests are skipped, saying how to install it; with CI=true they
// run and fail in haveCli.
const skipInterop = lz4Missing && process.env['CI'] !== 'true';
if (skipInterop) console.log(`skipped: ${INSTALL_LZ4}`);
/** A test that needs the `lz4` tool. */
const cliTest = skipInterop ? test.skip : test;

function haveCli(): void {
  if (lz4Missing) throw new Error(INSTALL_LZ4);
}

function cli(args: string[], input: Uint8Array): Buffer {
  const inFile = join(dir, `in-${seq++}`);
  const outFile = `${inFile}.out`;
  writeFileSync(inFile, input);
  execFileSync('lz4', ['-q', '-f', ...args, inFile, outFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  const out = readFileSync(outFile);
  rmSync(inFile);
  rmSync(outFile);
  return out;
}

const same = (a: Uint8Array, b: Uint8Array, what: string) =>
  assert.ok(a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0, what);

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as CoreError).code ?? String(e);
  }
  return 'no error';
};

const rng = new Rng(42);
const DATA: [string, Uint8Array][] = [
  ['empty', new Uint8Array(0)],
  ['1 byte', Uint8Array.of(7)],
  ['12 bytes', text(rng, 12)],
  ['13 bytes', text(rng, 13)],
  ['incompressible 100 KiB', rng.bytes(100_000)],
  ['zeros 1 MiB', new Uint8Array(1 << 20)],
  ['text 300 KiB', text(rng, 300_000)],
  ['logs 65535', logs(rng, 65535)],
  ['logs 65536', logs(rng, 65536)],
  ['logs 65537', logs(rng, 65537)],
  ['text 131072', text(rng, 131072)],
  ['text 131073', text(rng, 131073)],
  ['short period 200 KiB', Uint8Array.from({ length: 200_000 }, (_, i) => (i % 7) * 31)],
  ['mixed 5 MiB', mixed(rng, 5 * 1024 * 1024 + 3)],
];

test('xxHash32 published values', () => {
  const s = (x: string) => new TextEncoder().encode(x);
  assert.is(core.xxhash32(s('')), 0x02cc5d05);
  assert.is(core.xxhash32(s('abc')), 0x32d153ff);
  assert.is(core.xxhash32(s('Nobody inspects the spammish repetition')), 0xe2293b2f);
  assert.is(debugCore.xxhash32(s('abc')), 0x32d153ff);
});

cliTest('the reference lz4 tool is installed', () => {
  haveCli();
});

const OUR_OPTIONS: [string, Lz4CompressOptions][] = [
  ['defaults', {}],
  [
    'block checksums, content size, no content checksum',
    { blockChecksum: true, contentSize: true, contentChecksum: false },
  ],
  ['256 KiB blocks', { blockSize: 262144 }],
  ['1 MiB blocks', { blockSize: 1048576, blockChecksum: true }],
  ['4 MiB blocks', { blockSize: 4194304, contentSize: true }],
  ['acceleration 8', { acceleration: 8 }],
];

cliTest('our frames decompress with `lz4 -d`, for every data set and option set', () => {
  haveCli();
  for (const [name, data] of DATA) {
    for (const [optName, options] of OUR_OPTIONS) {
      const frame = core.lz4Compress(data, options);
      same(cli(['-d'], frame), data, `${name}, ${optName}`);
      same(core.lz4Decompress(frame), data, `${name}, ${optName} (ours)`);
    }
  }
});

const CLI_FLAGS: string[][] = [
  ['-1'],
  ['-1', '-BD'], // linked blocks
  ['-1', '--no-frame-crc'],
  ['-1', '-BX'], // block checksums
  ['-1', '--content-size'],
  ['-1', '-B5'],
  ['-1', '-B6', '-BD', '-BX'],
  ['-1', '-B7'],
  ['-9', '-BD'], // high compression: long matches and lengths
  ['--fast=5'],
];

cliTest('frames from `lz4` (checksums, block sizes, linked blocks, HC) decompress with ours', () => {
  haveCli();
  for (const [name, data] of DATA) {
    if (data.length > 1 << 20 && name !== 'mixed 5 MiB') continue;
    for (const flags of CLI_FLAGS) {
      const frame = cli(flags, data);
      same(core.lz4Decompress(frame), data, `${name}, lz4 ${flags.join(' ')}`);
    }
  }
  // 64 KiB blocks from the CLI (-B4) on data it handles (see the quirk in the brief).
  for (const data of [text(rng, 200_000), rng.bytes(70_000)]) {
    same(core.lz4Decompress(cli(['-1', '-B4', '-BD'], data)), data, 'lz4 -B4 -BD');
  }
});

cliTest('several frames back to back, with skippable frames between them', () => {
  haveCli();
  const a = text(rng, 80_000);
  const b = logs(rng, 150_000);
  const skippable = new Uint8Array(8 + 5);
  new DataView(skippable.buffer).setUint32(0, 0x184d2a53, true);
  new DataView(skippable.buffer).setUint32(4, 5, true);
  const stream = Buffer.concat([cli(['-1'], a), skippable, core.lz4Compress(b), skippable]);
  same(core.lz4Decompress(stream), Buffer.concat([a, b]), 'concatenated');
  same(cli(['-d'], stream), Buffer.concat([a, b]), 'the CLI agrees');
  assert.is(core.lz4Decompress(skippable).length, 0);
});

cliTest('raw blocks: round trips, and the blocks inside CLI frames decompress alone', () => {
  haveCli();
  for (const [name, data] of DATA) {
    if (data.length > 1 << 20) continue;
    for (const accel of [1, 3, 100]) {
      const block = core.lz4CompressBlock(data, accel);
      same(core.lz4DecompressBlock(block, data.length), data, `${name} accel ${accel}`);
    }
  }
  // Frame with independent 64 KiB-or-larger blocks and no checksums: block 1 starts at 7.
  const data = logs(rng, 60_000);
  const frame = cli(['-1', '--no-frame-crc'], data);
  const dv = new DataView(frame.buffer, frame.byteOffset);
  const size = dv.getUint32(7, true);
  assert.ok(size < 0x80000000, 'the CLI compressed the block');
  same(core.lz4DecompressBlock(frame.subarray(11, 11 + size), data.length), data, 'CLI block');
  assert.is(
    code(() => core.lz4DecompressBlock(frame.subarray(11, 11 + size), data.length - 1)),
    'LZ4_LIMIT',
  );
});

cliTest('the same data compresses to the same size as lz4 -1 on one block (same greedy parse)', () => {
  haveCli();
  // One 64 KiB block each side: the CLI's independent 64 KiB blocks vs ours.
  for (const data of [logs(rng, 65536), text(rng, 65536)]) {
    const theirs = cli(['-1', '-B4', '-BI', '--no-frame-crc'], data);
    const ours = core.lz4Compress(data, { contentChecksum: false });
    assert.ok(
      Math.abs(theirs.length - ours.length) <= theirs.length * 0.02,
      `${ours.length} vs ${theirs.length}`,
    );
  }
});

test('lz4js (an independent JS codec) and ours read each other', () => {
  for (const [name, data] of DATA) {
    if (data.length > 1 << 20) continue;
    same(core.lz4Decompress(lz4js.compress(data)), data, `${name}: lz4js → ours`);
    same(lz4js.decompress(core.lz4Compress(data)), data, `${name}: ours → lz4js`);
  }
});

test('maxOutputBytes: exactly enough works, one byte less is LZ4_LIMIT', () => {
  const data = text(rng, 200_000);
  for (const options of [{}, { contentSize: true }, { blockSize: 262144 as const }]) {
    const frame = core.lz4Compress(data, options);
    same(core.lz4Decompress(frame, { maxOutputBytes: data.length }), data, 'exact');
    assert.is(
      code(() => core.lz4Decompress(frame, { maxOutputBytes: data.length - 1 })),
      'LZ4_LIMIT',
    );
    assert.is(
      code(() => core.lz4Decompress(frame, { maxOutputBytes: 0 })),
      'LZ4_LIMIT',
    );
  }
  // Incompressible data is stored: the limit applies to stored blocks too.
  const noise = rng.bytes(100_000);
  assert.is(
    code(() => core.lz4Decompress(core.lz4Compress(noise), { maxOutputBytes: 99_999 })),
    'LZ4_LIMIT',
  );
});

/** A frame header for `flg`/`bd` with a correct header checksum. */
function header(flg: number, bd: number, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  const descriptor = Uint8Array.from([flg, bd, ...extra]);
  const hc = (core.xxhash32(descriptor) >>> 8) & 0xff;
  return Uint8Array.from([0x04, 0x22, 0x4d, 0x18, ...descriptor, hc]);
}
const le32 = (n: number) => Uint8Array.of(n, n >>> 8, n >>> 16, n >>> 24);

test('malformed frames: each fails with its own typed error', () => {
  const good = core.lz4Compress(text(rng, 1000), { blockChecksum: true });
  const flip = (i: number, mask = 1) => {
    const b = Uint8Array.from(good);
    b[i]! ^= mask;
    return b;
  };
  const cases: [string, Uint8Array, string][] = [
    ['empty input', new Uint8Array(0), 'LZ4_MALFORMED'],
    ['bad magic', flip(0), 'LZ4_MALFORMED'],
    ['header checksum', flip(6), 'LZ4_CHECKSUM'],
    ['version 2', header(0x80, 0x40), 'LZ4_MALFORMED'],
    ['reserved FLG bit', header(0x62, 0x40), 'LZ4_MALFORMED'],
    ['reserved BD bit', header(0x60, 0xc0), 'LZ4_MALFORMED'],
    ['block size id 3', header(0x60, 0x30), 'LZ4_MALFORMED'],
    ['dictionary ID', Buffer.concat([header(0x61, 0x40, le32(9)), le32(0)]), 'UNSUPPORTED'],
    ['no end mark', good.subarray(0, good.length - 8), 'LZ4_MALFORMED'],
    ['block checksum', flip(12), 'LZ4_CHECKSUM'],
    ['content checksum', flip(good.length - 1), 'LZ4_CHECKSUM'],
    ['block larger than its maximum', Buffer.concat([header(0x60, 0x40), le32(0x80010001)]), 'LZ4_MALFORMED'],
    [
      'content size mismatch',
      Buffer.concat([
        header(0x68, 0x40, Uint8Array.of(5, 0, 0, 0, 0, 0, 0, 0)),
        le32(0x80000001),
        Uint8Array.of(1),
        le32(0),
      ]),
      'LZ4_MALFORMED',
    ],
    ['junk after a frame', Buffer.concat([good, Uint8Array.of(1, 2, 3)]), 'LZ4_MALFORMED'],
    ['truncated skippable frame', Uint8Array.of(0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1), 'LZ4_MALFORMED'],
  ];
  for (const [name, frame, want] of cases) {
    assert.is(
      code(() => core.lz4Decompress(frame)),
      want,
      name,
    );
    assert.is(
      code(() => debugCore.lz4Decompress(frame)),
      want,
      `${name} (debug wasm)`,
    );
  }
});

test('malformed blocks: offset 0, offset before the start, lengths past the end', () => {
  const cases: [string, number[], string][] = [
    ['offset 0', [0x40, 1, 2, 3, 4, 0, 0, 0x00], 'LZ4_MALFORMED'],
    ['offset before start', [0x40, 1, 2, 3, 4, 5, 0, 0x00], 'LZ4_MALFORMED'],
    ['literals past the input', [0x50, 1, 2], 'LZ4_MALFORMED'],
    ['length byte missing', [0xf0], 'LZ4_MALFORMED'],
    ['ends in a match', [0x10, 1, 1, 0], 'LZ4_MALFORMED'],
    ['offset cut short', [0x10, 1, 1], 'LZ4_MALFORMED'],
    ['empty block', [], 'LZ4_MALFORMED'],
    ['match past the output', [0x1f, 1, 1, 0, 255, 255, 10, 0x00], 'LZ4_LIMIT'],
  ];
  for (const [name, bytes, want] of cases) {
    assert.is(
      code(() => core.lz4DecompressBlock(Uint8Array.from(bytes), 100)),
      want,
      name,
    );
  }
  // A valid overlapping match (offset 1, run of a byte).
  same(
    core.lz4DecompressBlock(Uint8Array.of(0x15, 9, 1, 0, 0x00), 100),
    new Uint8Array(10).fill(9),
    'offset 1',
  );
});

test('lz4 batches: ours decode with kafkajs (lz4js as its codec) and theirs with ours', async () => {
  const { kafka } = await import('./kafkajs.js');
  kafka.setLz4Codec({
    compress: async (e) => Buffer.from(lz4js.compress(e.buffer)),
    decompress: async (b) => Buffer.from(lz4js.decompress(b)),
  });
  const r = new Rng(77);
  for (let i = 0; i < 20; i++) {
    const records = Array.from({ length: 1 + r.int(30) }, (_, j) => ({
      key: r.int(3) ? text(r, r.int(30)) : null,
      value: j % 5 === 0 ? logs(r, r.int(100_000)) : text(r, r.int(500)),
      timestamp: 1_700_000_000_000 + j,
    }));
    const ours = core.encodeBatch(records, { compression: 'lz4', baseOffset: 10 });
    assert.is(core.readBatchHeader(ours).compression, 3);
    const k = await kafka.decode(ours);
    assert.is(k.records.length, records.length);
    k.records.forEach((got, j) => {
      same(got.value!, records[j]!.value, 'value');
      assert.is(Number(got.offset), 10 + j);
    });
    const theirs = await kafka.encode({
      compression: 3,
      firstTimestamp: 1_700_000_000_000,
      maxTimestamp: 1_700_000_000_000 + records.length - 1,
      lastOffsetDelta: records.length - 1,
      records: records.map((rec, j) =>
        kafka.record({
          offsetDelta: j,
          timestampDelta: j,
          key: rec.key ? Buffer.from(rec.key) : null,
          value: Buffer.from(rec.value),
        }),
      ),
    });
    assert.is(core.scanBatches(theirs).error, null);
    const decoded = core.decodeRecords(theirs);
    decoded.forEach((got, j) => {
      same(got.value!, records[j]!.value, 'value');
      assert.is(got.key === null, records[j]!.key === null);
    });
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
