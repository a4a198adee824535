// Every limit of the storage layer, in one place, with units in the names.
import { POOL_THRESHOLD_BYTES } from '../../../core-wasm/src/index.js';
import { StorageError } from './errors.js';

export interface StorageOptions {
  /** A segment rolls before it would grow past this many bytes (one batch larger than it gets a segment of its own). */
  segmentBytes: number;
  /** A sparse index entry is written once this many log bytes passed since the previous one. */
  indexIntervalBytes: number;
  /** Bytes of recent entries the tail cache keeps for the synchronous LogReader (entries not yet written are always kept). */
  cacheBytes: number;
  /** Most bytes one read returns (offset reads and LogReader reads alike; at least one batch is always returned). */
  maxReadBytes: number;
  /** Most bytes one group-commit write carries (one batch larger than this goes alone); more waits for the next. */
  maxFlushBytes: number;
  /** Recovery and compaction read segments in chunks of this many bytes. */
  scanChunkBytes: number;
  /** Scans of at least this many bytes go to the CorePool when one is given (the hop costs ~25-55 µs). */
  poolMinBytes: number;
  /** A snapshot receiver fsyncs (and records its resumable progress) every this many bytes. */
  snapshotSyncIntervalBytes: number;
  /**
   * 'tail': trust a sealed segment's index when its CRC'd footer matches the log file, and
   * validate every batch of the rest. 'full': validate every batch of every segment.
   */
  recovery: 'tail' | 'full';
}

export const DEFAULT_OPTIONS: Readonly<StorageOptions> = {
  segmentBytes: 64 * 1024 * 1024,
  indexIntervalBytes: 4096,
  cacheBytes: 16 * 1024 * 1024,
  maxReadBytes: 16 * 1024 * 1024,
  // Measured here (bench/storage.ts, a virtual disk): 256 KiB batches with 32 in flight
  // reached 562 MB/s with 1 MiB flushes, 360 with 2 MiB and under 200 from 4 MiB up;
  // fsync cost grows faster than linearly with the bytes behind it on this disk.
  maxFlushBytes: 1024 * 1024,
  scanChunkBytes: 8 * 1024 * 1024,
  // core-wasm measured where the pool's hop starts to pay off.
  poolMinBytes: POOL_THRESHOLD_BYTES,
  snapshotSyncIntervalBytes: 8 * 1024 * 1024,
  recovery: 'tail',
};

/**
 * A stored batch that fails validation is read this many times before it counts as
 * damage: a read can be faulty where the disk is not (a flipped bit on the bus, a bad
 * cache line), and damage makes the node stop voting until repaired.
 */
export const READ_ATTEMPTS = 3;

/** Damages the durable damage record keeps (damage.ts); the first ones, which say the most. */
export const MAX_DAMAGE_RECORDS = 32;

/** Positions in a segment and in its index are u32, so a segment stays below 2^31 bytes (with headroom). */
export const MAX_SEGMENT_BYTES = 2 ** 31;

export function resolveOptions(partial: Partial<StorageOptions> = {}): StorageOptions {
  const o: StorageOptions = { ...DEFAULT_OPTIONS, ...partial };
  const positive = (name: keyof StorageOptions, max = Number.MAX_SAFE_INTEGER): void => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `option ${name} must be an integer in [1, ${max}], got ${String(v)}`,
      );
  };
  positive('segmentBytes', MAX_SEGMENT_BYTES);
  positive('indexIntervalBytes');
  positive('cacheBytes');
  positive('maxReadBytes');
  positive('maxFlushBytes');
  positive('scanChunkBytes', 1024 * 1024 * 1024);
  positive('poolMinBytes');
  positive('snapshotSyncIntervalBytes');
  if (o.recovery !== 'tail' && o.recovery !== 'full')
    throw new StorageError('INVALID_ARGUMENT', `option recovery must be 'tail' or 'full'`);
  return o;
}
