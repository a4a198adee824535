// Typed errors of the storage layer. Every failure storage reports is a StorageError
// with one of these codes; the node maps them to gRPC statuses in one place.

export type StorageErrorCode =
  /** A caller broke a precondition: wrong index, empty or malformed batch, bad option. Nothing changed. */
  | 'INVALID_ARGUMENT'
  /** An offset below the log start (deleted by retention or compaction of the prefix). */
  | 'OFFSET_OUT_OF_RANGE'
  /** A Raft index outside [firstIndex, lastIndex]. */
  | 'INDEX_OUT_OF_RANGE'
  /** Stored bytes failed validation (CRC, length, magic, offsets): the disk lost or damaged data. */
  | 'CORRUPT'
  /** A snapshot stream is malformed, does not match its metadata, or arrived out of order. */
  | 'BAD_SNAPSHOT'
  /** An earlier write or fsync failed; the storage stopped accepting work (the node must restart). */
  | 'FAILED'
  /** The storage was closed. */
  | 'CLOSED';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** Asserts an invariant of storage itself (a bug if it fails, never bad input). */
export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`storage invariant violated: ${message}`);
}

/**
 * A stored batch failed validation on a read. Readers retry once (a read can be faulty
 * where the disk is not) and report damage only if the second read fails too.
 */
export class CorruptRead extends StorageError {
  constructor(
    readonly file: string,
    readonly position: number,
    readonly detail: string,
  ) {
    super('CORRUPT', `${file} at ${position}: ${detail}`);
  }
}
