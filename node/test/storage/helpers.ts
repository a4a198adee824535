// Shared helpers for the storage tests: a core, entries made of real Kafka v2 batches,
// and opening storage over the in-memory or the real file system.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Core, createCore } from '../../../core-wasm/src/index.js';
import type { Entry, EntryType } from '../../../raft/src/types.js';
import type { StoreProvider } from '../../src/cairn-node.js';
import { segmentStores } from '../../src/group/segment-store.js';
import type { GroupStore } from '../../src/group/store.js';
import { silentLogger } from '../../src/ops/log.js';
import {
  type FileSystem,
  GroupStorage,
  type OpenParams,
  type StorageOptions,
} from '../../src/storage/index.js';

let sharedCore: Core | null = null;
export function core(): Core {
  sharedCore ??= createCore();
  return sharedCore;
}

/** A deterministic byte pattern for record `n` of entry `index`. */
export function payload(index: number, n: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = (index * 2654435761 + n * 40503 + 1) >>> 0;
  for (let i = 0; i < bytes; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A normal entry: one unstamped batch of `records` records of `valueBytes` bytes, keys "k<index % keys>". */
export function normalEntry(
  index: number,
  term: number,
  opts: { records?: number; valueBytes?: number; keys?: number; timestamp?: number } = {},
): Entry {
  const records = opts.records ?? 1 + (index % 3);
  const keys = opts.keys ?? 1000;
  const rs = [];
  for (let n = 0; n < records; n++) {
    rs.push({
      key: new TextEncoder().encode(`k${(index * 7 + n) % keys}`),
      value: payload(index, n, opts.valueBytes ?? 40),
      timestamp: opts.timestamp ?? 1_700_000_000_000 + index,
    });
  }
  return { index, term, type: 'normal', data: core().encodeBatch(rs) };
}

export function controlEntry(index: number, term: number, type: Exclude<EntryType, 'normal'>): Entry {
  return { index, term, type, data: type === 'noop' ? new Uint8Array(0) : payload(index, 0, 17) };
}

/** Entries [from, to) with terms from `termOf`, mixing in a noop at each term start and a config now and then. */
export function entries(
  from: number,
  to: number,
  termOf: (i: number) => number = () => 1,
  opts: Parameters<typeof normalEntry>[2] = {},
): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i < to; i++) {
    const t = termOf(i);
    if (i === 1 || termOf(i - 1) !== t) out.push(controlEntry(i, t, 'noop'));
    else if (i % 17 === 0) out.push(controlEntry(i, t, 'config'));
    else out.push(normalEntry(i, t, opts));
  }
  return out;
}

/** A copy of an entry (the storage stamps normal entries' bytes in place). */
export function cloneEntry(e: Entry): Entry {
  return { index: e.index, term: e.term, type: e.type, data: e.data.slice() };
}

/** Entry data with the stamped header fields (baseOffset, epoch) zeroed, to compare content. */
export function unstamped(e: Entry): Uint8Array {
  const d = e.data.slice();
  if (e.type === 'normal') {
    d.fill(0, 0, 8);
    d.fill(0, 12, 16);
  }
  return d;
}

export async function open(
  fs: FileSystem,
  options: Partial<StorageOptions> = {},
  extra: Partial<OpenParams> = {},
) {
  return GroupStorage.open({ fs, dir: 'group', core: core(), options, ...extra });
}

/** The groups' stores under `data/` on `fs`, as a node lays them out (silent log). */
export function dataStores(fs: FileSystem): StoreProvider {
  return segmentStores({
    fs,
    dataDir: 'data',
    core: core(),
    schedule: (run) => setImmediate(run),
    log: silentLogger(),
  });
}

/** The GroupStorage under a store that `dataStores` opened. */
export function storageOf(store: GroupStore): GroupStorage {
  return (store as unknown as { storage: GroupStorage }).storage;
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cairn-storage-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function eqBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
