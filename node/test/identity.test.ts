// The identity file over the crash-semantics file system: a power loss at any point of a
// node's first start leaves a directory the next start takes (never an unreadable file
// beside data), and a directory is never served as another node's.
import assert from 'node:assert/strict';
import { suite } from 'uvu';
import { checkIdentity, IdentityError } from '../src/identity.js';
import {
  CRASH_MODES,
  createPrng,
  FsError,
  MemFileSystem,
  readFile,
  writeFileAtomic,
} from '../src/storage/index.js';

const ME = { nodeId: 2, clusterId: 'prod' };
const s = suite('identity file');

s(
  'a power loss at every step of the first start, in every crash mode, leaves a directory the next start takes',
  async () => {
    // The steps of a first start with nothing after it, then a first group directory.
    const firstStart = async (fs: MemFileSystem) => {
      await checkIdentity(fs, '/var/lib/cairn/node-2', ME);
      await fs.mkdir('/var/lib/cairn/node-2/groups');
      await writeFileAtomic(fs, '/var/lib/cairn/node-2/groups/state', new Uint8Array([1]));
    };
    const probe = new MemFileSystem({ prng: createPrng(0) });
    await firstStart(probe);
    const steps = probe.steps;
    assert.ok(steps > 8, `${steps} steps`);
    for (const mode of CRASH_MODES)
      for (let step = 0; step <= steps; step++) {
        const fs = new MemFileSystem({ prng: createPrng(step) });
        fs.armCrash(step);
        await firstStart(fs).catch((e) => {
          if (!(e instanceof FsError && e.code === 'CRASHED')) throw e;
        });
        fs.crash(mode);
        const outcome = await checkIdentity(fs, '/var/lib/cairn/node-2', ME);
        assert.ok(
          ['created', 'matched', 'rewritten'].includes(outcome),
          `${mode} at step ${step}: ${outcome}`,
        );
        const text = new TextDecoder().decode((await readFile(fs, '/var/lib/cairn/node-2/node.json'))!);
        assert.deepEqual(JSON.parse(text), ME);
      }
  },
);

s('another node, another cluster, a lost file beside data: typed errors that change nothing', async () => {
  const fs = new MemFileSystem({ prng: createPrng(1) });
  assert.equal(await checkIdentity(fs, 'd', ME), 'created');
  assert.equal(await checkIdentity(fs, 'd', ME), 'matched');
  for (const other of [
    { nodeId: 3, clusterId: 'prod' },
    { nodeId: 2, clusterId: 'test' },
  ])
    await assert.rejects(
      checkIdentity(fs, 'd', other),
      (e: unknown) =>
        e instanceof IdentityError && e.code === 'IDENTITY_MISMATCH' && /belongs to node 2/.test(e.message),
    );
  await fs.mkdir('d/groups');
  for (const [bytes, what] of [
    [new Uint8Array(0), 'is empty'],
    [new TextEncoder().encode('{"nodeId":2,"clu'), 'cannot be read'],
    [new TextEncoder().encode('{"nodeId":0,"clusterId":"prod"}'), 'cannot be read'],
  ] as const) {
    await writeFileAtomic(fs, 'd/node.json', bytes);
    await assert.rejects(
      checkIdentity(fs, 'd', ME),
      (e: unknown) =>
        e instanceof IdentityError &&
        e.code === 'IDENTITY_LOST' &&
        e.message.includes(what) &&
        /--join/.test(e.message),
    );
    assert.deepEqual([...(await readFile(fs, 'd/node.json'))!], [...bytes], 'left as it was');
  }
  await fs.remove('d/node.json');
  await assert.rejects(
    checkIdentity(fs, 'd', ME),
    (e: unknown) =>
      e instanceof IdentityError && e.code === 'IDENTITY_LOST' && e.message.includes('is missing'),
  );
});

s.run();
