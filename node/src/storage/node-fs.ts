// The FileSystem seam over node:fs: the real disk. Paths are used as given (relative
// paths resolve against the process's working directory).
import { constants, readSync } from 'node:fs';
import {
  mkdir as mkdirNode,
  type FileHandle as NodeFileHandle,
  open,
  readdir,
  rename,
  rm,
  stat,
} from 'node:fs/promises';
import {
  byteLength,
  checkPosition,
  type FileHandle,
  type FileSystem,
  FsError,
  type FsErrorCode,
  type OpenOptions,
} from './fs.js';

function codeOf(e: unknown): FsErrorCode {
  switch ((e as NodeJS.ErrnoException)?.code) {
    case 'ENOENT':
      return 'NOT_FOUND';
    case 'EEXIST':
      return 'EXISTS';
    case 'ENOTDIR':
      return 'NOT_A_DIRECTORY';
    case 'EISDIR':
      return 'IS_A_DIRECTORY';
    case 'ENOTEMPTY':
      return 'NOT_EMPTY';
    case 'EINVAL':
      return 'INVALID';
    case 'EBADF':
      return 'CLOSED';
    default:
      return 'IO';
  }
}

/** Runs `op`, translating node's errors into FsError (the seam's only error type). */
async function wrap<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof FsError) throw e;
    throw new FsError(codeOf(e), (e as Error).message, path);
  }
}

class NodeFile implements FileHandle {
  private closed = false;
  constructor(
    readonly path: string,
    private readonly handle: NodeFileHandle,
  ) {}

  private live(): void {
    if (this.closed) throw new FsError('CLOSED', 'file is closed', this.path);
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    return wrap(this.path, async () => {
      this.live();
      checkPosition(this.path, position);
      const { bytesRead } = await this.handle.read(buf, 0, buf.length, position);
      return bytesRead;
    });
  }

  readSync(buf: Uint8Array, position: number): number {
    this.live();
    checkPosition(this.path, position);
    try {
      return readSync(this.handle.fd, buf, 0, buf.length, position);
    } catch (e) {
      throw new FsError(codeOf(e), (e as Error).message, this.path);
    }
  }

  write(data: Uint8Array | readonly Uint8Array[], position: number): Promise<void> {
    return wrap(this.path, async () => {
      this.live();
      checkPosition(this.path, position);
      // writev may write less than asked (large writes, signals): loop until all is written.
      let buffers = data instanceof Uint8Array ? [data] : data.filter((b) => b.length > 0);
      let at = position;
      while (buffers.length > 0) {
        const { bytesWritten } = await this.handle.writev(buffers, at);
        at += bytesWritten;
        let skip = bytesWritten;
        const rest: Uint8Array[] = [];
        for (const b of buffers) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        buffers = rest;
      }
    });
  }

  async append(data: Uint8Array | readonly Uint8Array[]): Promise<number> {
    const at = await this.size();
    if (byteLength(data) > 0) await this.write(data, at);
    return at;
  }

  sync(): Promise<void> {
    return wrap(this.path, async () => {
      this.live();
      await this.handle.datasync();
    });
  }

  truncate(size: number): Promise<void> {
    return wrap(this.path, async () => {
      this.live();
      checkPosition(this.path, size);
      await this.handle.truncate(size);
    });
  }

  size(): Promise<number> {
    return wrap(this.path, async () => {
      this.live();
      return (await this.handle.stat()).size;
    });
  }

  close(): Promise<void> {
    return wrap(this.path, async () => {
      if (this.closed) return;
      this.closed = true;
      await this.handle.close();
    });
  }
}

export class NodeFileSystem implements FileSystem {
  open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    return wrap(path, async () => {
      let flags = constants.O_RDWR;
      if (options.create) flags |= constants.O_CREAT;
      if (options.create && options.exclusive) flags |= constants.O_EXCL;
      if (options.truncate) flags |= constants.O_TRUNC;
      if (options.dsync) flags |= constants.O_DSYNC;
      return new NodeFile(path, await open(path, flags, 0o644));
    });
  }

  rename(from: string, to: string): Promise<void> {
    return wrap(from, () => rename(from, to));
  }

  remove(path: string): Promise<void> {
    return wrap(path, async () => {
      const st = await stat(path);
      // rm without `recursive` refuses directories; an empty one is removed with rmdir semantics.
      if (st.isDirectory()) {
        if ((await readdir(path)).length > 0) throw new FsError('NOT_EMPTY', 'directory not empty', path);
        await rm(path, { recursive: true });
      } else {
        await rm(path);
      }
    });
  }

  list(dir: string): Promise<string[]> {
    return wrap(dir, async () => (await readdir(dir)).sort());
  }

  mkdir(path: string): Promise<void> {
    return wrap(path, async () => {
      await mkdirNode(path, { recursive: false }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    });
  }

  syncDir(path: string): Promise<void> {
    return wrap(path, async () => {
      const dir = await open(path, constants.O_RDONLY);
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    });
  }

  exists(path: string): Promise<boolean> {
    return stat(path).then(
      () => true,
      () => false,
    );
  }
}
