// The client as a service's project gets it: `npm pack` in client/ (its prepare script
// builds client/dist), the tarball installed with npm into a new project in a temp
// directory outside the repository, and a plain Node ESM script there that imports
// '@cairn/client' and creates a stream, appends and reads back from a real one-node
// `cairn serve`. The project's TypeScript sees the package's types through its `exports`.
//
// Installing needs the npm registry (for the client's dependencies; --prefer-offline takes
// npm's cache first). When npm cannot reach it, the test is reported as skipped with the
// reason; with CI=true it is required and fails.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProcessCluster } from './support/cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLIENT_DIR = join(ROOT, 'client');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
/** Bounds on each npm step: a registry that hangs must not hold the test run. */
const PACK_TIMEOUT_MS = 180_000;
const INSTALL_TIMEOUT_MS = 180_000;
const RUN_TIMEOUT_MS = 60_000;

/**
 * The environment a user's shell would give npm: without what `npm test` adds around this
 * process (the lifecycle's npm_* variables, its local prefix, node_modules/.bin on PATH).
 * The user's own npm settings (npm_config_registry, a proxy) stay.
 */
const ADDED_BY_NPM_RUN = /^npm_(lifecycle_|package_|command$|execpath$|node_execpath$|config_local_prefix$)/i;
const userEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !ADDED_BY_NPM_RUN.test(k)),
);
userEnv['PATH'] = (process.env['PATH'] ?? '')
  .split(delimiter)
  .filter((p) => !p.includes(`node_modules${'/'}.bin`))
  .join(delimiter);
userEnv['npm_config_update_notifier'] = 'false';

const npm = (args: string[], cwd: string, timeout: number): SpawnSyncReturns<string> =>
  spawnSync('npm', args, { cwd, env: userEnv, encoding: 'utf8', timeout });

const output = (r: SpawnSyncReturns<string>): string =>
  `exit ${r.status ?? r.signal ?? r.error?.message}\n${r.stdout ?? ''}\n${r.stderr ?? ''}`.slice(-4000);

/** npm's messages when the registry cannot be reached (as opposed to a package that is wrong). */
const REGISTRY_UNREACHABLE =
  /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT|network request|request to https?:\/\/\S+ failed/;

const work = mkdtempSync(join(tmpdir(), 'cairn-client-package-'));
const app = join(work, 'app');

/** What the setup found: a project with the package installed, a reason to skip, or a failure. */
type Setup = { ok: true } | { skip: string } | { failed: string };

function setUp(): Setup {
  if (!relative(ROOT, realpathSync(work)).startsWith('..'))
    return { failed: `${work} is inside the repository` };
  const version = spawnSync('npm', ['--version'], { env: userEnv, encoding: 'utf8' });
  if (version.error || version.status !== 0)
    return { skip: 'npm is not on PATH: it comes with Node.js (or `apt-get install -y npm`)' };

  const pack = npm(['pack', '--pack-destination', work], CLIENT_DIR, PACK_TIMEOUT_MS);
  if (pack.status !== 0) return { failed: `npm pack in client/ failed: ${output(pack)}` };
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (tarball === undefined) return { failed: `npm pack wrote no tarball: ${output(pack)}` };

  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'cairn-client-user', private: true, type: 'module' }, null, 2)}\n`,
  );
  const install = npm(
    // One retry, not npm's default two with up to a minute between: a registry that refuses
    // connections is reported in seconds.
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--fetch-retries=1',
      '--fetch-retry-maxtimeout=5000',
      join(work, tarball),
    ],
    app,
    INSTALL_TIMEOUT_MS,
  );
  if (install.status === 0) return { ok: true };
  const why = output(install);
  if (install.error?.message.includes('ETIMEDOUT') || install.signal !== null)
    return { skip: `npm install did not finish in ${INSTALL_TIMEOUT_MS / 1000} s (registry unreachable?)` };
  if (REGISTRY_UNREACHABLE.test(why))
    return { skip: `npm cannot reach the registry to install the client's dependencies: ${why.trim()}` };
  return { failed: `npm install of the packed client failed: ${why}` };
}

const setup = setUp();
const required = process.env['CI'] === 'true';
const skip = 'skip' in setup && !required;
if (skip) console.log(`skipped: the client package test: ${(setup as { skip: string }).skip}`);

/** The script a user would write: plain Node ESM, no TypeScript, no build step. */
const USE_SCRIPT = `import { CairnClient, CairnClientError } from '@cairn/client';

const client = new CairnClient({ servers: process.argv[2] });
try {
  await client.createStream('from-package', { partitions: 1, replicationFactor: 1 });
  const first = await client.append('from-package', { key: 'k', value: 'one' });
  const rest = await client.append('from-package', [{ value: 'two' }, { value: 'three', headers: [{ key: 'h', value: 'x' }] }]);
  const { records } = await client.read('from-package', first.partition, { offset: first.offset });
  let missing;
  try {
    await client.read('no-such-stream', 0, { offset: 0 });
  } catch (err) {
    missing = err instanceof CairnClientError ? err.code : String(err);
  }
  const text = (b) => (b === null ? null : new TextDecoder().decode(b));
  console.log(JSON.stringify({
    resolved: import.meta.resolve('@cairn/client'),
    first,
    rest,
    records: records.map((r) => ({
      offset: r.offset,
      key: text(r.key),
      value: text(r.value),
      headers: r.headers.map((h) => [h.key, text(h.value)]),
    })),
    missing,
  }));
} finally {
  await client.close();
}
`;

/** And the same from TypeScript: the package's declarations, found through `exports`. */
const TYPED = `import { CairnClient, type ClientOptions, type RecordPosition } from '@cairn/client';

const options: ClientOptions = { ...({} as ClientOptions), servers: ['127.0.0.1:7001'] };
const client = new CairnClient(options);
const position: RecordPosition = await client.append('s', { key: 'k', value: 'v' });
// @ts-expect-error: a record's value is bytes or a string, not a number
await client.append('s', { value: 7 });
console.log(position.offset + 1);
await client.close();
`;

(skip ? test.skip : test)(
  'the packed client installs into a project outside the repository and works from plain Node ESM',
  async () => {
    if ('failed' in setup) throw new Error(setup.failed);
    if ('skip' in setup) throw new Error(`CI=true requires the client package test: ${setup.skip}`);

    const installed = realpathSync(join(app, 'node_modules', '@cairn', 'client'));
    assert.ok(installed.startsWith(realpathSync(app)), `a copy in the project, not a link: ${installed}`);

    const c = new ProcessCluster([1]);
    try {
      await c.startAll();
      writeFileSync(join(app, 'use.mjs'), USE_SCRIPT);
      const run = spawnSync(process.execPath, ['use.mjs', c.api(1)], {
        cwd: app,
        env: userEnv,
        encoding: 'utf8',
        timeout: RUN_TIMEOUT_MS,
      });
      assert.is(run.status, 0, output(run));
      const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
      assert.ok(
        fileURLToPath(out.resolved).startsWith(installed),
        `'@cairn/client' resolved to ${out.resolved}, not the installed package`,
      );
      // Consecutive offsets from the first record's (control batches may come before it).
      const o: number = out.first.offset;
      assert.equal(out.first, { partition: 0, offset: o });
      assert.equal(out.rest, [
        { partition: 0, offset: o + 1 },
        { partition: 0, offset: o + 2 },
      ]);
      assert.equal(out.records, [
        { offset: o, key: 'k', value: 'one', headers: [] },
        { offset: o + 1, key: null, value: 'two', headers: [] },
        { offset: o + 2, key: null, value: 'three', headers: [['h', 'x']] },
      ]);
      assert.is(out.missing, 'STREAM_NOT_FOUND');
    } finally {
      await c.stopAll();
    }

    writeFileSync(join(app, 'typed.ts'), TYPED);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['typed.ts'],
      }),
    );
    const tsc = spawnSync(TSC, ['-p', 'tsconfig.json'], {
      cwd: app,
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
    });
    assert.is(tsc.status, 0, `the project's tsc failed on the package's types: ${output(tsc)}`);
  },
);

test.after(() => {
  if (process.env['CAIRN_TEST_KEEP'] === '1') console.error(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

test.run();
