// A piscina worker: one in-thread core per worker thread, driven by { method, args }.
// Byte results travel back transferred (moved, not copied); errors travel as plain data
// (a CoreError would lose its class crossing threads) and are rebuilt by pool.ts.

import { move } from 'piscina';
import { type Core, CoreError } from './api.js';
import { createCore } from './core.js';

export type WorkerMethod =
  | 'crc32c'
  | 'xxhash32'
  | 'lz4Compress'
  | 'lz4Decompress'
  | 'lz4CompressBlock'
  | 'lz4DecompressBlock'
  | 'scanBatches'
  | 'encodeBatch'
  | 'decodeRecords'
  | 'checkRecords'
  | 'buildIndex';

export interface WorkerTask {
  method: WorkerMethod;
  args: unknown[];
}

export interface WireError {
  code: CoreError['code'];
  message: string;
  position: number;
}

export type WorkerReply = Uint8Array | { value: unknown } | { error: WireError };

const core = createCore();

export function toWire(e: CoreError): WireError {
  return { code: e.code, message: e.message, position: e.position };
}

export default function run(task: WorkerTask): WorkerReply {
  const method = core[task.method] as (...args: unknown[]) => unknown;
  try {
    const value = method(...task.args);
    if (value instanceof Uint8Array) return move(value) as Uint8Array;
    if (task.method === 'scanBatches') {
      const scan = value as ReturnType<Core['scanBatches']>;
      return { value: { ...scan, error: scan.error ? toWire(scan.error) : null } };
    }
    return { value };
  } catch (e) {
    if (e instanceof CoreError) return { error: toWire(e) };
    throw e;
  }
}
