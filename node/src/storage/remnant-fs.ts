// A FileSystem wrapper with the remove semantics of FUSE (libfuse without `hard_remove`)
// and NFS: removing a file that some handle still holds open does not unlink it but
// renames it to a hidden `.fuse_hidden<n>` in the same directory, which goes away when
// the last handle closes. Until then the directory cannot be removed (NOT_EMPTY), and
// removing the hidden file again only renames it again. Tests and the simulator wrap
// another file system (usually MemFileSystem) in it to run the code that cleans up
// directories the way it runs on those file systems.
import { dirName, type FileHandle, type FileSystem, joinPath, type OpenOptions } from './fs.js';

export class RemnantFileSystem implements FileSystem {
  /** Each open handle, with the path its file has now (a rename, a remnant included, moves it). */
  private readonly handles = new Set<{ path: string }>();
  /** Hidden remnants, by their current path, removed when their last handle closes. */
  private readonly hidden = new Set<string>();
  private nextHidden = 0;

  constructor(private readonly inner: FileSystem) {}

  /** The remnants that exist now (paths). */
  remnants(): string[] {
    return [...this.hidden].sort();
  }

  private isOpen(path: string): boolean {
    for (const h of this.handles) if (h.path === path) return true;
    return false;
  }

  async open(path: string, options?: OpenOptions): Promise<FileHandle> {
    const file = await this.inner.open(path, options);
    const where = { path };
    this.handles.add(where);
    const close = async () => {
      if (!this.handles.delete(where)) return;
      await file.close();
      if (!this.isOpen(where.path) && this.hidden.delete(where.path)) await this.inner.remove(where.path);
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

  /** Open files at `from`, or under it when it is a directory, are now at `to`. */
  private moved(from: string, to: string): void {
    const under = `${from}/`;
    for (const h of this.handles) {
      if (h.path === from) h.path = to;
      else if (h.path.startsWith(under)) h.path = to + h.path.slice(from.length);
    }
    for (const p of [...this.hidden]) {
      if (p === from || p.startsWith(under)) {
        this.hidden.delete(p);
        this.hidden.add(to + p.slice(from.length));
      }
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await this.inner.rename(from, to);
    this.moved(from, to);
  }

  async remove(path: string): Promise<void> {
    if (!this.isOpen(path)) {
      await this.inner.remove(path);
      return;
    }
    const remnant = joinPath(dirName(path), `.fuse_hidden${String(this.nextHidden++).padStart(16, '0')}`);
    await this.inner.rename(path, remnant);
    this.moved(path, remnant);
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
