// A FileSystem wrapper with the remove semantics of FUSE (libfuse without `hard_remove`)
// and NFS: removing a file that some handle still holds open does not unlink it but
// renames it to a hidden `.fuse_hidden<n>` in the same directory, which goes away when
// the last handle closes. Until then the directory cannot be removed (NOT_EMPTY), and
// removing the hidden file again only renames it again. Tests and the simulator wrap
// another file system (usually MemFileSystem) in it to run the code that cleans up
// directories the way it runs on those file systems.
import { dirName, type FileHandle, type FileSystem, joinPath, type OpenOptions } from './fs.js';

export class RemnantFileSystem implements FileSystem {
  /** Open handles per path (a rename moves the count with the file). */
  private readonly openCount = new Map<string, number>();
  /** Hidden remnants, by their current path, removed when their last handle closes. */
  private readonly hidden = new Set<string>();
  private nextHidden = 0;
  /** Where each open handle's file is now. */
  private readonly handles = new Set<{ path: string }>();

  constructor(private readonly inner: FileSystem) {}

  /** The remnants that exist now (paths). */
  remnants(): string[] {
    return [...this.hidden].sort();
  }

  async open(path: string, options?: OpenOptions): Promise<FileHandle> {
    const file = await this.inner.open(path, options);
    this.openCount.set(path, (this.openCount.get(path) ?? 0) + 1);
    // The handle follows its file through renames (a remnant is a rename).
    const where = { path };
    this.handles.add(where);
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await file.close();
      this.handles.delete(where);
      const left = (this.openCount.get(where.path) ?? 1) - 1;
      if (left > 0) {
        this.openCount.set(where.path, left);
        return;
      }
      this.openCount.delete(where.path);
      if (this.hidden.delete(where.path)) await this.inner.remove(where.path);
    };
    return {
      get path() {
        return file.path;
      },
      read: (buf, position) => file.read(buf, position),
      readSync: (buf, position) => file.readSync(buf, position),
      write: (data, position) => file.write(data, position),
      append: (data) => file.append(data),
      sync: () => file.sync(),
      truncate: (size) => file.truncate(size),
      size: () => file.size(),
      close,
    };
  }

  private moveOpen(from: string, to: string): void {
    const n = this.openCount.get(from);
    if (n === undefined) return;
    this.openCount.delete(from);
    this.openCount.set(to, n);
    for (const h of this.handles) if (h.path === from) h.path = to;
    if (this.hidden.delete(from)) this.hidden.add(to);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.inner.rename(from, to);
    // Open files under a renamed directory move with it.
    for (const p of [...this.openCount.keys()]) {
      if (p === from) this.moveOpen(p, to);
      else if (p.startsWith(`${from}/`)) this.moveOpen(p, to + p.slice(from.length));
    }
  }

  async remove(path: string): Promise<void> {
    if ((this.openCount.get(path) ?? 0) === 0) {
      await this.inner.remove(path);
      return;
    }
    const remnant = joinPath(dirName(path), `.fuse_hidden${String(this.nextHidden++).padStart(16, '0')}`);
    await this.inner.rename(path, remnant);
    this.moveOpen(path, remnant);
    this.hidden.add(remnant);
  }

  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }

  mkdir(path: string): Promise<void> {
    return this.inner.mkdir(path);
  }

  syncDir(path: string): Promise<void> {
    return this.inner.syncDir(path);
  }

  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
}
