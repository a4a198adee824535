import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeFrame, encodeFrame, FrameError, type MessageValidator } from '../src/peer/frame.js';

type Ping = { type: 'ping'; n: number; data: Uint8Array };
const isPing: MessageValidator = (m) => {
  if (typeof m !== 'object' || m === null) return 'not an object';
  const p = m as Record<string, unknown>;
  if (p['type'] !== 'ping') return 'bad type';
  if (!Number.isSafeInteger(p['n'])) return 'bad n';
  if (!(p['data'] instanceof Uint8Array)) return 'bad data';
  return null;
};
const raw = new Packr({ useRecords: false, mapsAsObjects: true });

test('message frames and hellos round-trip', () => {
  const groups = [
    { group: 0, messages: [{ type: 'ping', n: 1, data: new Uint8Array([1, 2, 3]) } as Ping] },
    { group: 17, messages: [] as Ping[] },
  ];
  const f = decodeFrame<Ping>(
    encodeFrame({ kind: 'messages', from: 2, clusterId: 'c', groups }),
    1 << 20,
    isPing,
  );
  assert.is(f.kind, 'messages');
  if (f.kind === 'messages') {
    assert.is(f.from, 2);
    assert.is(f.groups[1]!.group, 17);
    assert.equal([...f.groups[0]!.messages[0]!.data], [1, 2, 3]);
  }
  const h = decodeFrame(encodeFrame({ kind: 'hello', from: 1, clusterId: 'c', to: 2 }), 100, isPing);
  assert.equal(h, { kind: 'hello', from: 1, clusterId: 'c', to: 2 });
});

test('malformed frames are refused with FrameError, never anything else', () => {
  const cases: unknown[] = [
    null,
    42,
    'x',
    [1, 1, 2, 'c'],
    [2, 1, 2, 'c', []],
    [1, 9, 2, 'c', []],
    [1, 1, 0, 'c', []],
    [1, 1, 2.5, 'c', []],
    [1, 1, 2, 7, []],
    [1, 1, 2, 'c', {}],
    [1, 1, 2, 'c', [[0]]],
    [1, 1, 2, 'c', [[-1, []]]],
    [1, 1, 2, 'c', [[0, {}]]],
    [1, 1, 2, 'c', [[0, [{ type: 'pong' }]]]],
    [1, 1, 2, 'c', [[0, [{ type: 'ping', n: 1, data: 'str' }]]]],
    [1, 0, 2, 'c', 0],
  ];
  for (const c of cases) {
    assert.throws(
      () => decodeFrame(raw.pack(c), 1 << 20, isPing),
      (e: unknown) => e instanceof FrameError,
      JSON.stringify(c),
    );
  }
  assert.throws(() => decodeFrame(new Uint8Array(101), 100, isPing), /exceeds 100/);
});

test('random bytes and mutated frames never escape as anything but FrameError or a valid frame', () => {
  const good = encodeFrame({
    kind: 'messages',
    from: 3,
    clusterId: 'c',
    groups: [{ group: 5, messages: [{ type: 'ping', n: 9, data: new Uint8Array(8) }] }],
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
          const b = Uint8Array.from(good);
          b[i] = v;
          return b;
        }),
        fc.nat(good.length).map((n) => good.slice(0, n)),
      ),
      (bytes) => {
        try {
          const f = decodeFrame(bytes, 1 << 16, isPing);
          assert.ok(f.kind === 'hello' || f.kind === 'messages');
        } catch (e) {
          assert.instance(e, FrameError);
        }
      },
    ),
    { numRuns: Number(process.env['CAIRN_FUZZ_RUNS'] ?? 3000) },
  );
});

test.run();
