// createCorePool(): the Core operations on piscina worker threads, for large work.
//
// A call to the pool costs a thread hop and a copy of the input (structured clone); the
// result comes back transferred. That is worth it only past POOL_THRESHOLD_BYTES of
// input (measured by `npm run bench -- core`, see docs/ARCHITECTURE.md); below it, call
// the in-thread core. readBatchHeader, stampBatch and searchIndex touch a few bytes (and
// stampBatch must change the caller's buffer), so the pool runs them on the calling thread.

import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { type Core, CoreError, type CorePool, type RecordInput, type ScanResult } from './api.js';
import { readBatchHeader, stampBatch } from './batch-header.js';
import { searchIndex } from './core.js';
import type { WireError, WorkerMethod, WorkerReply } from './pool-worker.js';

/**
 * Input size (bytes) from which sending work to the pool beats doing it inline: below
 * it, the hop and the copy cost more than the work. Measured with `npm run bench -- core`
 * (lz4Compress and scanBatches on the benchmark corpus; see docs/ARCHITECTURE.md).
 */
export const POOL_THRESHOLD_BYTES = 256 * 1024;

export interface CorePoolOptions {
  /** Worker threads kept alive (default 1). */
  minThreads?: number;
  /** At most this many worker threads (default: the machine's parallelism, at least 1). */
  maxThreads?: number;
  /** Milliseconds an idle thread above minThreads lives (default 30 000). */
  idleTimeoutMs?: number;
}

/**
 * Posting a view copies its whole ArrayBuffer (a 100-byte subarray of a 1 GiB buffer
 * would cost 1 GiB), so views that do not cover their buffer are copied down first;
 * so are the byte fields of encodeBatch's records.
 */
function compact(arg: unknown): unknown {
  if (arg instanceof Uint8Array) return arg.byteLength === arg.buffer.byteLength ? arg : arg.slice();
  if (Array.isArray(arg)) {
    return arg.map((r: RecordInput) =>
      r && typeof r === 'object'
        ? {
            ...r,
            key: compact(r.key ?? null),
            value: compact(r.value),
            headers: r.headers?.map((h) => ({ key: h.key, value: compact(h.value) })),
          }
        : r,
    );
  }
  return arg;
}

function fromWire(e: WireError): CoreError {
  return new CoreError(e.code, e.message, e.position);
}

export function createCorePool(options: CorePoolOptions = {}): CorePool {
  const maxThreads = Math.max(1, options.maxThreads ?? availableParallelism());
  const pool = new Piscina({
    filename: new URL('./pool-worker.js', import.meta.url).href,
    minThreads: Math.min(maxThreads, Math.max(0, options.minThreads ?? 1)),
    maxThreads,
    idleTimeout: options.idleTimeoutMs ?? 30_000,
  });

  async function call<T>(method: WorkerMethod, args: unknown[]): Promise<T> {
    const reply = (await pool.run({ method, args: args.map(compact) })) as WorkerReply;
    if (reply instanceof Uint8Array) return reply as T;
    if ('error' in reply) throw fromWire(reply.error);
    return reply.value as T;
  }

  type Args<K extends keyof Core> = Parameters<Core[K]>;

  return {
    crc32c: (...a: Args<'crc32c'>) => call('crc32c', a),
    xxhash32: (...a: Args<'xxhash32'>) => call('xxhash32', a),
    lz4Compress: (...a: Args<'lz4Compress'>) => call('lz4Compress', a),
    lz4Decompress: (...a: Args<'lz4Decompress'>) => call('lz4Decompress', a),
    lz4CompressBlock: (...a: Args<'lz4CompressBlock'>) => call('lz4CompressBlock', a),
    lz4DecompressBlock: (...a: Args<'lz4DecompressBlock'>) => call('lz4DecompressBlock', a),
    scanBatches: async (...a: Args<'scanBatches'>) => {
      const r = await call<Omit<ScanResult, 'error'> & { error: WireError | null }>('scanBatches', a);
      return { ...r, error: r.error ? fromWire(r.error) : null };
    },
    encodeBatch: (...a: Args<'encodeBatch'>) => call('encodeBatch', a),
    decodeRecords: (...a: Args<'decodeRecords'>) => call('decodeRecords', a),
    checkRecords: (...a: Args<'checkRecords'>) => call('checkRecords', a),
    buildIndex: (...a: Args<'buildIndex'>) => call('buildIndex', a),
    readBatchHeader: async (...a: Args<'readBatchHeader'>) => readBatchHeader(...a),
    stampBatch: async (...a: Args<'stampBatch'>) => stampBatch(...a),
    searchIndex: async (...a: Args<'searchIndex'>) => searchIndex(...a),
    destroy: () => pool.destroy(),
  };
}
