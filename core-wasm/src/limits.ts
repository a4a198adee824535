// The core's limits, in one place, with units in their names. The wasm module gets the
// ones it checks itself through setLimits() when it is instantiated.

export const coreLimits = Object.freeze({
  /** Largest batch accepted or produced, log overhead included (baseOffset + batchLength + body). */
  maxBatchBytes: 16 * 1024 * 1024,
  /** Most records one batch may declare. Records take at least 7 bytes, so this also bounds walk tables. */
  maxRecordsPerBatch: 1 << 20,
  /** Default ceiling on the bytes an LZ4 frame or a compressed batch may decompress to. */
  maxDecompressedBytes: 64 * 1024 * 1024,
  /** Largest single input any operation accepts (the wasm arena must hold input and output). */
  maxInputBytes: 512 * 1024 * 1024,
  /** Ceiling on the wasm memory one core may grow to (wasm32 allows 4 GiB). */
  maxArenaBytes: 2048 * 1024 * 1024,
});

export type CoreLimits = typeof coreLimits;
