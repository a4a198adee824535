// The public surface of node/storage: the FileSystem seam and its two implementations,
// and the storage of one Raft group (segmented log, hard state, snapshots, retention,
// key compaction).

export type { CompactionPolicy, CompactionResult } from './compaction.js';
export { CONTROL_TYPE_RAFT_CONFIG, CONTROL_TYPE_RAFT_NOOP } from './entry-codec.js';
export { StorageError, type StorageErrorCode } from './errors.js';
export {
  baseName,
  dirName,
  type FileHandle,
  type FileSystem,
  FsError,
  type FsErrorCode,
  isLingeringRemnant,
  joinPath,
  makeDirsDurable,
  type OpenOptions,
  readFile,
  readFully,
  removeIfExists,
  removeTree,
  removeTreeIfPossible,
  writeFileAtomic,
} from './fs.js';
export {
  type AppendedEntry,
  type Durability,
  GroupStorage,
  type OpenParams,
  type ReadOptions,
  type ReadResult,
  type StoredSnapshot,
} from './group-storage.js';
export { LoseUnsyncedFileSystem } from './lose-unsynced-fs.js';
export {
  CRASH_MODES,
  type CrashMode,
  type FsOpInfo,
  type FsOpKind,
  MemFileSystem,
  type MemFsOptions,
  type ReadFaults,
} from './mem-fs.js';
export { NodeFileSystem } from './node-fs.js';
export { DEFAULT_OPTIONS, type StorageOptions } from './options.js';
export { chance, createPrng, type Prng, randomInt } from './prng.js';
export type { Damage, DamageReason, RecoveryReport } from './recovery.js';
export { RemnantFileSystem } from './remnant-fs.js';
export type { SnapshotReader, SnapshotWriter } from './snapshot.js';
