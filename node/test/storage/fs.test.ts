// The FileSystem seam: one contract run over both implementations (node:fs in a temp
// directory, and the in-memory one), then the in-memory file system's crash semantics:
// what survives each unsynced-loss mode, directory entries, dead handles, enumerated
// crash points, read faults, faults at rest, the delay hook, determinism.
import assert from 'node:assert/strict';
import { suite } from 'uvu';
import {
  createPrng,
  type FileSystem,
  FsError,
  type FsOpInfo,
  LoseUnsyncedFileSystem,
  MemFileSystem,
  NodeFileSystem,
  RemnantFileSystem,
  readFile,
  readFully,
  removeTree,
  writeFileAtomic,
} from '../../src/storage/index.js';
import { eqBytes, tempDir } from './helpers.js';

const bytes = (...xs: number[]) => new Uint8Array(xs);
const isFs = (code: string) => (e: unknown) => e instanceof FsError && e.code === code;

for (const kind of ['node fs', 'memfs', 'lose-unsynced fs', 'remnant fs over memfs'] as const) {
  const t = suite(`FileSystem contract: ${kind}`);
  const make = (): { fs: FileSystem; root: string; cleanup: () => void } => {
    if (kind === 'memfs')
      return { fs: new MemFileSystem({ prng: createPrng(1) }), root: 'r', cleanup: () => {} };
    if (kind === 'remnant fs over memfs')
      return {
        fs: new RemnantFileSystem(new MemFileSystem({ prng: createPrng(1) })),
        root: 'r',
        cleanup: () => {},
      };
    const d = tempDir();
    const fs = kind === 'node fs' ? new NodeFileSystem() : new LoseUnsyncedFileSystem();
    return { fs, root: `${d.dir}/r`, cleanup: d.cleanup };
  };

  t('files: create, exclusive, truncate, read, write, append, size, truncate, close', async () => {
    const { fs, root, cleanup } = make();
    try {
      await fs.mkdir(root);
      await fs.mkdir(root); // idempotent
      await assert.rejects(fs.open(`${root}/a`), isFs('NOT_FOUND'));
      const f = await fs.open(`${root}/a`, { create: true, exclusive: true });
      await assert.rejects(fs.open(`${root}/a`, { create: true, exclusive: true }), isFs('EXISTS'));
      await f.write(bytes(1, 2, 3), 0);
      await f.write([bytes(4, 5), bytes(), bytes(6)], 3);
      assert.equal(await f.append(bytes(7, 8)), 6);
      assert.equal(await f.size(), 8);
      const buf = new Uint8Array(10);
      assert.equal(await f.read(buf, 0), 8);
      assert.deepEqual([...buf.subarray(0, 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal(f.readSync(buf.subarray(0, 3), 5), 3);
      assert.deepEqual([...buf.subarray(0, 3)], [6, 7, 8]);
      assert.equal(f.readSync(new Uint8Array(4), 8), 0, 'at the end: nothing');
      await f.write(bytes(9), 10); // past the end: a zero-filled gap
      assert.deepEqual([...(await readFully(f, 8, 3))], [0, 0, 9]);
      await f.truncate(2);
      assert.equal(await f.size(), 2);
      await f.sync();
      await assert.rejects(f.read(buf, -1), isFs('INVALID'));
      await f.close();
      await assert.rejects(f.read(buf, 0), isFs('CLOSED'));
      const d = await fs.open(`${root}/d`, { create: true, dsync: true });
      await d.write(bytes(1, 2), 0);
      assert.equal(await d.append(bytes(3)), 2);
      assert.equal(await d.size(), 3);
      await d.close();
      const g = await fs.open(`${root}/a`, { truncate: true });
      assert.equal(await g.size(), 0);
      await g.close();
      await assert.rejects(
        fs.open(root),
        (e: unknown) => e instanceof FsError && ['IS_A_DIRECTORY', 'IO'].includes(e.code),
      );
    } finally {
      cleanup();
    }
  });

  t('directories: list, rename (replacing), remove, exists, atomic replace, remove a tree', async () => {
    const { fs, root, cleanup } = make();
    try {
      await fs.mkdir(root);
      for (const n of ['b', 'a', 'c']) {
        const f = await fs.open(`${root}/${n}`, { create: true });
        await f.write(new TextEncoder().encode(n), 0);
        await f.close();
      }
      assert.deepEqual(await fs.list(root), ['a', 'b', 'c']);
      await fs.rename(`${root}/a`, `${root}/b`);
      assert.deepEqual(await fs.list(root), ['b', 'c']);
      assert.equal(new TextDecoder().decode((await readFile(fs, `${root}/b`))!), 'a');
      await fs.remove(`${root}/c`);
      assert.equal(await fs.exists(`${root}/c`), false);
      assert.equal(await fs.exists(`${root}/b`), true);
      await assert.rejects(fs.remove(`${root}/c`), isFs('NOT_FOUND'));
      await fs.mkdir(`${root}/d`);
      await writeFileAtomic(fs, `${root}/d/x`, bytes(1));
      await writeFileAtomic(fs, `${root}/d/x`, bytes(2, 3));
      assert.deepEqual([...(await readFile(fs, `${root}/d/x`))!], [2, 3]);
      assert.deepEqual(await fs.list(`${root}/d`), ['x']);
      await assert.rejects(fs.remove(`${root}/d`), isFs('NOT_EMPTY'));
      await fs.syncDir(`${root}/d`);
      assert.equal(await readFile(fs, `${root}/nothing`), null);
      await removeTree(fs, root);
      assert.equal(await fs.exists(root), false);
    } finally {
      cleanup();
    }
  });

  t.run();
}

const lazy = suite('lose-unsynced file system: what a SIGKILL of the process leaves on the disk');

lazy(
  'only synced contents reach the disk; renames reach it at once; handles share the unsynced view',
  async () => {
    const d = tempDir();
    try {
      const fs = new LoseUnsyncedFileSystem();
      const a = await fs.open(`${d.dir}/a`, { create: true });
      await a.write(bytes(1, 2, 3), 0);
      await a.sync();
      await a.write(bytes(9, 9), 1); // unsynced
      await a.truncate(2); // unsynced
      const again = await fs.open(`${d.dir}/a`);
      assert.deepEqual(
        [...(await readFully(again, 0, 8))],
        [1, 9],
        'a second handle sees the pending changes',
      );
      // The "process" dies here: a fresh view of the disk holds what was synced.
      const disk = new NodeFileSystem();
      assert.deepEqual([...(await readFile(disk, `${d.dir}/a`))!], [1, 2, 3]);
      // An atomic replace without its fsync: the name moves, the bytes are lost (the
      // zero-length file a power loss left in node.json).
      const t = await fs.open(`${d.dir}/b.tmp`, { create: true, truncate: true });
      await t.write(bytes(7, 7), 0);
      await t.close();
      await fs.rename(`${d.dir}/b.tmp`, `${d.dir}/b`);
      assert.deepEqual([...(await readFile(fs, `${d.dir}/b`))!], [7, 7], 'the process sees its write');
      assert.deepEqual([...(await readFile(disk, `${d.dir}/b`))!], [], 'the disk has an empty file');
      // writeFileAtomic fsyncs: it survives.
      await writeFileAtomic(fs, `${d.dir}/c`, bytes(5, 6));
      assert.deepEqual([...(await readFile(disk, `${d.dir}/c`))!], [5, 6]);
      // Syncing through either handle makes the shared changes durable; dsync writes are durable at once.
      await again.sync();
      assert.deepEqual([...(await readFile(disk, `${d.dir}/a`))!], [1, 9]);
      const ds = await fs.open(`${d.dir}/d`, { create: true, dsync: true });
      await ds.write(bytes(4), 0);
      assert.deepEqual([...(await readFile(disk, `${d.dir}/d`))!], [4]);
      for (const f of [a, again, ds]) await f.close();
    } finally {
      d.cleanup();
    }
  },
);

lazy.run();

const m = suite('in-memory file system: crash semantics');

async function fileWith(fs: MemFileSystem, path: string, content: Uint8Array, sync: boolean) {
  const f = await fs.open(path, { create: true });
  await f.write(content, 0);
  if (sync) await f.sync();
  return f;
}

m('lose: unsynced writes vanish, synced ones stay; a new name needs a directory fsync', async () => {
  const fs = new MemFileSystem({ prng: createPrng(1) });
  await fs.mkdir('d');
  await fs.syncDir('');
  const a = await fileWith(fs, 'd/a', bytes(1, 2, 3), true);
  await fs.syncDir('d');
  await a.write(bytes(9, 9), 3); // unsynced
  await fileWith(fs, 'd/b', bytes(5), true); // data synced, name not
  fs.crash('lose');
  assert.deepEqual([...fs.fileBytes('d/a')], [1, 2, 3]);
  assert.equal(await fs.exists('d/b'), false);
  await assert.rejects(a.write(bytes(1), 0), isFs('CRASHED'), 'handles from before the crash are dead');
});

m('lose: renames, removes and mkdirs not followed by a directory fsync are undone', async () => {
  const fs = new MemFileSystem({ prng: createPrng(2) });
  await fs.mkdir('d');
  await fs.syncDir('');
  await fileWith(fs, 'd/old', bytes(1), true);
  await fileWith(fs, 'd/tmp', bytes(2), true);
  await fileWith(fs, 'd/gone', bytes(3), true);
  await fs.syncDir('d');
  await fs.rename('d/tmp', 'd/old');
  await fs.remove('d/gone');
  await fs.mkdir('d/sub');
  await fileWith(fs, 'd/sub/x', bytes(4), true);
  await fs.syncDir('d/sub');
  fs.crash('lose');
  assert.deepEqual([...fs.fileBytes('d/old')], [1], 'rename undone');
  assert.deepEqual([...fs.fileBytes('d/tmp')], [2]);
  assert.deepEqual([...fs.fileBytes('d/gone')], [3], 'remove undone');
  assert.equal(await fs.exists('d/sub'), false, 'the unsynced directory took its synced file with it');
});

m('torn: a prefix of the unsynced writes survives, the last one cut anywhere', async () => {
  const lengths = new Set<number>();
  for (let seed = 0; seed < 60; seed++) {
    const fs = new MemFileSystem({ prng: createPrng(seed) });
    const f = await fileWith(fs, 'a', bytes(1, 2), true);
    await fs.syncDir('');
    await f.write(bytes(3, 4, 5, 6), 2);
    await f.write(bytes(7, 8), 6);
    fs.crash('torn');
    const got = [...fs.fileBytes('a')];
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8].slice(0, got.length), `seed ${seed}: not a prefix`);
    assert.ok(got.length >= 2, `seed ${seed}: the durable part is kept`);
    lengths.add(got.length);
  }
  assert.ok(lengths.size >= 5 && [3, 4, 5].some((n) => lengths.has(n)), `torn lengths vary: ${[...lengths]}`);
});

m('reorder: any subset of the unsynced writes survives', async () => {
  const outcomes = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const fs = new MemFileSystem({ prng: createPrng(seed) });
    const f = await fileWith(fs, 'a', new Uint8Array(4), true);
    await fs.syncDir('');
    await f.write(bytes(1), 0);
    await f.write(bytes(2), 3);
    fs.crash('reorder');
    outcomes.add([...fs.fileBytes('a')].join(','));
  }
  assert.deepEqual([...outcomes].sort(), ['0,0,0,0', '0,0,0,2', '1,0,0,0', '1,0,0,2']);
});

m('dsync: a write is durable when it returns, and is two crash steps (write, then its sync)', async () => {
  const fs = new MemFileSystem({ prng: createPrng(8) });
  const f = await fs.open('a', { create: true, dsync: true });
  await fs.syncDir('');
  const before = fs.steps;
  await f.write(bytes(1, 2, 3), 0);
  assert.equal(fs.steps - before, 2);
  fs.crash('lose');
  assert.deepEqual([...fs.fileBytes('a')], [1, 2, 3]);
  // Stopped between the write and its sync: the write can be lost.
  const g = new MemFileSystem({ prng: createPrng(9) });
  const h = await g.open('a', { create: true, dsync: true });
  await g.syncDir('');
  g.armCrash(g.steps + 1);
  await assert.rejects(h.write(bytes(4), 0), isFs('CRASHED'));
  g.crash('lose');
  assert.equal(g.fileBytes('a').length, 0);
});

m('armCrash stops the machine before the k-th mutating step; steps are observable', async () => {
  const seen: FsOpInfo[] = [];
  const fs = new MemFileSystem({ prng: createPrng(3), onStep: (_, op) => seen.push(op) });
  fs.armCrash(2);
  const f = await fs.open('a', { create: true }); // step 0
  await f.write(bytes(1), 0); // step 1
  await assert.rejects(f.sync(), isFs('CRASHED')); // step 2: not performed
  assert.ok(fs.isFrozen);
  await assert.rejects(fs.list(''), isFs('CRASHED'), 'nothing runs once stopped');
  assert.deepEqual(
    seen.map((o) => o.kind),
    ['create', 'write'],
  );
  fs.crash('lose');
  assert.equal(await fs.exists('a'), false);
  assert.equal(fs.steps, 2);
});

m('read faults flip returned bits and shorten reads, never the stored bytes', async () => {
  const fs = new MemFileSystem({ prng: createPrng(4) });
  const content = new Uint8Array(4096).map((_, i) => i);
  const f = await fileWith(fs, 'a', content, true);
  fs.setReadFaults({ bitFlipProbability: 1, shortReadProbability: 1 });
  const buf = new Uint8Array(4096);
  const n = await f.read(buf, 0);
  assert.ok(n >= 1 && n < 4096, 'a short read');
  assert.ok(!eqBytes(buf.subarray(0, n), content.subarray(0, n)), 'a flipped bit');
  fs.setReadFaults({ shortReadProbability: 0.9 });
  assert.ok(eqBytes(await readFully(f, 0, 4096), content), 'readFully loops over short reads');
  fs.setReadFaults(null);
  assert.ok(eqBytes(fs.fileBytes('a'), content));
});

m('faults at rest: corruptByte and truncateAtRest change durable bytes', async () => {
  const fs = new MemFileSystem({ prng: createPrng(5) });
  await fileWith(fs, 'a', bytes(1, 2, 3, 4), true);
  await fs.syncDir('');
  fs.corruptByte('a', 1, 0xff);
  fs.truncateAtRest('a', 3);
  fs.crash('lose');
  assert.deepEqual([...fs.fileBytes('a')], [1, 0xfd, 3]);
  const g = await fs.open('a');
  await g.write(bytes(0), 0);
  assert.throws(() => fs.corruptByte('a', 0), isFs('INVALID'), 'not while writes are unsynced');
});

m('the delay hook defers effects; a crash while an operation waits cancels it', async () => {
  const gates: (() => void)[] = [];
  const fs = new MemFileSystem({
    prng: createPrng(6),
    delay: (op) => (op.kind === 'write' ? new Promise<void>((r) => gates.push(r)) : undefined),
  });
  const f = await fs.open('a', { create: true });
  const w = f.write(bytes(1, 2), 0);
  await Promise.resolve();
  assert.equal(fs.fileBytes('a').length, 0, 'not applied until the delay ends');
  gates.shift()!();
  await w;
  assert.equal(fs.fileBytes('a').length, 2);
  const w2 = f.write(bytes(3), 2);
  fs.crash('lose');
  gates.shift()!();
  await assert.rejects(w2, isFs('CRASHED'));
});

m('the same seed gives the same outcome', async () => {
  const run = async (seed: number) => {
    const fs = new MemFileSystem({ prng: createPrng(seed) });
    const f = await fileWith(fs, 'a', new Uint8Array(0), true);
    await fs.syncDir('');
    for (let i = 0; i < 20; i++) await f.write(new Uint8Array(7).fill(i), i * 7);
    fs.crash('torn');
    return [...fs.fileBytes('a')].join(',');
  };
  assert.equal(await run(42), await run(42));
});

m.run();
