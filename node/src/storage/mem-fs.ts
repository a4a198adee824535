// An in-memory FileSystem with crash semantics, shared by the storage tests and the
// simulator. It keeps, for every file and directory, what is durable apart from what
// is merely written, and `crash(mode)` throws away what was not made durable:
//
//   file contents   written  ──sync()──▶  durable
//   directory names created/renamed/removed  ──syncDir()──▶  durable
//
// Pending (unsynced) changes are kept as an undo log: each pending operation records the
// bytes it overwrote, so sync() is O(1) and a crash rolls the pending operations back,
// then replays the subset that the crash mode lets survive:
//
//   'lose'     every unsynced write, truncate and directory change is lost;
//   'torn'     per file, the pending operations up to a random cut survive and the write
//              at the cut survives as a random prefix (a torn write); per directory, a
//              random prefix of the pending changes survives (metadata is journaled in order);
//   'reorder'  per file, a random subset of the pending operations survives, in order;
//              per directory, a random prefix as in 'torn'.
//
// Everything random comes from the Prng passed in, so a seed reproduces a run. Faults
// at rest (bit rot, lost tails) and on reads (bit flips, short reads) can be injected.
// `armCrash(step)` stops the machine just before its step-th mutating operation, which is
// how the tests enumerate every crash point of a workload.
import {
  checkPosition,
  copyBytes,
  type FileHandle,
  type FileSystem,
  FsError,
  type OpenOptions,
} from './fs.js';
import { chance, type Prng, randomInt } from './prng.js';

export type CrashMode = 'lose' | 'torn' | 'reorder';
export const CRASH_MODES: readonly CrashMode[] = ['lose', 'torn', 'reorder'];

export type FsOpKind =
  | 'open'
  | 'create'
  | 'read'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'size'
  | 'close'
  | 'rename'
  | 'remove'
  | 'list'
  | 'mkdir'
  | 'syncDir'
  | 'exists';

/** Describes one operation, for the delay hook and step observers. */
export interface FsOpInfo {
  kind: FsOpKind;
  path: string;
  /** Bytes read or written, when the operation moves data. */
  bytes?: number;
}

export interface ReadFaults {
  /** Probability that a read returns one flipped bit (the stored bytes are unharmed). */
  bitFlipProbability?: number;
  /** Probability that a read returns fewer bytes than asked (at least one). */
  shortReadProbability?: number;
  /** Only reads of paths passing this filter are faulted (default: all). */
  paths?: (path: string) => boolean;
}

export interface MemFsOptions {
  prng: Prng;
  /**
   * Called as each asynchronous operation starts; the operation takes effect when the
   * returned promise resolves (the simulator resolves it on its virtual clock). No
   * timers are used inside; without a hook, operations take effect at once.
   */
  delay?: (op: FsOpInfo) => Promise<void> | undefined;
  /** Called for each mutating operation, with its 0-based step number. */
  onStep?: (step: number, op: FsOpInfo) => void;
}

type DataOp =
  | { kind: 'write'; position: number; bytes: Uint8Array; undoSize: number; undoBytes: Uint8Array }
  | { kind: 'truncate'; size: number; undoSize: number; undoBytes: Uint8Array };

class Inode {
  data = new Uint8Array(64);
  size = 0;
  /** Unsynced operations, oldest first. Invariant: rolling them back in reverse yields the durable content. */
  pending: DataOp[] = [];

  /** Grows or shrinks the logical size; bytes beyond the old size read as zeros. */
  setSize(n: number): void {
    if (n > this.data.length) {
      const grown = new Uint8Array(Math.max(n, this.data.length * 2));
      grown.set(this.data.subarray(0, this.size));
      this.data = grown;
    } else if (n > this.size) {
      this.data.fill(0, this.size, n);
    }
    this.size = n;
  }

  writeAt(position: number, bytes: Uint8Array): void {
    const end = position + bytes.length;
    if (end > this.size) this.setSize(end);
    this.data.set(bytes, position);
  }

  content(): Uint8Array {
    return this.data.slice(0, this.size);
  }
}

type DirOp =
  | { kind: 'set'; name: string; node: Node; prev: Node | undefined }
  | { kind: 'delete'; name: string; prev: Node }
  | { kind: 'rename'; from: string; to: string; node: Node; prevTo: Node | undefined };

class Dir {
  entries = new Map<string, Node>();
  /** Unsynced changes, oldest first. Invariant: undoing them in reverse yields the durable entries. */
  pending: DirOp[] = [];
}

type Node = Inode | Dir;

function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p.length > 0 && p !== '.');
  if (parts.some((p) => p === '..')) throw new FsError('INVALID', "'..' is not supported", path);
  return parts;
}

export class MemFileSystem implements FileSystem {
  private readonly root = new Dir();
  private readonly prng: Prng;
  private readonly delay: MemFsOptions['delay'];
  private readonly onStep: MemFsOptions['onStep'];
  private readonly dirtyInodes = new Set<Inode>();
  private readonly dirtyDirs = new Set<Dir>();
  private readFaults: ReadFaults | null = null;
  /** Incremented by each crash; handles from an older epoch are dead. */
  private epoch = 0;
  private stepCount = 0;
  private crashAtStep = -1;
  private frozen = false;

  constructor(options: MemFsOptions) {
    this.prng = options.prng;
    this.delay = options.delay;
    this.onStep = options.onStep;
  }

  // ---- fault control --------------------------------------------------------------

  /** Mutating operations performed so far (writes, syncs, truncates, creates, renames, removes, mkdirs, syncDirs). */
  get steps(): number {
    return this.stepCount;
  }

  /** True once an armed crash point was reached: every operation fails until `crash()`. */
  get isFrozen(): boolean {
    return this.frozen;
  }

  /** Stops the machine just before mutating step `step` (0-based): that operation and all later ones fail with CRASHED. */
  armCrash(step: number): void {
    this.crashAtStep = step;
  }

  /**
   * Simulates power loss: unsynced changes are lost, torn or reordered per `mode`, open
   * handles die, and the file system is usable again (as after a reboot).
   */
  crash(mode: CrashMode): void {
    for (const inode of this.dirtyInodes) this.crashInode(inode, mode);
    for (const dir of this.dirtyDirs) this.crashDir(dir, mode);
    this.dirtyInodes.clear();
    this.dirtyDirs.clear();
    this.epoch++;
    this.frozen = false;
    this.crashAtStep = -1;
  }

  setReadFaults(faults: ReadFaults | null): void {
    this.readFaults = faults;
  }

  /** Bit rot: XORs a stored byte (durably). The file must have no unsynced writes. */
  corruptByte(path: string, position: number, xorMask = 0x01): void {
    const inode = this.inodeAt(path);
    if (inode.pending.length > 0) throw new FsError('INVALID', 'file has unsynced writes', path);
    if (position < 0 || position >= inode.size)
      throw new FsError('INVALID', `position ${position} outside file`, path);
    inode.data[position]! ^= xorMask;
  }

  /** A lost tail at rest: shortens a file durably. The file must have no unsynced writes. */
  truncateAtRest(path: string, size: number): void {
    const inode = this.inodeAt(path);
    if (inode.pending.length > 0) throw new FsError('INVALID', 'file has unsynced writes', path);
    if (size < inode.size) inode.setSize(size);
  }

  /** The current bytes of a file (including unsynced writes), copied. */
  fileBytes(path: string): Uint8Array {
    return this.inodeAt(path).content();
  }

  /** Every file path under `dir`, sorted (for tests and debugging). */
  walk(dir = ''): string[] {
    const out: string[] = [];
    const visit = (d: Dir, prefix: string): void => {
      for (const [name, node] of [...d.entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const p = prefix ? `${prefix}/${name}` : name;
        if (node instanceof Dir) visit(node, p);
        else out.push(p);
      }
    };
    const start = this.lookup(splitPath(dir));
    if (start instanceof Dir) visit(start, splitPath(dir).join('/'));
    return out;
  }

  // ---- FileSystem ------------------------------------------------------------------

  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    const mutates = options.create === true || options.truncate === true;
    const epoch = await this.begin({ kind: mutates ? 'create' : 'open', path }, mutates);
    const { dir, name } = this.parentOf(path);
    let node = dir.entries.get(name);
    if (node instanceof Dir) throw new FsError('IS_A_DIRECTORY', 'cannot open a directory as a file', path);
    if (node && options.create && options.exclusive) throw new FsError('EXISTS', 'file exists', path);
    if (!node) {
      if (!options.create) throw new FsError('NOT_FOUND', 'no such file', path);
      node = new Inode();
      this.dirChange(dir, { kind: 'set', name, node, prev: undefined });
    }
    if (options.truncate && node.size > 0) this.dataChange(node, { kind: 'truncate', size: 0 });
    return new MemFile(this, path, node, epoch, options.dsync === true);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.begin({ kind: 'rename', path: from }, true);
    const src = this.parentOf(from);
    const dst = this.parentOf(to);
    if (src.dir !== dst.dir) throw new FsError('INVALID', `rename across directories to ${to}`, from);
    const node = src.dir.entries.get(src.name);
    if (!node) throw new FsError('NOT_FOUND', 'no such file', from);
    if (src.name === dst.name) return;
    const prevTo = src.dir.entries.get(dst.name);
    if (prevTo instanceof Dir && !(node instanceof Dir))
      throw new FsError('IS_A_DIRECTORY', 'target is a directory', to);
    if (prevTo instanceof Dir && prevTo.entries.size > 0)
      throw new FsError('NOT_EMPTY', 'target not empty', to);
    this.dirChange(src.dir, { kind: 'rename', from: src.name, to: dst.name, node, prevTo });
  }

  async remove(path: string): Promise<void> {
    await this.begin({ kind: 'remove', path }, true);
    const { dir, name } = this.parentOf(path);
    const node = dir.entries.get(name);
    if (!node) throw new FsError('NOT_FOUND', 'no such file', path);
    if (node instanceof Dir && node.entries.size > 0)
      throw new FsError('NOT_EMPTY', 'directory not empty', path);
    this.dirChange(dir, { kind: 'delete', name, prev: node });
  }

  async list(dir: string): Promise<string[]> {
    await this.begin({ kind: 'list', path: dir }, false);
    return [...this.dirAt(dir).entries.keys()].sort();
  }

  async mkdir(path: string): Promise<void> {
    const { dir, name } = this.parentOf(path);
    const existing = dir.entries.get(name);
    await this.begin({ kind: 'mkdir', path }, existing === undefined);
    const now = dir.entries.get(name);
    if (now instanceof Dir) return;
    if (now) throw new FsError('EXISTS', 'a file has that name', path);
    this.dirChange(dir, { kind: 'set', name, node: new Dir(), prev: undefined });
  }

  async syncDir(path: string): Promise<void> {
    await this.begin({ kind: 'syncDir', path }, true);
    const dir = this.dirAt(path);
    dir.pending = [];
    this.dirtyDirs.delete(dir);
  }

  async exists(path: string): Promise<boolean> {
    await this.begin({ kind: 'exists', path }, false);
    return this.lookup(splitPath(path)) !== undefined;
  }

  // ---- used by MemFile -------------------------------------------------------------

  /** Starts an operation: counts crash steps, waits for the delay hook, checks the machine is up. */
  async begin(op: FsOpInfo, mutating: boolean, handleEpoch = this.epoch): Promise<number> {
    this.checkUp(op.path, handleEpoch);
    if (mutating) {
      if (this.stepCount === this.crashAtStep) this.frozen = true;
      this.checkUp(op.path, handleEpoch);
      this.onStep?.(this.stepCount, op);
      this.stepCount++;
    }
    const wait = this.delay?.(op);
    if (wait) {
      await wait;
      this.checkUp(op.path, handleEpoch);
    }
    return this.epoch;
  }

  /** The synchronous form of `begin` for readSync (no delay: the simulator's reads are instant). */
  beginSync(path: string, handleEpoch: number): void {
    this.checkUp(path, handleEpoch);
  }

  private checkUp(path: string, handleEpoch: number): void {
    if (this.frozen) throw new FsError('CRASHED', 'the machine crashed', path);
    if (handleEpoch !== this.epoch) throw new FsError('CRASHED', 'handle opened before a crash', path);
  }

  dataChange(
    inode: Inode,
    op: { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; size: number },
  ): void {
    const undoSize = inode.size;
    if (op.kind === 'write') {
      const overlapEnd = Math.min(undoSize, op.position + op.bytes.length);
      const undoBytes =
        op.position < overlapEnd ? inode.data.slice(op.position, overlapEnd) : new Uint8Array(0);
      inode.writeAt(op.position, op.bytes);
      inode.pending.push({ ...op, undoSize, undoBytes });
    } else {
      const undoBytes = op.size < undoSize ? inode.data.slice(op.size, undoSize) : new Uint8Array(0);
      inode.setSize(op.size);
      inode.pending.push({ ...op, undoSize, undoBytes });
    }
    this.dirtyInodes.add(inode);
  }

  syncData(inode: Inode): void {
    inode.pending = [];
    this.dirtyInodes.delete(inode);
  }

  applyReadFaults(path: string, buf: Uint8Array, n: number): number {
    const f = this.readFaults;
    if (!f || n === 0 || (f.paths && !f.paths(path))) return n;
    if (f.shortReadProbability && n > 1 && chance(this.prng, f.shortReadProbability))
      n = 1 + randomInt(this.prng, n - 1);
    if (f.bitFlipProbability && chance(this.prng, f.bitFlipProbability)) {
      buf[randomInt(this.prng, n)]! ^= 1 << randomInt(this.prng, 8);
    }
    return n;
  }

  // ---- crash -----------------------------------------------------------------------

  private crashInode(inode: Inode, mode: CrashMode): void {
    const ops = inode.pending;
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i]!;
      // Restore the size first, then the overwritten bytes (they lie below undoSize).
      inode.setSize(op.undoSize);
      if (op.kind === 'write') inode.data.set(op.undoBytes, op.position);
      else inode.data.set(op.undoBytes, op.size);
    }
    inode.pending = [];
    const replay = (op: DataOp, prefix = -1): void => {
      if (op.kind === 'write')
        inode.writeAt(op.position, prefix < 0 ? op.bytes : op.bytes.subarray(0, prefix));
      else inode.setSize(op.size);
    };
    switch (mode) {
      case 'lose':
        break;
      case 'torn': {
        const cut = randomInt(this.prng, ops.length + 1);
        for (let i = 0; i < cut; i++) replay(ops[i]!);
        const torn = ops[cut];
        if (torn?.kind === 'write' && torn.bytes.length > 0)
          replay(torn, randomInt(this.prng, torn.bytes.length));
        break;
      }
      case 'reorder':
        for (const op of ops) if (chance(this.prng, 0.5)) replay(op);
        break;
    }
  }

  private crashDir(dir: Dir, mode: CrashMode): void {
    const ops = dir.pending;
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i]!;
      switch (op.kind) {
        case 'set':
          if (op.prev) dir.entries.set(op.name, op.prev);
          else dir.entries.delete(op.name);
          break;
        case 'delete':
          dir.entries.set(op.name, op.prev);
          break;
        case 'rename':
          dir.entries.set(op.from, op.node);
          if (op.prevTo) dir.entries.set(op.to, op.prevTo);
          else dir.entries.delete(op.to);
          break;
      }
    }
    dir.pending = [];
    const survivors = mode === 'lose' ? 0 : randomInt(this.prng, ops.length + 1);
    for (let i = 0; i < survivors; i++) {
      const op = ops[i]!;
      switch (op.kind) {
        case 'set':
          dir.entries.set(op.name, op.node);
          break;
        case 'delete':
          dir.entries.delete(op.name);
          break;
        case 'rename':
          dir.entries.delete(op.from);
          dir.entries.set(op.to, op.node);
          break;
      }
    }
  }

  // ---- paths -----------------------------------------------------------------------

  private dirChange(dir: Dir, op: DirOp): void {
    switch (op.kind) {
      case 'set':
        dir.entries.set(op.name, op.node);
        break;
      case 'delete':
        dir.entries.delete(op.name);
        break;
      case 'rename':
        dir.entries.delete(op.from);
        dir.entries.set(op.to, op.node);
        break;
    }
    dir.pending.push(op);
    this.dirtyDirs.add(dir);
  }

  private lookup(parts: string[]): Node | undefined {
    let node: Node = this.root;
    for (const part of parts) {
      if (!(node instanceof Dir)) return undefined;
      const next: Node | undefined = node.entries.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  private dirAt(path: string): Dir {
    const node = this.lookup(splitPath(path));
    if (!node) throw new FsError('NOT_FOUND', 'no such directory', path);
    if (!(node instanceof Dir)) throw new FsError('NOT_A_DIRECTORY', 'not a directory', path);
    return node;
  }

  private inodeAt(path: string): Inode {
    const node = this.lookup(splitPath(path));
    if (!node) throw new FsError('NOT_FOUND', 'no such file', path);
    if (node instanceof Dir) throw new FsError('IS_A_DIRECTORY', 'is a directory', path);
    return node;
  }

  private parentOf(path: string): { dir: Dir; name: string } {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw new FsError('INVALID', 'path names the root', path);
    const parent = this.lookup(parts);
    if (!parent) throw new FsError('NOT_FOUND', 'no such directory', path);
    if (!(parent instanceof Dir)) throw new FsError('NOT_A_DIRECTORY', 'parent is not a directory', path);
    return { dir: parent, name };
  }
}

class MemFile implements FileHandle {
  private closed = false;
  constructor(
    private readonly fs: MemFileSystem,
    readonly path: string,
    private readonly inode: Inode,
    private readonly epoch: number,
    /** O_DSYNC: a write is two steps, the write and then its sync (a crash between them can tear it). */
    private readonly dsync: boolean,
  ) {}

  private live(): void {
    if (this.closed) throw new FsError('CLOSED', 'file is closed', this.path);
  }

  private async begin(kind: FsOpKind, mutating: boolean, bytes?: number): Promise<void> {
    this.live();
    await this.fs.begin(
      { kind, path: this.path, ...(bytes === undefined ? {} : { bytes }) },
      mutating,
      this.epoch,
    );
    this.live();
  }

  private readNow(buf: Uint8Array, position: number): number {
    const n = Math.max(0, Math.min(buf.length, this.inode.size - position));
    buf.set(this.inode.data.subarray(position, position + n));
    return this.fs.applyReadFaults(this.path, buf, n);
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    checkPosition(this.path, position);
    await this.begin('read', false, buf.length);
    return this.readNow(buf, position);
  }

  readSync(buf: Uint8Array, position: number): number {
    this.live();
    checkPosition(this.path, position);
    this.fs.beginSync(this.path, this.epoch);
    return this.readNow(buf, position);
  }

  async write(data: Uint8Array | readonly Uint8Array[], position: number): Promise<void> {
    checkPosition(this.path, position);
    // Copy now: the caller may reuse its buffers once the promise is pending.
    const bytes = copyBytes(data);
    await this.begin('write', true, bytes.length);
    this.fs.dataChange(this.inode, { kind: 'write', position, bytes });
    if (this.dsync) await this.sync();
  }

  async append(data: Uint8Array | readonly Uint8Array[]): Promise<number> {
    const bytes = copyBytes(data);
    await this.begin('write', true, bytes.length);
    const position = this.inode.size;
    this.fs.dataChange(this.inode, { kind: 'write', position, bytes });
    if (this.dsync) await this.sync();
    return position;
  }

  async sync(): Promise<void> {
    await this.begin('sync', true);
    this.fs.syncData(this.inode);
  }

  async truncate(size: number): Promise<void> {
    checkPosition(this.path, size);
    await this.begin('truncate', true);
    this.fs.dataChange(this.inode, { kind: 'truncate', size });
  }

  async size(): Promise<number> {
    await this.begin('size', false);
    return this.inode.size;
  }

  async close(): Promise<void> {
    // Closing after a crash is harmless: there is nothing left to release.
    this.closed = true;
  }
}
