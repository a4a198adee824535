// Runs every uvu test file under dist/ in its own Node process (isolation: a test
// that starts servers or workers cannot leak into the next), a few at a time, and
// prints one closing line: "N passed, N failed, N skipped".
//
//   node scripts/test.mjs [filter ...]   only files whose path contains a filter
//   CAIRN_TEST_JOBS=2                     files run at once (default: 2, the CI machine's cores)
//   CAIRN_TEST_TIMEOUT_S=900              per-file limit; a file over it is killed and failed
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const filters = process.argv.slice(2);
const jobs = Math.max(1, Number(process.env.CAIRN_TEST_JOBS ?? 2));
const timeoutMs = Math.max(1, Number(process.env.CAIRN_TEST_TIMEOUT_S ?? 900)) * 1000;

function find(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && name !== 'gen') find(p, out);
    } else if (name.endsWith('.test.js') && p.includes(`${'/'}test${'/'}`)) {
      out.push(p);
    }
  }
  return out;
}

const files = find(dist)
  .map((p) => relative(root, p))
  .filter((p) => filters.length === 0 || filters.some((f) => p.includes(f)))
  .sort();

const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const stripAnsi = (s) => s.replace(ansi, '');
const totals = { passed: 0, failed: 0, skipped: 0 };
const failedFiles = [];

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NODE_DISABLE_COLORS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = stripAnsi(output);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
      // uvu's Total counts the tests that ran (passed + failed); Skipped ones are apart.
      const ok = code === 0 && !timedOut && Number.isFinite(total) && passed === total;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (Number.isFinite(total)) {
        totals.passed += passed;
        totals.failed += total - passed;
        totals.skipped += skipped;
      }
      if (!ok) {
        failedFiles.push(file);
        if (!(total - passed > 0)) totals.failed += 1; // count a crashed or hung file once
        const why = timedOut ? `timed out after ${timeoutMs / 1000}s` : `exit ${code ?? signal}`;
        process.stdout.write(`\n✘ ${file} (${secs}s, ${why})\n${text}\n`);
      } else {
        process.stdout.write(
          `✔ ${file}: ${passed} passed${skipped ? `, ${skipped} skipped` : ''} (${secs}s)\n`,
        );
        // A test skipped for a missing tool says which, and how to install it.
        for (const line of text.split('\n'))
          if (line.startsWith('skipped:')) process.stdout.write(`    ${line}\n`);
      }
      resolve();
    });
  });
}

const queue = [...files];
const workers = Array.from({ length: Math.min(jobs, queue.length) }, async () => {
  while (queue.length > 0) await runFile(queue.shift());
});
await Promise.all(workers);

if (failedFiles.length > 0) {
  console.log(`\nFailed files:\n${failedFiles.map((f) => `  ${f}`).join('\n')}`);
}
if (files.length === 0) console.log('no test files found');
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = failedFiles.length > 0 || files.length === 0 ? 1 : 0;
