// A node's disk: node/storage's in-memory file system (its crash semantics are the
// storage helper's, see mem-fs.ts) with latencies on virtual time, and a guard per
// process: a process that died cannot touch the disk again, and operations it had in
// flight never complete (their completion events die with it).
//
//   process crash (kill -9)   the disk keeps everything written, synced or not
//   power loss                unsynced writes are lost, torn or reordered (crash(mode))
//   wipe                      a new, empty disk
import {
  type CrashMode,
  type FileHandle,
  type FileSystem,
  FsError,
  type FsOpInfo,
  MemFileSystem,
  type OpenOptions,
} from '../../node/src/storage/index.js';
import type { Incarnation } from './incarnation.js';
import type { SimRandom } from './random.js';
import type { Scheduler } from './scheduler.js';
import { DISK_OPS, EventKind } from './trace.js';

/** How long disk operations take on a node (µs). */
export interface DiskProfile {
  /** fdatasync and directory fsync. */
  syncUs: number;
  /** Uniform extra in [0, syncJitterUs). */
  syncJitterUs: number;
  /** Writes, truncates, creates, renames, removes. */
  writeUs: number;
  /** Probability that an fsync stalls for an extra [0, stallUs). */
  stallP: number;
  stallUs: number;
}

/** The trace's number for each disk operation (trace.ts DISK_OPS names them). */
const opCode = Object.fromEntries(
  DISK_OPS.map((name, i) => [name === 'fsync' ? 'sync' : name === 'fsync dir' ? 'syncDir' : name, i]),
) as Record<FsOpInfo['kind'], number>;

export class SimDisk {
  fs: MemFileSystem;
  /** The process allowed to use the disk now (null while the node is down). */
  private owner: Incarnation | null = null;
  syncs = 0;
  wipes = 0;
  powerLosses = 0;

  constructor(
    readonly nodeId: number,
    private readonly sched: Scheduler,
    private readonly rng: SimRandom,
    readonly profile: DiskProfile,
  ) {
    this.fs = this.newFs();
  }

  private newFs(): MemFileSystem {
    return new MemFileSystem({ prng: this.rng, delay: (op) => this.delay(op) });
  }

  /** Called synchronously by the file system as each operation starts (see MemFsOptions.delay). */
  private delay(op: FsOpInfo): Promise<void> | undefined {
    const inc = this.owner;
    if (inc === null) return undefined;
    const p = this.profile;
    let us: number;
    switch (op.kind) {
      case 'sync':
      case 'syncDir':
        this.syncs++;
        us = p.syncUs + this.rng.next() * p.syncJitterUs;
        if (this.rng.chance(p.stallP)) us += this.rng.next() * p.stallUs;
        break;
      case 'write':
      case 'truncate':
      case 'create':
      case 'rename':
      case 'remove':
      case 'mkdir':
        us = p.writeUs;
        break;
      default:
        return undefined; // reads and lookups come from the page cache: at once
    }
    return new Promise<void>((resolve) => {
      this.sched.after(us, resolve, inc, EventKind.disk, opCode[op.kind]);
    });
  }

  /** The file system a process sees: usable only while that process is alive. */
  attach(inc: Incarnation): FileSystem {
    this.owner = inc;
    return new GuardedFs(this.fs, inc);
  }

  /** The process died: it no longer owns the disk (the disk itself keeps what it was handed). */
  detach(inc: Incarnation): void {
    if (this.owner === inc) this.owner = null;
  }

  /** Power loss: what was not synced is lost, torn or reordered. */
  powerLoss(mode: CrashMode): void {
    this.powerLosses++;
    this.fs.crash(mode);
  }

  /** A new, empty disk (the node must rejoin). */
  wipe(): void {
    this.wipes++;
    this.fs = this.newFs();
  }
}

/** Refuses every operation once its process is dead (CRASHED), so no dead code reaches the disk. */
class GuardedFs implements FileSystem {
  constructor(
    private readonly fs: FileSystem,
    private readonly inc: Incarnation,
  ) {}

  private check(path: string): void {
    if (!this.inc.alive) throw new FsError('CRASHED', 'the process is dead', path);
  }

  async open(path: string, options?: OpenOptions): Promise<FileHandle> {
    this.check(path);
    return new GuardedFile(await this.fs.open(path, options), this.inc);
  }
  async rename(from: string, to: string): Promise<void> {
    this.check(from);
    return this.fs.rename(from, to);
  }
  async remove(path: string): Promise<void> {
    this.check(path);
    return this.fs.remove(path);
  }
  async list(dir: string): Promise<string[]> {
    this.check(dir);
    return this.fs.list(dir);
  }
  async mkdir(path: string): Promise<void> {
    this.check(path);
    return this.fs.mkdir(path);
  }
  async syncDir(path: string): Promise<void> {
    this.check(path);
    return this.fs.syncDir(path);
  }
  async exists(path: string): Promise<boolean> {
    this.check(path);
    return this.fs.exists(path);
  }
}

class GuardedFile implements FileHandle {
  constructor(
    private readonly file: FileHandle,
    private readonly inc: Incarnation,
  ) {}
  get path(): string {
    return this.file.path;
  }
  private check(): void {
    if (!this.inc.alive) throw new FsError('CRASHED', 'the process is dead', this.file.path);
  }
  async read(buf: Uint8Array, position: number): Promise<number> {
    this.check();
    return this.file.read(buf, position);
  }
  readSync(buf: Uint8Array, position: number): number {
    this.check();
    return this.file.readSync(buf, position);
  }
  async write(data: Uint8Array | readonly Uint8Array[], position: number): Promise<void> {
    this.check();
    return this.file.write(data, position);
  }
  async append(data: Uint8Array | readonly Uint8Array[]): Promise<number> {
    this.check();
    return this.file.append(data);
  }
  async sync(): Promise<void> {
    this.check();
    return this.file.sync();
  }
  async truncate(size: number): Promise<void> {
    this.check();
    return this.file.truncate(size);
  }
  async size(): Promise<number> {
    this.check();
    return this.file.size();
  }
  async close(): Promise<void> {
    return this.file.close();
  }
}
