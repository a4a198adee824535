// core.wasm's exports. Memory model: everything at and above heapBase() belongs to the
// host, which lays out input and output regions there for each call (an arena it resets
// between calls and grows with memory.grow). Nothing here allocates: the stub runtime
// never frees, so the core only uses static data (tables, the result block) and the
// pointers it is given.

import { initCrc32c } from './crc32c';
import { RESULT } from './result';

export { scanBatches, validateOne, walkBatchRecords } from './batch';
export { crc32c } from './crc32c';
export { setLimits } from './limits';
export { lz4CompressBound } from './lz4-block';
export { lz4FrameBound, lz4FrameCompress, lz4FrameDecompress } from './lz4-frame';
export { lz4CompressBlock, lz4DecompressBlock } from './lz4-raw';
export { buildIndex } from './segment-index';
export { xxhash32 } from './xxhash32';

initCrc32c();

/** First byte the host may use, 64-byte aligned. */
export function heapBase(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}

/** Address of the result block (result.ts). */
export function resultPtr(): usize {
  return RESULT;
}
