// The core's limits, as set by the host (core-wasm/src/limits.ts is the one place they
// are defined, with units; the host calls setLimits once after instantiation).

export let maxBatchBytes: i32 = 0;
export let maxRecordsPerBatch: i32 = 0;

export function setLimits(batchBytes: i32, recordsPerBatch: i32): void {
  assert(batchBytes >= 61 && recordsPerBatch >= 0);
  maxBatchBytes = batchBytes;
  maxRecordsPerBatch = recordsPerBatch;
}
