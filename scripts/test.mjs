// Runs every uvu test file under dist/ in its own Node process (isolation: a test
// that starts servers or workers cannot leak into the next), a few at a time, and
// prints one closing line: "N passed, N failed, N skipped".
//
//   node scripts/test.mjs [filter ...]   only files whose path contains a filter
//   CAIRN_TEST_JOBS=2                     files run at once (default: 2, the CI machine's cores)
//   CAIRN_TEST_TIMEOUT_S=900              per-file limit; a file over it is killed and failed
//
// A file whose tests all passed but whose process then does not exit (uvu printed its
// summary, 30 s went by) fails, unless its main thread is blocked on a lock rather than
// waiting in its event loop: that one is killed and run once more, and the runner says so
// with the state of its threads. Node 20 can deadlock in its own shutdown while V8
// background tasks (JIT, WebAssembly tier-up) still run (nodejs/node#54918, open); CI saw
// it once, in a pure WebAssembly test with no handle open. A handle left open keeps the
// main thread in epoll, so it fails at once; a file that deadlocks twice fails too.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
const rerunAfterHang = [];

/**
 * The process's threads as "name:state:wait-channel" (Linux /proc), the main thread first,
 * and whether the main thread waits on a lock (futex) rather than in its event loop
 * (epoll): a handle left open keeps the loop waiting in epoll; the shutdown deadlock
 * leaves the main thread on a futex with the loop finished.
 */
function threadStates(pid) {
  try {
    const main = String(pid);
    const tids = [main, ...readdirSync(`/proc/${pid}/task`).filter((t) => t !== main)];
    const states = tids.map((tid) => {
      const read = (f) => readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8').trim();
      const state = read('stat')
        .replace(/^.*\) /, '')
        .split(' ')[0];
      return `${read('comm')}:${state}:${read('wchan')}`;
    });
    return { text: states.join(', '), mainOnLock: /futex/.test(states[0] ?? '') };
  } catch (e) {
    return { text: `unavailable (${e.message})`, mainOnLock: false };
  }
}

/** Time a process may take to exit after uvu printed its summary. */
const EXIT_GRACE_MS = 30_000;

function runFile(file, retried = false) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NODE_DISABLE_COLORS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    let timedOut = false;
    /** Set when the summary was printed and the process then did not exit. */
    let hungAtExit;
    let exitTimer;
    const kill = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    };
    const onOutput = (d) => {
      output += d;
      // The summary's last line, looked for near the end only (not the whole output each time).
      if (exitTimer === undefined && /Duration:\s/.test(stripAnsi(output.slice(-256)))) {
        exitTimer = setTimeout(() => {
          hungAtExit = threadStates(child.pid);
          kill();
        }, EXIT_GRACE_MS);
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(exitTimer);
      const text = stripAnsi(output);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (hungAtExit?.mainOnLock && !retried && Number.isFinite(total) && passed === total) {
        process.stdout.write(
          `⚠ ${file}: ${passed} passed, then the process did not exit in ${EXIT_GRACE_MS / 1000}s ` +
            `(its main thread waits on a lock: threads ${hungAtExit.text}); killed, running it once more\n`,
        );
        rerunAfterHang.push(file);
        resolve(runFile(file, true));
        return;
      }
      // uvu's Total counts the tests that ran (passed + failed); Skipped ones are apart.
      const ok = code === 0 && !timedOut && !hungAtExit && Number.isFinite(total) && passed === total;
      if (Number.isFinite(total)) {
        totals.passed += passed;
        totals.failed += total - passed;
        totals.skipped += skipped;
      }
      if (!ok) {
        failedFiles.push(file);
        if (!(total - passed > 0)) totals.failed += 1; // count a crashed or hung file once
        const why = timedOut
          ? `timed out after ${timeoutMs / 1000}s`
          : hungAtExit
            ? `did not exit ${EXIT_GRACE_MS / 1000}s after its summary (threads ${hungAtExit.text}${hungAtExit.mainOnLock ? '' : '; the event loop still waits: a handle left open?'})`
            : `exit ${code ?? signal}`;
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
if (rerunAfterHang.length > 0) {
  console.log(
    `\nRun again after passing and then not exiting:\n${rerunAfterHang.map((f) => `  ${f}`).join('\n')}`,
  );
}
if (files.length === 0) console.log('no test files found');
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = failedFiles.length > 0 || files.length === 0 ? 1 : 0;
