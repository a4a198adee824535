// The result block: a fixed 128-byte region in static memory through which operations
// hand back more than one number (an error's code/reason/position, a scan's totals).
// Field offsets are bytes from RESULT; the host reads them with the same offsets
// (core-wasm/src/wasm-codes.ts). f64 fields hold integers within ±2^53.

export const RESULT: usize = memory.data(128, 16);

export const R_ERROR_CODE: usize = 0; // i32
export const R_ERROR_REASON: usize = 4; // i32
export const R_ERROR_POSITION: usize = 8; // i32, -1 when unknown
// scanBatches
export const R_SCAN_VALID_BYTES: usize = 16; // i32
export const R_SCAN_BATCH_COUNT: usize = 20; // i32
export const R_SCAN_FIRST_OFFSET: usize = 32; // f64
export const R_SCAN_LAST_OFFSET: usize = 40; // f64
export const R_SCAN_MAX_TIMESTAMP: usize = 48; // f64
export const R_SCAN_RECORD_TOTAL: usize = 56; // f64 (records in all valid batches)
// lz4 frame decompression progress (resumable when the output region must grow)
export const R_LZ4_IN_POS: usize = 64; // i32, bytes of input consumed
export const R_LZ4_OUT_POS: usize = 68; // i32, bytes of output produced
export const R_LZ4_SIZE_HINT: usize = 80; // f64, bytes the current frame still needs when known, else -1
// buildIndex
export const R_INDEX_BYTES_SINCE: usize = 72; // f64
