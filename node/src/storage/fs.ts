// The FileSystem seam (DESIGN §1): everything storage does to disk goes through these
// two interfaces, so the simulator and the crash tests can swap the real disk for the
// in-memory one in mem-fs.ts. The surface is deliberately small: the operations a
// log-structured store needs and whose durability rules are well understood.
//
// Durability rules every caller must follow (the in-memory file system enforces them):
// - `FileHandle.sync()` (fdatasync) makes the file's *contents* durable, not its name.
// - A create, rename or remove is durable only after `syncDir()` of its directory.
// - `rename()` within one directory atomically replaces the target.

/** Why a file-system operation failed. */
export type FsErrorCode =
  | 'NOT_FOUND'
  | 'EXISTS'
  | 'NOT_A_DIRECTORY'
  | 'IS_A_DIRECTORY'
  | 'NOT_EMPTY'
  /** The handle was closed. */
  | 'CLOSED'
  /** The (simulated) machine crashed: the operation did not happen, and handles opened before it are dead. */
  | 'CRASHED'
  /** A bad argument: negative position, rename across directories, a bad path. */
  | 'INVALID'
  /** Any other error from the operating system. */
  | 'IO';

export class FsError extends Error {
  override readonly name = 'FsError';
  constructor(
    readonly code: FsErrorCode,
    message: string,
    readonly path = '',
  ) {
    super(path ? `${message}: ${path}` : message);
  }
}

export interface OpenOptions {
  /** Create the file if it does not exist (its name is durable only after syncDir). */
  create?: boolean;
  /** With `create`: fail with EXISTS if the file exists. */
  exclusive?: boolean;
  /** Truncate the file to zero bytes on open. */
  truncate?: boolean;
  /**
   * O_DSYNC: each write returns only once its bytes (and the size needed to read them)
   * are durable, as if followed by sync(). Saves a separate fdatasync (and, in Node, a
   * second trip to the thread pool) when every write is followed by one anyway.
   */
  dsync?: boolean;
}

/** An open file, always readable and writable. Positions and lengths are in bytes. */
export interface FileHandle {
  readonly path: string;
  /** Reads up to `buf.length` bytes at `position`; returns how many were read (short at end of file, or on a short read). */
  read(buf: Uint8Array, position: number): Promise<number>;
  /** The synchronous form of `read`, for the Raft log reader (LogReader is synchronous). */
  readSync(buf: Uint8Array, position: number): number;
  /** Writes all of `data` (one buffer, or several back to back) at `position`; durable on return if opened with `dsync`. */
  write(data: Uint8Array | readonly Uint8Array[], position: number): Promise<void>;
  /** Writes all of `data` at the current end of the file; returns the position it was written at. */
  append(data: Uint8Array | readonly Uint8Array[]): Promise<number>;
  /** fdatasync: the contents written so far survive a crash. */
  sync(): Promise<void>;
  truncate(size: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface FileSystem {
  open(path: string, options?: OpenOptions): Promise<FileHandle>;
  /** Atomically renames within one directory, replacing `to` if it exists. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or an empty directory. */
  remove(path: string): Promise<void>;
  /** Names in a directory, sorted. */
  list(dir: string): Promise<string[]>;
  /** Creates a directory whose parent exists; succeeds if it already exists. */
  mkdir(path: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, removes) durable. */
  syncDir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

/** Refuses a position or size that is not a safe integer ≥ 0 (INVALID). */
export function checkPosition(path: string, position: number): void {
  if (!Number.isSafeInteger(position) || position < 0)
    throw new FsError('INVALID', `bad file position ${position}`, path);
}

/** One new buffer holding `data` (one buffer or several back to back): a copy the caller owns. */
export function copyBytes(data: Uint8Array | readonly Uint8Array[]): Uint8Array {
  if (data instanceof Uint8Array) return data.slice();
  const out = new Uint8Array(byteLength(data));
  let at = 0;
  for (const b of data) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Joins path parts with '/', the only separator storage uses. */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join('/');
}

export function dirName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * A buffer that is not zero-filled (every byte handed out is overwritten by a read; a
 * shorter result is trimmed). A plain Uint8Array over its own memory: not a Buffer
 * (whose slice() does not copy) and not a slice of Node's shared pool.
 */
function uninitialized(length: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer, b.byteOffset, length);
}

/**
 * Reads exactly `length` bytes at `position`, looping over short reads; returns fewer
 * only at end of file.
 */
export async function readFully(file: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = uninitialized(length);
  let done = 0;
  while (done < length) {
    const n = await file.read(buf.subarray(done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** The synchronous form of `readFully`. */
export function readFullySync(file: FileHandle, position: number, length: number): Uint8Array {
  const buf = uninitialized(length);
  let done = 0;
  while (done < length) {
    const n = file.readSync(buf.subarray(done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Reads a whole file; null if it does not exist. */
export async function readFile(fs: FileSystem, path: string): Promise<Uint8Array | null> {
  let file: FileHandle;
  try {
    file = await fs.open(path);
  } catch (e) {
    if (e instanceof FsError && e.code === 'NOT_FOUND') return null;
    throw e;
  }
  try {
    return await readFully(file, 0, await file.size());
  } finally {
    await file.close();
  }
}

/**
 * Reads a small whole-file record (hard state, manifest, damage record) and decodes it,
 * reading again while the decoder calls it corrupt, `attempts` reads in all: a read can
 * return flipped bits where the disk holds good ones, and a file judged corrupt makes the
 * node reset state and wait for repair. Null if the file does not exist.
 */
export async function readFileDecoded<T extends { kind: string }>(
  fs: FileSystem,
  path: string,
  attempts: number,
  decode: (bytes: Uint8Array) => T,
): Promise<T | null> {
  let result: T | null = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const bytes = await readFile(fs, path);
    if (bytes === null) return null;
    result = decode(bytes);
    if (result.kind !== 'corrupt') return result;
  }
  return result;
}

/**
 * Replaces `path` with `data` atomically and durably: write `path.tmp`, fdatasync,
 * rename over `path`, fsync the directory. A crash at any point leaves either the old
 * file or the new one whole (plus, perhaps, a stray `.tmp` that readers ignore).
 */
export async function writeFileAtomic(fs: FileSystem, path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await fs.open(tmp, { create: true, truncate: true });
  try {
    await file.write(data, 0);
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(tmp, path);
  await fs.syncDir(dirName(path));
}

/**
 * Creates `path` and any missing parents, each new directory's name made durable in its
 * parent (a new directory's name survives a power loss only once its parent is synced).
 */
export async function makeDirsDurable(fs: FileSystem, path: string): Promise<void> {
  if (path === '' || path === '.' || path === '/' || (await fs.exists(path))) return;
  const parent = dirName(path);
  await makeDirsDurable(fs, parent);
  await fs.mkdir(path);
  await fs.syncDir(parent);
}

/** Removes a file if it exists. */
export async function removeIfExists(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await fs.remove(path);
    return true;
  } catch (e) {
    if (e instanceof FsError && e.code === 'NOT_FOUND') return false;
    throw e;
  }
}

/**
 * Files a network or FUSE file system leaves in place of a removed file that some handle
 * still holds open (`.fuse_hidden*` from libfuse, `.nfs*` from NFS). They go away when the
 * last handle closes; until then the directory holding them cannot be removed, and removing
 * them again only renames them again (FUSE) or fails with EBUSY (NFS).
 */
export function isLingeringRemnant(name: string): boolean {
  return name.startsWith('.fuse_hidden') || name.startsWith('.nfs');
}

/**
 * Removes a directory and everything under it (depth first); no error if it is absent.
 * Lingering remnants of open files (isLingeringRemnant) are left alone, so a directory
 * holding one fails with NOT_EMPTY: cleanup that may meet one calls removeTreeIfPossible.
 */
export async function removeTree(fs: FileSystem, path: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.list(path);
  } catch (e) {
    if (e instanceof FsError && e.code === 'NOT_FOUND') return;
    if (e instanceof FsError && e.code === 'NOT_A_DIRECTORY') {
      await removeIfExists(fs, path);
      return;
    }
    throw e;
  }
  for (const name of names) if (!isLingeringRemnant(name)) await removeTree(fs, joinPath(path, name));
  await removeIfExists(fs, path);
}

/**
 * removeTree for cleanup of leftovers, which another handle may still hold open: false
 * when a directory could not be removed yet because something lingers in it (see
 * isLingeringRemnant). The caller logs that and tries again later; it is never fatal.
 * Every other error throws.
 */
export async function removeTreeIfPossible(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await removeTree(fs, path);
    return true;
  } catch (e) {
    if (e instanceof FsError && e.code === 'NOT_EMPTY') return false;
    throw e;
  }
}

/** Total byte length of one buffer or several. */
export function byteLength(data: Uint8Array | readonly Uint8Array[]): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const b of data) n += b.length;
  return n;
}
