// CRC32C: published vectors (the iSCSI RFC and the usual check value), then random
// buffers against independent implementations (@node-rs/crc32, native; kafkajs's JS).
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../src/index.js';
import { kafkaCrc32c } from './kafkajs.js';
import { Rng } from './rng.js';

const core = createCore();
const debugCore = createCore({ wasm: 'debug' });

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).filter(Boolean), (b) => Number.parseInt(b, 16));

// RFC 3720 §B.4; the RFC prints the CRC bytes as sent (little-endian).
const RFC3720: [string, Uint8Array, number][] = [
  ['32 bytes of zeros', new Uint8Array(32), 0x8a9136aa],
  ['32 bytes of 0xff', new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ['32 incrementing bytes', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ['32 decrementing bytes', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  [
    'an iSCSI read command PDU',
    hex(`01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
         28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00`),
    0xd9963a56,
  ],
];

test('the check value: "123456789" → 0xE3069283', () => {
  const bytes = new TextEncoder().encode('123456789');
  assert.is(core.crc32c(bytes), 0xe3069283);
  assert.is(debugCore.crc32c(bytes), 0xe3069283);
});

test('RFC 3720 §B.4 vectors', () => {
  for (const [name, bytes, crc] of RFC3720) {
    assert.is(core.crc32c(bytes), crc, name);
    assert.is(debugCore.crc32c(bytes), crc, `${name} (debug wasm)`);
  }
});

test('empty input is the seed', () => {
  assert.is(core.crc32c(new Uint8Array(0)), 0);
  assert.is(core.crc32c(new Uint8Array(0), 0xdeadbeef), 0xdeadbeef);
});

test('random buffers, every length 0..300 and every alignment 0..15, match @node-rs/crc32', () => {
  const rng = new Rng(1);
  const backing = rng.bytes(300 + 16);
  for (let len = 0; len <= 300; len++) {
    for (let align = 0; align < 16; align++) {
      const bytes = backing.subarray(align, align + len);
      const want = nativeCrc32c(bytes);
      assert.is(core.crc32c(bytes), want, `len ${len} align ${align}`);
    }
  }
});

test('lengths around the SIMD superblock (4 KiB) boundaries, every alignment 0..7, match @node-rs/crc32', () => {
  const rng = new Rng(6);
  const backing = rng.bytes(70_000);
  for (const len of [4095, 4096, 4097, 8191, 8192, 8193, 12288 + 5, 65536 + 17]) {
    for (let align = 0; align < 8; align++) {
      const bytes = backing.subarray(align, align + len);
      assert.is(core.crc32c(bytes), nativeCrc32c(bytes), `len ${len} align ${align}`);
      assert.is(debugCore.crc32c(bytes), nativeCrc32c(bytes), `len ${len} align ${align} (debug)`);
      const cut = 1 + rng.int(len - 1);
      assert.is(core.crc32c(bytes.subarray(cut), core.crc32c(bytes.subarray(0, cut))), nativeCrc32c(bytes));
    }
  }
});

test('random buffers of random sizes up to 1 MiB match @node-rs/crc32 and kafkajs', () => {
  const rng = new Rng(2);
  for (let i = 0; i < 60; i++) {
    const len = i < 30 ? rng.int(1 << 12) : rng.int(1 << 20);
    const bytes = rng.bytes(len + 7).subarray(rng.int(8), len);
    const want = nativeCrc32c(bytes);
    assert.is(core.crc32c(bytes), want);
    if (i % 10 === 0) assert.is(kafkaCrc32c(Buffer.from(bytes)) >>> 0, want);
  }
});

test('incremental: crc32c(b, crc32c(a)) = crc32c(a ++ b), at every split of random buffers', () => {
  const rng = new Rng(3);
  for (let i = 0; i < 20; i++) {
    const bytes = rng.bytes(1 + rng.int(200));
    const whole = core.crc32c(bytes);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const a = core.crc32c(bytes.subarray(0, cut));
      assert.is(core.crc32c(bytes.subarray(cut), a), whole, `cut ${cut}`);
    }
    // The native library's seeded form agrees (same convention).
    const cut = rng.int(bytes.length);
    assert.is(nativeCrc32c(bytes.subarray(cut), core.crc32c(bytes.subarray(0, cut))), whole);
  }
});

test('the debug wasm (assertions on) agrees with the release wasm', () => {
  const rng = new Rng(4);
  for (let i = 0; i < 50; i++) {
    const bytes = rng.bytes(rng.int(5000));
    const seed = rng.u32();
    assert.is(debugCore.crc32c(bytes, seed), core.crc32c(bytes, seed));
  }
});

test('a large input grows wasm memory and stays correct', () => {
  const rng = new Rng(5);
  const bytes = rng.bytes(48 * 1024 * 1024);
  assert.is(core.crc32c(bytes), nativeCrc32c(bytes));
  assert.is(core.crc32c(bytes.subarray(0, 1000)), nativeCrc32c(bytes.subarray(0, 1000)));
});

test.run();
