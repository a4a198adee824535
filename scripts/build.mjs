// Builds everything Cairn needs to run: core.wasm (AssemblyScript), the generated
// protobuf code (buf + protoc-gen-es) and the TypeScript (tsc → dist/).
// Each step is skipped when its outputs are newer than its inputs, so `npm test`
// stays quick during development while `npm install` on a fresh clone builds all.
//
//   node scripts/build.mjs [--force] [--no-tsc]
//   --force    every step, even when its outputs are newer than its inputs
//   --no-tsc   core.wasm and proto/gen only: scripts/build-client.mjs compiles its own part
//              into client/dist and leaves dist/ as it is (tests may be running from it)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function run(cmd, args) {
  // buf finds protoc-gen-es on PATH, so the local bin folder goes first.
  const env = { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` };
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (res.status !== 0) {
    console.error(`build: ${[cmd, ...args].join(' ')} failed (exit ${res.status ?? res.signal})`);
    process.exit(1);
  }
}

/** Newest mtime (ms) of the files under `paths` whose name passes `filter`; 0 if none. */
function newest(paths, filter = () => true) {
  let max = 0;
  const visit = (p) => {
    if (!existsSync(p)) return;
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const name of readdirSync(p)) visit(join(p, name));
    } else if (filter(p)) {
      max = Math.max(max, st.mtimeMs);
    }
  };
  for (const p of paths) visit(join(root, p));
  return max;
}

const force = process.argv.includes('--force');
const noTsc = process.argv.includes('--no-tsc');

// 1. core.wasm, release and debug targets (asconfig.json).
if (existsSync(join(root, 'core-wasm/assembly/index.ts'))) {
  const src = newest(['core-wasm/assembly', 'asconfig.json']);
  const out = Math.min(newest(['dist/core-wasm/core.wasm']), newest(['dist/core-wasm/core.debug.wasm']));
  if (force || out < src) {
    run(bin('asc'), ['--config', 'asconfig.json', '--target', 'release']);
    run(bin('asc'), ['--config', 'asconfig.json', '--target', 'debug']);
  }
}

// 2. Generated protobuf code (proto/gen), from proto/cairn/**/*.proto.
const protoSrc = newest(['proto/cairn', 'buf.yaml', 'buf.gen.yaml'], (p) => !p.includes('/gen/'));
if (protoSrc > 0) {
  const out = newest(['proto/gen']);
  if (force || out < protoSrc) run(bin('buf'), ['generate']);
}

// 3. TypeScript. tsc is itself incremental enough at this size; always run it so
// that `npm test` is also the type-check.
if (!noTsc) run(bin('tsc'), ['-p', 'tsconfig.json']);
