// Builds the client package's shipped files (client/dist): core.wasm and the generated
// protobuf code first (scripts/build.mjs --no-tsc: dist/ itself is not rewritten, so tests
// running from it are not disturbed), then tsc over client/src with declarations,
// which follows the client's imports into core-wasm/src and proto/gen and keeps the
// repository's layout under client/dist, so the compiled relative imports stay as written.
// core.wasm goes where core-wasm/src/wasm.js looks for it (one folder above src/).
//
// client/package.json runs it as its `prepare` script: before `npm pack` and when a
// project installs the client from a path (`npm install /path/to/cairn/client`).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'client', 'dist');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

if (!existsSync(tsc)) {
  console.error(
    `build-client: ${tsc} is missing: run \`npm install\` in ${root} first (it builds the repository)`,
  );
  process.exit(1);
}

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`build-client: ${[cmd, ...args].join(' ')} failed (exit ${res.status ?? res.signal})`);
    process.exit(1);
  }
}

run(process.execPath, [join(root, 'scripts', 'build.mjs'), '--no-tsc']);
rmSync(out, { recursive: true, force: true });
run(tsc, ['-p', join(root, 'client', 'tsconfig.json')]);
copyFileSync(join(root, 'dist', 'core-wasm', 'core.wasm'), join(out, 'core-wasm', 'core.wasm'));
