// Where materialized views keep their snapshots. A store maps a key to the newest bytes
// saved under it; it must never return a torn or partly written value.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface SnapshotStore {
  /** The bytes last saved under `key`; undefined if none. */
  load(key: string): Promise<Uint8Array | undefined>;
  /** Replaces the bytes under `key` atomically: a crash leaves the old or the new value. */
  save(key: string, bytes: Uint8Array): Promise<void>;
}

/**
 * One file per key in a directory. Saving writes a temporary file, fsyncs it, renames it
 * over the old one and fsyncs the directory, so a crash at any point leaves either the
 * previous snapshot or the new one, whole.
 */
export class FileSnapshotStore implements SnapshotStore {
  private seq = 0;

  constructor(readonly dir: string) {}

  path(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.snapshot`);
  }

  async load(key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async save(key: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const final = this.path(key);
    const tmp = `${final}.tmp-${process.pid}-${this.seq++}`;
    try {
      const f = await open(tmp, 'w');
      try {
        await f.writeFile(bytes);
        await f.sync();
      } finally {
        await f.close();
      }
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

/** Snapshots in memory (tests, or state that needs no persistence across restarts). */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly values = new Map<string, Uint8Array>();

  async load(key: string): Promise<Uint8Array | undefined> {
    const v = this.values.get(key);
    return v === undefined ? undefined : v.slice();
  }

  async save(key: string, bytes: Uint8Array): Promise<void> {
    this.values.set(key, bytes.slice());
  }
}
