// Cleanup on file systems that keep a removed-but-open file as a hidden remnant (FUSE's
// `.fuse_hidden*`, NFS's `.nfs*`): the directory holding it cannot be removed until the
// last handle closes. Seen on a FUSE data directory: a snapshot install removed the old
// generation's segments while a read still held one open, the rmdir after it failed
// with "directory not empty", and the node stopped. Cleanup must log and retry instead.
import assert from 'node:assert/strict';
import { suite } from 'uvu';
import {
  createPrng,
  type FileHandle,
  GroupStorage,
  MemFileSystem,
  RemnantFileSystem,
} from '../../src/storage/index.js';
import { core, dataStores, entries, storageOf } from './helpers.js';

const OPTS = { segmentBytes: 2500, indexIntervalBytes: 300, cacheBytes: 1, snapshotSyncIntervalBytes: 1024 };
const CONF = { voters: [1, 2, 3], learners: [] };

const s = suite('remnants of open files');

/** Opens the first segment file under `dir`'s generation `g`. */
async function holdSegment(fs: RemnantFileSystem, genDir: string): Promise<FileHandle> {
  const log = (await fs.list(genDir)).find((n) => n.endsWith('.log'));
  assert.ok(log, `a segment in ${genDir}`);
  return fs.open(`${genDir}/${log}`);
}

s(
  'a snapshot install while a segment is held open keeps the old generation for later, not fatal',
  async () => {
    const fs = new RemnantFileSystem(new MemFileSystem({ prng: createPrng(31) }));
    await fs.mkdir('x');
    const L = (await GroupStorage.open({ fs, dir: 'x/leader', core: core(), options: OPTS })).storage;
    L.append(entries(1, 201, (i) => 1 + Math.floor(i / 50), { valueBytes: 30 }));
    await L.sync();
    await L.saveSnapshot({ index: 150, term: L.term(150)!, conf: CONF }, new Uint8Array([1, 2, 3]));
    const reader = await L.openSnapshotReader();

    const F = (await GroupStorage.open({ fs, dir: 'x/follower', core: core(), options: OPTS })).storage;
    F.append(entries(1, 40, () => 1));
    await F.sync();
    // Another handle (a read in flight, a snapshot being sent) holds a segment of the old log.
    const held = await holdSegment(fs, 'x/follower/g0');

    const w = await F.receiveSnapshot(reader.meta);
    await w.write(0, await reader.read(0, reader.size));
    const report = await w.finish();
    assert.deepEqual(report.kept, ['g0'], 'the old generation waits for its remnant');
    assert.equal(fs.remnants().length, 1);
    assert.equal(F.firstIndex(), 151, 'the snapshot is installed');
    assert.equal(F.lastIndex(), 150);

    // The handle closes; the file system drops the remnant; the next recovery removes the rest.
    await held.close();
    assert.deepEqual(fs.remnants(), []);
    await F.close();
    const again = await GroupStorage.open({ fs, dir: 'x/follower', core: core(), options: OPTS });
    assert.ok(again.report.removed.includes('g0'), `removed: ${again.report.removed.join(',')}`);
    assert.equal(await fs.exists('x/follower/g0'), false);
    assert.equal(again.storage.firstIndex(), 151);
    await again.storage.close();
    await reader.close();
    await L.close();
  },
);

s('removing a group while one of its files is held open finishes at the next start', async () => {
  const fs = new RemnantFileSystem(new MemFileSystem({ prng: createPrng(32) }));
  await fs.mkdir('data');
  const stores = dataStores(fs);
  const { store } = await stores.open(7, OPTS.segmentBytes);
  const g = storageOf(store);
  g.append(entries(1, 30, () => 1));
  await g.sync();
  const held = await holdSegment(fs, 'data/groups/7/g0');
  await store.close();

  await stores.remove(7);
  assert.deepEqual(await stores.list(), [], 'the group is gone from the list at once');
  assert.ok(await fs.exists('data/groups/7.removed'), 'its directory waits for the remnant');

  await held.close();
  // A restart: the new provider finishes the removal.
  const restarted = dataStores(fs);
  assert.deepEqual(await restarted.list(), []);
  assert.equal(await fs.exists('data/groups/7.removed'), false);
  // The id can be used again.
  const again = await restarted.open(7, OPTS.segmentBytes);
  assert.equal(again.opened.hardState?.term ?? 0, 0);
  await again.store.close();
});

s.run();
