// A FileSystem over the real disk that keeps every write in the process's memory until
// the file is fsynced, for tests of real `cairn serve` processes: a SIGKILL of such a
// process loses exactly what a power loss would lose of file contents — every write and
// truncate not followed by sync() — and keeps what was synced. It is test-only (the
// `--unsafe-lose-unsynced-writes` setting of `cairn serve`): nothing of it is faster or
// safer than NodeFileSystem.
//
// What it models, and what it does not:
// - File contents: pending writes and truncates live in memory per file (shared by every
//   handle of it, and following it through renames); reads see them on top of the disk;
//   sync() writes them to the disk in order and fdatasyncs. A handle opened with `dsync`
//   makes each write durable on return, as O_DSYNC does.
// - Names (create, rename, remove, mkdir) reach the disk at once, as if the file system
//   journaled every metadata change before the power went. That is one outcome a real
//   power loss may have (the one seen on ext4: a renamed file whose contents never
//   reached the disk, zero bytes long). The other outcomes, names lost or reordered, are
//   what MemFileSystem's crash modes cover in the storage tests and the simulator.
import {
  checkPosition,
  copyBytes,
  type FileHandle,
  type FileSystem,
  FsError,
  type OpenOptions,
} from './fs.js';
import { NodeFileSystem } from './node-fs.js';

type Pending = { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; size: number };

/** One file's unsynced state, shared by its handles. */
class Inode {
  /** Changes not yet on the disk, oldest first. */
  pending: Pending[] = [];
  /** Serializes flushes. */
  flushing: Promise<void> = Promise.resolve();
  open = 0;
  constructor(
    public path: string,
    /** The size every handle sees: the disk's plus the pending changes. */
    public size: number,
  ) {}
}

export class LoseUnsyncedFileSystem implements FileSystem {
  private readonly disk = new NodeFileSystem();
  /** Inodes with open handles, by current path. */
  private readonly inodes = new Map<string, Inode>();

  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    // O_TRUNC is a change like any other: pending until synced.
    const real = await this.disk.open(path, { ...options, truncate: false, dsync: false });
    let inode = this.inodes.get(path);
    if (inode === undefined) {
      const size = await real.size();
      // Another open of the same file may have made its inode meanwhile.
      inode = this.inodes.get(path) ?? new Inode(path, size);
      this.inodes.set(path, inode);
    }
    inode.open++;
    if (options.truncate) {
      inode.pending.push({ kind: 'truncate', size: 0 });
      inode.size = 0;
    }
    return new LazyFile(this, inode, real, options.dsync === true);
  }

  /** @internal Writes an inode's pending changes to the disk, in order, then fdatasyncs. */
  flush(inode: Inode, real: FileHandle): Promise<void> {
    const run = inode.flushing.then(async () => {
      const batch = inode.pending.slice();
      for (const op of batch) {
        if (op.kind === 'write') await real.write(op.bytes, op.position);
        else await real.truncate(op.size);
      }
      await real.sync();
      // Reads replay the pending list over the disk, so a change may stay listed while it
      // is written (replaying it again gives the same bytes); it goes once it is durable.
      inode.pending.splice(0, batch.length);
    });
    inode.flushing = run.catch(() => {});
    return run;
  }

  /** @internal */
  closed(inode: Inode): void {
    inode.open--;
    // A file no handle holds is forgotten once nothing of it is pending (the next open reads
    // the disk). With changes pending it stays, as the page cache keeps them, so a reopen
    // still sees them.
    if (inode.open === 0 && inode.pending.length === 0 && this.inodes.get(inode.path) === inode)
      this.inodes.delete(inode.path);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.disk.rename(from, to);
    const moved: [string, Inode][] = [];
    for (const [p, inode] of this.inodes) {
      if (p === from || p.startsWith(`${from}/`)) moved.push([p, inode]);
      else if (p === to || p.startsWith(`${to}/`)) this.inodes.delete(p); // replaced
    }
    for (const [p, inode] of moved) {
      this.inodes.delete(p);
      inode.path = to + p.slice(from.length);
      this.inodes.set(inode.path, inode);
    }
  }

  async remove(path: string): Promise<void> {
    await this.disk.remove(path);
    // Open handles keep reading and writing the unlinked file, as on a real system.
    this.inodes.delete(path);
  }

  list(dir: string): Promise<string[]> {
    return this.disk.list(dir);
  }

  mkdir(path: string): Promise<void> {
    return this.disk.mkdir(path);
  }

  syncDir(path: string): Promise<void> {
    return this.disk.syncDir(path);
  }

  exists(path: string): Promise<boolean> {
    return this.disk.exists(path);
  }
}

class LazyFile implements FileHandle {
  private isClosed = false;

  constructor(
    private readonly owner: LoseUnsyncedFileSystem,
    private readonly inode: Inode,
    private readonly real: FileHandle,
    private readonly dsync: boolean,
  ) {}

  get path(): string {
    return this.inode.path;
  }

  /** The disk's bytes in [position, position + buf.length), then every pending change over them. */
  private overlay(buf: Uint8Array, position: number, fromDisk: number): number {
    buf.fill(0, fromDisk);
    const end = position + buf.length;
    for (const op of this.inode.pending) {
      if (op.kind === 'write') {
        const from = Math.max(position, op.position);
        const to = Math.min(end, op.position + op.bytes.length);
        if (from < to) buf.set(op.bytes.subarray(from - op.position, to - op.position), from - position);
      } else if (op.size < end) {
        buf.fill(0, Math.max(0, op.size - position));
      }
    }
    return Math.max(0, Math.min(buf.length, this.inode.size - position));
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    this.live();
    if (this.inode.pending.length === 0) return this.real.read(buf, position);
    let got = 0;
    while (got < buf.length) {
      const n = await this.real.read(buf.subarray(got), position + got);
      if (n === 0) break;
      got += n;
    }
    return this.overlay(buf, position, got);
  }

  readSync(buf: Uint8Array, position: number): number {
    this.live();
    if (this.inode.pending.length === 0) return this.real.readSync(buf, position);
    let got = 0;
    while (got < buf.length) {
      const n = this.real.readSync(buf.subarray(got), position + got);
      if (n === 0) break;
      got += n;
    }
    return this.overlay(buf, position, got);
  }

  private live(): void {
    if (this.isClosed) throw new FsError('CLOSED', 'file is closed', this.path);
  }

  async write(data: Uint8Array | readonly Uint8Array[], position: number): Promise<void> {
    this.live();
    checkPosition(this.path, position);
    const bytes = copyBytes(data);
    this.inode.pending.push({ kind: 'write', position, bytes });
    this.inode.size = Math.max(this.inode.size, position + bytes.length);
    if (this.dsync) await this.owner.flush(this.inode, this.real);
  }

  async append(data: Uint8Array | readonly Uint8Array[]): Promise<number> {
    const at = this.inode.size;
    await this.write(data, at);
    return at;
  }

  async sync(): Promise<void> {
    this.live();
    await this.owner.flush(this.inode, this.real);
  }

  async truncate(size: number): Promise<void> {
    this.live();
    checkPosition(this.path, size);
    this.inode.pending.push({ kind: 'truncate', size });
    this.inode.size = size;
    if (this.dsync) await this.owner.flush(this.inode, this.real);
  }

  async size(): Promise<number> {
    this.live();
    return this.inode.size;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this.real.close();
    this.owner.closed(this.inode);
  }
}
