// The `cairn` command line: `cairn dev` starts a local cluster and stops every child on
// SIGTERM; `cairn status` reports it (table and --json); `cairn serve` refuses bad config.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const CAIRN = fileURLToPath(new URL('../../../bin/cairn.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('cairn dev runs N nodes, cairn status shows them, SIGTERM stops every child', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-dev-'));
  // A base port from a range the other tests' ephemeral ports do not use.
  const base = 20_000 + Math.floor(Math.random() * 20_000);
  const dev = spawn(
    process.execPath,
    [CAIRN, 'dev', '--nodes', '2', '--data', dir, '--base-port', String(base), '--', '--tick-ms', '20'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const pids: number[] = [];
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cairn dev not ready: ${out}`)), 30_000);
      dev.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('servers:')) {
          clearTimeout(timer);
          resolve();
        }
      });
      dev.once('exit', (code) => reject(new Error(`cairn dev exited ${code}: ${out}`)));
    });
    for (const m of out.matchAll(/pid (\d+)/g)) pids.push(Number(m[1]));
    assert.is(pids.length, 2);
    assert.match(out, new RegExp(`servers: 127\\.0\\.0\\.1:${base},127\\.0\\.0\\.1:${base + 1}`));

    let status:
      | {
          clusterId: string;
          members: { healthy: boolean; status: { pid: number; groups: { role: string }[] } }[];
        }
      | undefined;
    for (let i = 0; i < 100 && status === undefined; i++) {
      const r = spawnSync(process.execPath, [CAIRN, 'status', '--server', `127.0.0.1:${base}`, '--json'], {
        encoding: 'utf8',
      });
      const s = r.status === 0 ? JSON.parse(r.stdout) : undefined;
      if (
        s?.members?.some(
          (m: { status: { groups: { role: string }[] } }) => m.status.groups[0]?.role === 'ROLE_LEADER',
        )
      )
        status = s;
      else await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(status, 'status reports a leader');
    assert.is(status!.members.length, 2);
    assert.ok(status!.members.every((m) => m.healthy));
    assert.equal(status!.members.map((m) => m.status.pid).sort(), [...pids].sort());
    const table = spawnSync(process.execPath, [CAIRN, 'status', '--server', `127.0.0.1:${base}`], {
      encoding: 'utf8',
    });
    assert.is(table.status, 0);
    assert.match(table.stdout, /\(metadata\)\s+leader/);

    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    dev.kill('SIGTERM');
    assert.is(await exited, 0);
    for (const pid of pids) assert.not.ok(alive(pid), `node pid ${pid} still running`);
  } finally {
    if (dev.exitCode === null) dev.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cairn serve refuses a bad configuration with exit code 2; unknown commands too', () => {
  const r = spawnSync(process.execPath, [CAIRN, 'serve', '--node-id', '0'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, /nodeId must be an integer/);
  const u = spawnSync(process.execPath, [CAIRN, 'frobnicate'], { encoding: 'utf8' });
  assert.is(u.status, 2);
  const h = spawnSync(process.execPath, [CAIRN, 'help'], { encoding: 'utf8' });
  assert.is(h.status, 0);
  assert.match(h.stdout, /serve\s+run one Cairn node/);
});

test.run();
