// Raw LZ4 blocks for the host (no frame): the block functions with the error protocol.

import { clearError } from './errors';
import { compressBlock, decompressBlock } from './lz4-block';

/** Compresses into dst (lz4CompressBound(len) bytes); returns the size. */
export function lz4CompressBlock(src: usize, len: usize, dst: usize, acceleration: u32): i32 {
  assert(acceleration >= 1);
  return <i32>compressBlock(src, len, dst, acceleration);
}

/** Decompresses into dst (at most cap bytes); returns the size or -code. */
export function lz4DecompressBlock(src: usize, len: usize, dst: usize, cap: usize): i32 {
  clearError();
  return decompressBlock(src, len, dst, cap, dst);
}
