// The join record over the crash-semantics file system: written before anything else in a
// directory created to join, durable, and read back as "horizon unknown" when damaged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import { JOIN_FILE, openJoinRecord } from '../src/join-record.js';
import { createPrng, MemFileSystem, makeDirsDurable } from '../src/storage/index.js';

const core = createCore();
const DIR = '/var/lib/cairn';

test('only a directory created with --join has a record; its horizon survives a power loss once set', async () => {
  const fs = new MemFileSystem({ prng: createPrng(1) });
  await makeDirsDurable(fs, DIR); // as checkIdentity leaves it
  assert.is(await openJoinRecord(fs, core, DIR, { created: true, join: false }), undefined);
  assert.is(
    await openJoinRecord(fs, core, DIR, { created: false, join: true }),
    undefined,
    'an old directory',
  );
  const r = (await openJoinRecord(fs, core, DIR, { created: true, join: true }))!;
  assert.is(r.horizon, 0, 'unknown until group 0 is repaired');
  await r.setHorizon(7);
  assert.is(r.horizon, 7);
  fs.crash('lose');
  const again = await openJoinRecord(fs, core, DIR, { created: false, join: true });
  assert.is(again?.horizon, 7);
});

test('a damaged record reads as horizon unknown (every fresh group is repaired), never as a smaller one', async () => {
  const fs = new MemFileSystem({ prng: createPrng(2) });
  await makeDirsDurable(fs, DIR);
  const r = (await openJoinRecord(fs, core, DIR, { created: true, join: true }))!;
  await r.setHorizon(12);
  const path = `${DIR}/${JOIN_FILE}`;
  const size = fs.fileBytes(path).length;
  for (let pos = 0; pos < size; pos++) {
    for (const mask of [0x01, 0x80]) {
      fs.corruptByte(path, pos, mask);
      const h = (await openJoinRecord(fs, core, DIR, { created: false, join: true }))?.horizon;
      assert.ok(h === 0, `a flip at ${pos} read as horizon ${h}`);
      fs.corruptByte(path, pos, mask);
    }
  }
});

test.run();
