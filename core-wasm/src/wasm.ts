// Loading core.wasm and managing its memory as an arena.
//
// Memory layout of one instance (addresses grow to the right):
//
//   0 ─ static data (CRC/LZ4 tables, LZ4 hash table, result block) ─ heapBase ─ arena ─ end
//
// The stub runtime never frees, so the core allocates nothing: every call gets pointers
// into the arena, which the host lays out per call (input region, then output and scratch
// regions) with a bump pointer, and resets when the call is done. The arena grows with
// memory.grow when a call needs more; growing replaces memory.buffer, so the views here
// are rebuilt after every grow and never cached by callers across calls.

import { readFileSync } from 'node:fs';
import { CoreError } from './api.js';
import { coreLimits } from './limits.js';
import { coreError, R } from './wasm-codes.js';

/** The functions core.wasm exports (see core-wasm/assembly/index.ts). Pointers and sizes are bytes. */
export interface CoreExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  heapBase(): number;
  resultPtr(): number;
  setLimits(maxBatchBytes: number, maxRecordsPerBatch: number): void;
  crc32c(ptr: number, len: number, seed: number): number;
  xxhash32(ptr: number, len: number, seed: number): number;
  lz4CompressBound(len: number): number;
  lz4CompressBlock(src: number, len: number, dst: number, acceleration: number): number;
  lz4DecompressBlock(src: number, len: number, dst: number, cap: number): number;
  lz4FrameBound(len: number, blockSizeId: number): number;
  lz4FrameCompress(
    src: number,
    len: number,
    dst: number,
    blockSizeId: number,
    flags: number,
    acceleration: number,
  ): number;
  lz4FrameDecompress(src: number, len: number, dst: number, cap: number, resume: number): number;
  scanBatches(ptr: number, len: number): number;
  validateOne(ptr: number, len: number): number;
  walkBatchRecords(batch: number, records: number, len: number, table: number): number;
  buildIndex(
    ptr: number,
    len: number,
    segmentBase: number,
    startPosition: number,
    bytesSinceLastEntry: number,
    intervalBytes: number,
    relOffsets: number,
    positions: number,
    ordinals: number,
    capacity: number,
  ): number;
}

export type WasmFlavor = 'release' | 'debug';

const modules = new Map<WasmFlavor, WebAssembly.Module>();

/** The compiled module, compiled synchronously once per process and flavor. */
export function coreModule(flavor: WasmFlavor = 'release'): WebAssembly.Module {
  let m = modules.get(flavor);
  if (!m) {
    // dist/core-wasm/src/wasm.js → dist/core-wasm/core.wasm
    const file = flavor === 'release' ? '../core.wasm' : '../core.debug.wasm';
    m = new WebAssembly.Module(readFileSync(new URL(file, import.meta.url)));
    modules.set(flavor, m);
  }
  return m;
}

const PAGE_BYTES = 65536;

/** One instance of core.wasm and its arena. Not reentrant: one call at a time. */
export class WasmCore {
  readonly x: CoreExports;
  private readonly memory: WebAssembly.Memory;
  private readonly base: number;
  private top: number;
  /** Views over memory.buffer; rebuilt by refresh() after any grow. */
  u8!: Uint8Array;
  dv!: DataView;
  readonly result: number;

  constructor(flavor: WasmFlavor = 'release') {
    let self: WasmCore | null = null;
    const imports = {
      env: {
        // Only the debug build calls this (a failed assertion); the message is an
        // AssemblyScript string: UTF-16 code units, byte length at ptr - 4.
        abort: (msg: number, file: number, line: number, column: number) => {
          const text = self ? `${self.asString(msg)} at ${self.asString(file)}:${line}:${column}` : 'abort';
          throw new Error(`core.wasm assertion failed: ${text}`);
        },
      },
    };
    const instance = new WebAssembly.Instance(coreModule(flavor), imports);
    this.x = instance.exports as unknown as CoreExports;
    this.memory = this.x.memory;
    self = this;
    this.x._initialize();
    this.x.setLimits(coreLimits.maxBatchBytes, coreLimits.maxRecordsPerBatch);
    this.base = this.x.heapBase();
    this.top = this.base;
    this.result = this.x.resultPtr();
    this.refresh();
  }

  private refresh(): void {
    if (this.u8?.buffer !== this.memory.buffer) {
      this.u8 = new Uint8Array(this.memory.buffer);
      this.dv = new DataView(this.memory.buffer);
    }
  }

  private asString(ptr: number): string {
    if (ptr === 0) return '';
    this.refresh();
    const bytes = this.dv.getUint32(ptr - 4, true);
    let s = '';
    for (let i = 0; i < bytes; i += 2) s += String.fromCharCode(this.dv.getUint16(ptr + i, true));
    return s;
  }

  /** Starts a call: the whole arena is free again. */
  reset(): void {
    this.top = this.base;
  }

  /** Reserves `bytes` in the arena (64-byte aligned) and returns the address. */
  alloc(bytes: number): number {
    const p = (this.top + 63) & ~63;
    this.ensure(p + bytes);
    this.top = p + bytes;
    return p;
  }

  /** Grows the region that starts at `ptr` (the last one allocated) to `bytes`. */
  extend(ptr: number, bytes: number): void {
    this.ensure(ptr + bytes);
    this.top = Math.max(this.top, ptr + bytes);
  }

  /** Copies `bytes` into a new arena region; returns its address. */
  put(bytes: Uint8Array): number {
    const p = this.alloc(bytes.length);
    this.u8.set(bytes, p);
    return p;
  }

  private ensure(end: number): void {
    if (end > coreLimits.maxArenaBytes) {
      throw new CoreError(
        'TOO_LARGE',
        `the call needs ${end} bytes of wasm memory (coreLimits.maxArenaBytes)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow at least by half again, so a sequence of growing calls costs amortized O(1).
      const want = Math.max(end, Math.min(coreLimits.maxArenaBytes, Math.floor(have * 1.5)));
      this.memory.grow(Math.ceil((want - have) / PAGE_BYTES));
    }
    this.refresh();
  }

  /**
   * A copy of [ptr, ptr+len): results must not alias wasm memory, which the next call
   * reuses. Large copies go to an uninitialized buffer of their own (3× faster than
   * slice(), which zero-fills first); never Node's shared small-buffer pool, so a result
   * can be transferred to another thread on its own.
   */
  copyOut(ptr: number, len: number): Uint8Array {
    if (len < 4096) return this.u8.slice(ptr, ptr + len);
    const own = Buffer.allocUnsafeSlow(len);
    own.set(this.u8.subarray(ptr, ptr + len));
    return new Uint8Array(own.buffer, own.byteOffset, len);
  }

  i32(offset: number): number {
    return this.dv.getInt32(this.result + offset, true);
  }

  f64(offset: number): number {
    return this.dv.getFloat64(this.result + offset, true);
  }

  /** The CoreError for a failed call (negative return); positions are made relative to `regionBase`. */
  error(status: number, regionBase: number, detail?: string): CoreError {
    const code = -status;
    const reason = this.i32(R.errorReason);
    const at = this.i32(R.errorPosition);
    return coreError(code, reason, at >= 0 && at >= regionBase ? at - regionBase : -1, detail);
  }
}
