// Processes and temp directories a benchmark owns. Every child is started here and
// remembered by PID; `cleanup()` stops exactly those PIDs (SIGTERM, then SIGKILL after a
// grace period) and removes the temp directories. It runs from the suites' `finally`, and
// also when this process exits, is interrupted (SIGINT/SIGTERM) or crashes, so nothing a
// benchmark started outlives it. Nothing here ever signals a process it did not start.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How long a stopped process gets to exit after SIGTERM before it is SIGKILLed. */
const STOP_GRACE_MS = 10_000;
/** How long a started process gets to say it is ready. */
const READY_TIMEOUT_MS = 30_000;
/**
 * Ports are taken from this range: below the kernel's ephemeral range (32768+, so no
 * outgoing connection takes one between our check and the server's bind), and apart from
 * 10000-19999, which the project's tests use (they may run beside a benchmark).
 */
const PORT_MIN = 20_000;
const PORT_SPAN = 10_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface StartOptions {
  /** Where stdout and stderr go (appended). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the process serves (polled every 50 ms until READY_TIMEOUT_MS). */
  ready: () => Promise<boolean>;
}

export interface Owned {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
}

/** The children and directories of one benchmark run. */
export class Processes {
  private readonly children = new Map<number, Owned>();
  private readonly dirs = new Set<string>();
  private readonly usedPorts = new Set<number>();
  /** Mount points of syncDir(), unmounted before the temp directories are removed. */
  private readonly mounts: string[] = [];
  private readonly onExit = () => {
    this.killAllNow();
    this.unmountAll();
  };
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.killAllNow();
    this.unmountAll();
    this.removeDirs();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    process.on('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** A temp directory removed by cleanup(). */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.dirs.add(dir);
    return dir;
  }

  /**
   * A directory on a filesystem of its own on which every write is synchronous: a sparse
   * image file in a temp directory, formatted ext4 and loop-mounted with `-o sync`, so
   * each write(2) returns only once data and metadata are on the (loop) device, which
   * passes the flush on to the backing file's disk. This is how a server that cannot be
   * told to fsync every write is measured with every write durable. Needs root (mount);
   * unmounted by cleanup(), or lazily if this process exits first.
   */
  syncDir(prefix: string, sizeMiB: number): string {
    const dir = this.tempDir(prefix);
    const image = join(dir, 'fs.img');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0)
        throw new Error(
          `${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`,
        );
    };
    run('truncate', ['-s', `${sizeMiB}M`, image]);
    // Eager inode-table and journal init: no background ext4lazyinit writes during a measurement.
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
    // `-o loop` attaches a free loop device with autoclear: it is detached at unmount.
    run('mount', ['-o', 'loop,sync', image, mnt]);
    this.mounts.push(mnt);
    return mnt;
  }

  /** A loopback port that is free now and not handed out before by this run. */
  async freePort(): Promise<number> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const port = PORT_MIN + Math.floor(Math.random() * PORT_SPAN);
      if (this.usedPorts.has(port)) continue;
      const free = await new Promise<boolean>((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(false));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
      });
      if (free) {
        this.usedPorts.add(port);
        return port;
      }
    }
    throw new Error('no free port found in 1000 attempts');
  }

  /** Starts a child and waits until `ready()` says it serves; fails (and stops it) otherwise. */
  async start(name: string, command: string, args: string[], o: StartOptions): Promise<Owned> {
    const log = openSync(o.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        stdio: ['ignore', log, log],
        env: o.env ?? process.env,
        cwd: o.cwd,
      });
    } finally {
      closeSync(log);
    }
    const pid = child.pid;
    if (pid === undefined) {
      await new Promise((r) => child.once('error', r));
      throw new Error(`${name}: could not start ${command}`);
    }
    const owned: Owned = { name, child, pid, logFile: o.logFile };
    this.children.set(pid, owned);
    child.once('exit', () => this.children.delete(pid));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${name} exited (${child.exitCode ?? child.signalCode}) before ready:\n${tail(o.logFile)}`,
        );
      }
      if (await o.ready().catch(() => false)) return owned;
      if (Date.now() > deadline) {
        await this.stop(owned);
        throw new Error(`${name} not ready in ${READY_TIMEOUT_MS} ms:\n${tail(o.logFile)}`);
      }
      await sleep(50);
    }
  }

  /** SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves once the process is gone. */
  async stop(p: Owned): Promise<void> {
    await this.signal(p, 'SIGTERM', STOP_GRACE_MS);
  }

  /** SIGKILL: what a crash looks like to the process. */
  async kill(p: Owned): Promise<void> {
    await this.signal(p, 'SIGKILL', STOP_GRACE_MS);
  }

  private async signal(p: Owned, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const c = p.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    const timer = setTimeout(() => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops every child this run started (by PID) and removes its temp directories. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.children.values()].map((p) => this.stop(p)));
    this.unmountAll();
    this.removeDirs();
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  private killAllNow(): void {
    for (const p of this.children.values()) {
      try {
        if (p.child.exitCode === null && p.child.signalCode === null) process.kill(p.pid, 'SIGKILL');
      } catch {}
    }
  }

  /** Unmounts syncDir() filesystems; lazily (-l) when still busy, e.g. a child just SIGKILLed. */
  private unmountAll(): void {
    for (const m of this.mounts.splice(0)) {
      if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['-l', m]);
    }
  }

  private removeDirs(): void {
    if (process.env['CAIRN_BENCH_KEEP'] === '1') {
      for (const d of this.dirs) console.error(`kept ${d}`);
      return;
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
  }
}

/** The last lines of a log file, for error messages. */
export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** True when `command` is on the PATH (or is an existing path). */
export function have(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the Debian packages providing `commands` are installed: when a command is
 * missing, runs `apt-get install -y` for its package (after one `apt-get update`).
 * Throws with what to do when that is not possible (not root, no apt-get).
 */
export function ensureDebianPackages(needs: { command: string; pkg: string }[]): void {
  const missing = needs.filter((n) => !have(n.command));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  if (!have('apt-get') || process.getuid?.() !== 0) {
    throw new Error(
      `missing ${missing.map((m) => m.command).join(', ')}: install ${pkgs.join(' ')} (Debian)`,
    );
  }
  console.log(`installing ${pkgs.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  // Debian's packages try to start their services on install; the service units are not
  // ours to run, and benchmarks start their own processes on their own ports.
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env,
  });
  const still = missing.filter((n) => !have(n.command));
  if (still.length > 0)
    throw new Error(`still missing after apt-get: ${still.map((s) => s.command).join(', ')}`);
}

/** The first line `command args` prints, without a leading "name:" or "name Version:" label; or 'unknown'. */
export function versionOf(command: string, args: string[]): string {
  try {
    const first = execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? 'unknown';
    return first.replace(/^[^:]*:\s*/, '');
  } catch {
    return 'unknown';
  }
}
