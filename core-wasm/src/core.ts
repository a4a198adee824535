// createCore(): the synchronous in-thread core, one core.wasm instance and its arena.
// Each method copies its input into the arena once, runs there, and copies its result out
// once (results never alias wasm memory, which the next call reuses).

import { gunzipSync, gzipSync } from 'node:zlib';
import {
  BATCH_HEADER_BYTES,
  Compression,
  type Core,
  CoreError,
  type DecodedRecord,
  type EncodeOptions,
  type IndexBuildOptions,
  type IndexEntries,
  type Lz4CompressOptions,
  type Lz4DecompressOptions,
  type RecordHeader,
  type RecordInput,
  type RecordsCheck,
  type ScanResult,
} from './api.js';
import { readBatchHeader, stampBatch } from './batch-header.js';
import { coreLimits } from './limits.js';
import { readZigzag, writeZigzag, zigzagSize } from './varint.js';
import { WasmCore, type WasmFlavor } from './wasm.js';
import {
  E,
  NEED_OUTPUT,
  R,
  RECORD_ENTRY_BYTES,
  WANT_BLOCK_CHECKSUM,
  WANT_CONTENT_CHECKSUM,
  WANT_CONTENT_SIZE,
} from './wasm-codes.js';

export interface CreateCoreOptions {
  /** 'debug' runs core.debug.wasm (assertions on); tests use it. Default 'release'. */
  wasm?: WasmFlavor;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
const MAX_TIMESTAMP_DELTA = 2 ** 52; // keeps the zigzag form exact in a number (varint.ts)

function checkInput(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (bytes.length > coreLimits.maxInputBytes) {
    throw new CoreError(
      'TOO_LARGE',
      `${what} is ${bytes.length} bytes; coreLimits.maxInputBytes is ${coreLimits.maxInputBytes}`,
    );
  }
}

/** LZ4 frame block maximum sizes → the BD byte's id. */
const BLOCK_SIZE_IDS = new Map<number, number>([
  [65536, 4],
  [262144, 5],
  [1048576, 6],
  [4194304, 7],
]);
/** LZ4's own ceiling on acceleration (LZ4_ACCELERATION_MAX); beyond it nothing changes. */
const MAX_ACCELERATION = 65537;
/**
 * How batches are compressed, as Kafka's producer does: 64 KiB independent blocks, no
 * block or content checksum (the batch CRC32C covers the compressed bytes).
 */
const KAFKA_LZ4: Lz4CompressOptions = { blockSize: 65536, contentChecksum: false };

function acceleration(a: number | undefined): number {
  if (a === undefined) return 1;
  if (!Number.isFinite(a)) throw new RangeError(`lz4: acceleration must be a number ≥ 1, not ${a}`);
  return Math.min(MAX_ACCELERATION, Math.max(1, Math.floor(a)));
}

function outputLimit(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`lz4: an output limit must be a non-negative integer, not ${n}`);
  return Math.min(n, coreLimits.maxArenaBytes);
}

function u32(seed: number | undefined): number {
  return seed === undefined ? 0 : seed >>> 0;
}

export function createCore(options: CreateCoreOptions = {}): Core {
  const w = new WasmCore(options.wasm ?? 'release');
  const x = w.x;

  function crc32c(bytes: Uint8Array, seed?: number): number {
    checkInput(bytes, 'crc32c input');
    w.reset();
    const p = w.put(bytes);
    return x.crc32c(p, bytes.length, u32(seed)) >>> 0;
  }

  function scanBatches(buf: Uint8Array): ScanResult {
    checkInput(buf, 'scanBatches input');
    w.reset();
    const p = w.put(buf);
    const status = x.scanBatches(p, buf.length);
    return {
      validBytes: w.i32(R.scanValidBytes),
      batchCount: w.i32(R.scanBatchCount),
      recordCount: w.f64(R.scanRecordTotal),
      firstOffset: w.f64(R.scanFirstOffset),
      lastOffset: w.f64(R.scanLastOffset),
      maxTimestamp: w.f64(R.scanMaxTimestamp),
      error: status < 0 ? w.error(status, p) : null,
    };
  }

  /** Size of one record's body (after its length varint). */
  function recordBodySize(
    r: RecordInput,
    tsDelta: number,
    offsetDelta: number,
    headerKeys: Uint8Array[],
  ): number {
    let size = 1 + zigzagSize(tsDelta) + zigzagSize(offsetDelta);
    size += r.key ? zigzagSize(r.key.length) + r.key.length : 1;
    size += r.value ? zigzagSize(r.value.length) + r.value.length : 1;
    const headers = r.headers ?? [];
    size += zigzagSize(headers.length);
    for (let h = 0; h < headers.length; h++) {
      const key = headerKeys[h]!;
      const value = headers[h]!.value;
      size += zigzagSize(key.length) + key.length;
      size += value ? zigzagSize(value.length) + value.length : 1;
    }
    return size;
  }

  function encodeBatch(records: RecordInput[], opts: EncodeOptions = {}): Uint8Array {
    if (!Array.isArray(records) || records.length === 0) {
      throw new CoreError('CORRUPT_BATCH', 'a batch needs at least one record');
    }
    if (records.length > coreLimits.maxRecordsPerBatch) {
      throw new CoreError(
        'TOO_LARGE',
        `${records.length} records; coreLimits.maxRecordsPerBatch is ${coreLimits.maxRecordsPerBatch}`,
      );
    }
    const compression = opts.compression ?? 'none';
    if (compression !== 'none' && compression !== 'gzip' && compression !== 'lz4') {
      throw new CoreError('UNSUPPORTED', `compression '${String(compression)}' is not supported`);
    }
    // Timestamps: records without one take the base timestamp.
    let minTs = Number.POSITIVE_INFINITY;
    for (const r of records) if (r.timestamp !== undefined) minTs = Math.min(minTs, r.timestamp);
    const baseTimestamp = opts.baseTimestamp ?? (Number.isFinite(minTs) ? minTs : 0);
    const ints: [string, number | undefined, number, number][] = [
      ['baseOffset', opts.baseOffset, 0, Number.MAX_SAFE_INTEGER],
      ['baseTimestamp', baseTimestamp, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
      ['partitionLeaderEpoch', opts.partitionLeaderEpoch, -(2 ** 31), 2 ** 31 - 1],
      ['producerId', opts.producerId, -1, Number.MAX_SAFE_INTEGER],
      ['producerEpoch', opts.producerEpoch, -(2 ** 15), 2 ** 15 - 1],
      ['baseSequence', opts.baseSequence, -(2 ** 31), 2 ** 31 - 1],
    ];
    for (const [name, v, lo, hi] of ints) {
      if (v !== undefined && (!Number.isInteger(v) || v < lo || v > hi)) {
        throw new CoreError('CORRUPT_BATCH', `${name} ${v} is not an integer in ${lo}..${hi}`);
      }
    }
    // Pass 1: sizes (and the UTF-8 of header keys, reused in pass 2).
    const keysOf: Uint8Array[][] = new Array(records.length);
    const bodySizes = new Float64Array(records.length);
    let maxTimestamp = baseTimestamp;
    let recordsBytes = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      checkRecord(r, i);
      const ts = r.timestamp ?? baseTimestamp;
      if (!Number.isSafeInteger(ts) || Math.abs(ts - baseTimestamp) > MAX_TIMESTAMP_DELTA) {
        throw new CoreError(
          'CORRUPT_BATCH',
          `record ${i}: timestamp ${ts} is not an integer within 2^52 of ${baseTimestamp}`,
        );
      }
      if (ts > maxTimestamp) maxTimestamp = ts;
      const keys = (r.headers ?? []).map((h) => utf8.encode(h.key));
      keysOf[i] = keys;
      const body = recordBodySize(r, ts - baseTimestamp, i, keys);
      bodySizes[i] = body;
      recordsBytes += zigzagSize(body) + body;
      if (recordsBytes + BATCH_HEADER_BYTES > coreLimits.maxBatchBytes) {
        throw new CoreError(
          'TOO_LARGE',
          `the batch exceeds coreLimits.maxBatchBytes (${coreLimits.maxBatchBytes})`,
        );
      }
    }
    // Pass 2: write the records into the arena, right after room for the header.
    w.reset();
    const batch = w.alloc(BATCH_HEADER_BYTES + recordsBytes);
    const u8 = w.u8;
    let p = batch + BATCH_HEADER_BYTES;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      p = writeZigzag(u8, p, bodySizes[i]!);
      u8[p++] = 0; // record attributes: unused in v2
      p = writeZigzag(u8, p, (r.timestamp ?? baseTimestamp) - baseTimestamp);
      p = writeZigzag(u8, p, i); // offsetDelta
      p = writeBytes(u8, p, r.key ?? null);
      p = writeBytes(u8, p, r.value);
      const headers = r.headers ?? [];
      p = writeZigzag(u8, p, headers.length);
      const keys = keysOf[i]!;
      for (let h = 0; h < headers.length; h++) {
        p = writeBytes(u8, p, keys[h]!);
        p = writeBytes(u8, p, headers[h]!.value);
      }
    }
    // Invariant: pass 2 wrote exactly what pass 1 measured.
    if (p !== batch + BATCH_HEADER_BYTES + recordsBytes) throw new Error('encodeBatch: size mismatch');

    let out = batch;
    let total = BATCH_HEADER_BYTES + recordsBytes;
    if (compression !== 'none') {
      const payload =
        compression === 'gzip'
          ? gzipSync(w.u8.subarray(batch + BATCH_HEADER_BYTES, batch + total))
          : lz4CompressFrom(batch + BATCH_HEADER_BYTES, recordsBytes, KAFKA_LZ4);
      total = BATCH_HEADER_BYTES + payload.length;
      if (total > coreLimits.maxBatchBytes) {
        throw new CoreError(
          'TOO_LARGE',
          `the batch exceeds coreLimits.maxBatchBytes (${coreLimits.maxBatchBytes})`,
        );
      }
      out = w.alloc(total);
      w.u8.set(payload, out + BATCH_HEADER_BYTES);
    }
    const dv = w.dv;
    const codec = Compression[compression];
    const attributes = codec | (opts.control ? 0x20 : 0);
    setInt64(dv, out, opts.baseOffset ?? 0);
    dv.setInt32(out + 8, total - 12);
    dv.setInt32(out + 12, opts.partitionLeaderEpoch ?? 0);
    dv.setInt8(out + 16, 2);
    dv.setInt16(out + 21, attributes);
    dv.setInt32(out + 23, records.length - 1);
    setInt64(dv, out + 27, baseTimestamp);
    setInt64(dv, out + 35, maxTimestamp);
    setInt64(dv, out + 43, opts.producerId ?? -1);
    dv.setInt16(out + 51, opts.producerEpoch ?? -1);
    dv.setInt32(out + 53, opts.baseSequence ?? -1);
    dv.setInt32(out + 57, records.length);
    dv.setUint32(out + 17, x.crc32c(out + 21, total - 21, 0) >>> 0);
    return w.copyOut(out, total);
  }

  /**
   * Validates the one batch filling `batchBytes`, decompresses its records when needed and
   * walks them into a table (RECORD_ENTRY_BYTES per record) in wasm memory.
   */
  function walkRecords(batchBytes: Uint8Array, what: string) {
    checkInput(batchBytes, what);
    w.reset();
    const batch = w.put(batchBytes);
    const size = x.validateOne(batch, batchBytes.length);
    if (size < 0) throw w.error(size, batch);
    const header = readBatchHeader(batchBytes, 0);
    const count = header.recordCount;
    let region = batch + BATCH_HEADER_BYTES;
    let regionLen = size - BATCH_HEADER_BYTES;
    switch (header.compression) {
      case Compression.none:
        break;
      case Compression.gzip: {
        let plain: Buffer;
        try {
          plain = gunzipSync(batchBytes.subarray(BATCH_HEADER_BYTES), {
            maxOutputLength: coreLimits.maxDecompressedBytes,
          });
        } catch (e) {
          const tooBig = (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
          throw new CoreError(
            tooBig ? 'TOO_LARGE' : 'CORRUPT_BATCH',
            tooBig
              ? `gzip records exceed coreLimits.maxDecompressedBytes (${coreLimits.maxDecompressedBytes})`
              : `gzip records do not decompress: ${(e as Error).message}`,
            BATCH_HEADER_BYTES,
          );
        }
        region = w.put(plain);
        regionLen = plain.length;
        break;
      }
      case Compression.lz4: {
        const [at, len] = lz4DecompressTo(
          region,
          regionLen,
          coreLimits.maxDecompressedBytes,
          BATCH_HEADER_BYTES,
        );
        region = at;
        regionLen = len;
        break;
      }
      default:
        throw new CoreError(
          'UNSUPPORTED',
          `compression codec ${header.compression} is not supported (none, gzip, lz4)`,
        );
    }
    const table = w.alloc(count * RECORD_ENTRY_BYTES);
    const walked = x.walkBatchRecords(batch, region, regionLen, table);
    if (walked < 0)
      throw w.error(walked, region, header.compression ? 'in the decompressed records' : undefined);
    return { header, count, region, regionLen, table };
  }

  function checkRecords(batchBytes: Uint8Array): RecordsCheck {
    const { count, regionLen, table } = walkRecords(batchBytes, 'checkRecords input');
    const dv = w.dv;
    let maxRecordBytes = 0;
    for (let i = 0; i < count; i++) {
      const e = table + i * RECORD_ENTRY_BYTES;
      const bytes =
        Math.max(0, dv.getInt32(e + E.keyLen, true)) +
        Math.max(0, dv.getInt32(e + E.valueLen, true)) +
        (dv.getInt32(e + E.recordEnd, true) - dv.getInt32(e + E.headersPos, true));
      if (bytes > maxRecordBytes) maxRecordBytes = bytes;
    }
    return { recordCount: count, maxRecordBytes, uncompressedBytes: regionLen };
  }

  function decodeRecords(batchBytes: Uint8Array): DecodedRecord[] {
    const { header, count, region, regionLen, table } = walkRecords(batchBytes, 'decodeRecords input');
    // One copy of the records region; keys, values and header values are views into it.
    const own = w.copyOut(region, regionLen);
    const dv = w.dv;
    const out: DecodedRecord[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const e = table + i * RECORD_ENTRY_BYTES;
      const keyPos = dv.getInt32(e + E.keyPos, true);
      const valuePos = dv.getInt32(e + E.valuePos, true);
      const headerCount = dv.getInt32(e + E.headerCount, true);
      out[i] = {
        offset: header.baseOffset + dv.getInt32(e + E.offsetDelta, true),
        timestamp: dv.getFloat64(e + E.timestamp, true),
        key: keyPos < 0 ? null : own.subarray(keyPos, keyPos + dv.getInt32(e + E.keyLen, true)),
        value: valuePos < 0 ? null : own.subarray(valuePos, valuePos + dv.getInt32(e + E.valueLen, true)),
        headers: headerCount === 0 ? [] : readHeaders(own, dv.getInt32(e + E.headersPos, true), headerCount),
      };
    }
    return out;
  }

  function buildIndex(buf: Uint8Array, o: IndexBuildOptions): IndexEntries {
    checkInput(buf, 'buildIndex input');
    const startPosition = o.startPosition ?? 0;
    const since = o.bytesSinceLastEntry ?? 0;
    for (const [name, v] of [
      ['segmentBaseOffset', o.segmentBaseOffset],
      ['intervalBytes', o.intervalBytes],
      ['startPosition', startPosition],
      ['bytesSinceLastEntry', since],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0)
        throw new RangeError(`buildIndex: ${name} must be a non-negative integer`);
    }
    w.reset();
    const p = w.put(buf);
    const capacity = Math.floor(buf.length / BATCH_HEADER_BYTES) + 1;
    const rel = w.alloc(capacity * 4);
    const pos = w.alloc(capacity * 4);
    const ord = w.alloc(capacity * 4);
    const n = x.buildIndex(
      p,
      buf.length,
      o.segmentBaseOffset,
      startPosition,
      since,
      o.intervalBytes,
      rel,
      pos,
      ord,
      capacity,
    );
    if (n < 0) throw w.error(n, p);
    const copy = (at: number) => new Uint32Array(w.u8.slice(at, at + n * 4).buffer);
    return {
      relativeOffsets: copy(rel),
      positions: copy(pos),
      batchOrdinals: copy(ord),
      bytesSinceLastEntry: w.f64(R.indexBytesSince),
    };
  }

  function xxhash32(bytes: Uint8Array, seed?: number): number {
    checkInput(bytes, 'xxhash32 input');
    w.reset();
    const p = w.put(bytes);
    return x.xxhash32(p, bytes.length, u32(seed)) >>> 0;
  }

  /** Frames [ptr, ptr+len) of the arena (already there) and returns a copy of the frame. */
  function lz4CompressFrom(ptr: number, len: number, o: Lz4CompressOptions): Uint8Array {
    const id = BLOCK_SIZE_IDS.get(o.blockSize ?? 65536);
    if (id === undefined)
      throw new RangeError(`lz4: blockSize must be 64 KiB, 256 KiB, 1 MiB or 4 MiB, not ${o.blockSize}`);
    const flags =
      (o.blockChecksum ? WANT_BLOCK_CHECKSUM : 0) |
      ((o.contentChecksum ?? true) ? WANT_CONTENT_CHECKSUM : 0) |
      (o.contentSize ? WANT_CONTENT_SIZE : 0);
    const out = w.alloc(x.lz4FrameBound(len, id));
    const n = x.lz4FrameCompress(ptr, len, out, id, flags, acceleration(o.acceleration));
    return w.copyOut(out, n);
  }

  /**
   * Decompresses the frames at [ptr, ptr+len) into a new arena region, growing it as
   * needed up to `limit` bytes. Error positions are reported as `positionBase` + the
   * position in the frame. Returns [address, size] of the output in the arena.
   */
  function lz4DecompressTo(ptr: number, len: number, limit: number, positionBase: number): [number, number] {
    let cap = Math.min(limit, Math.max(64 * 1024, len * 4));
    const out = w.alloc(cap);
    let status = x.lz4FrameDecompress(ptr, len, out, cap, 0);
    while (status === -NEED_OUTPUT) {
      if (cap >= limit) {
        throw new CoreError(
          'LZ4_LIMIT',
          `LZ4 output would exceed ${limit} bytes`,
          positionBase + w.i32(R.lz4InPos),
        );
      }
      // Grow geometrically, or straight to the size the frame header announced.
      const hint = w.f64(R.lz4SizeHint);
      const produced = w.i32(R.lz4OutPos);
      cap = Math.min(limit, Math.max(cap * 2, cap + 65536, hint > 0 ? produced + hint : 0));
      w.extend(out, cap);
      status = x.lz4FrameDecompress(ptr, len, out, cap, 1);
    }
    if (status < 0) throw w.error(status, ptr - positionBase);
    return [out, w.i32(R.lz4OutPos)];
  }

  function lz4Compress(bytes: Uint8Array, o: Lz4CompressOptions = {}): Uint8Array {
    checkInput(bytes, 'lz4Compress input');
    w.reset();
    return lz4CompressFrom(w.put(bytes), bytes.length, o);
  }

  function lz4Decompress(frame: Uint8Array, o: Lz4DecompressOptions = {}): Uint8Array {
    checkInput(frame, 'lz4Decompress input');
    const limit = outputLimit(o.maxOutputBytes ?? coreLimits.maxDecompressedBytes);
    w.reset();
    const [out, n] = lz4DecompressTo(w.put(frame), frame.length, limit, 0);
    return w.copyOut(out, n);
  }

  function lz4CompressBlock(bytes: Uint8Array, accel?: number): Uint8Array {
    checkInput(bytes, 'lz4CompressBlock input');
    w.reset();
    const p = w.put(bytes);
    const out = w.alloc(x.lz4CompressBound(bytes.length));
    const n = x.lz4CompressBlock(p, bytes.length, out, acceleration(accel));
    return w.copyOut(out, n);
  }

  function lz4DecompressBlock(block: Uint8Array, maxOutputBytes: number): Uint8Array {
    checkInput(block, 'lz4DecompressBlock input');
    // A block cannot expand more than 255× (each length byte adds at most 255 bytes),
    // so the output region never needs more than that, whatever limit the caller gave.
    const cap = Math.min(outputLimit(maxOutputBytes), block.length * 255 + 64);
    w.reset();
    const p = w.put(block);
    const out = w.alloc(cap);
    const n = x.lz4DecompressBlock(p, block.length, out, cap);
    if (n < 0) throw w.error(n, p);
    return w.copyOut(out, n);
  }

  return {
    crc32c,
    xxhash32,
    lz4Compress,
    lz4Decompress,
    lz4CompressBlock,
    lz4DecompressBlock,
    scanBatches,
    readBatchHeader,
    stampBatch,
    encodeBatch,
    decodeRecords,
    checkRecords,
    buildIndex,
    searchIndex,
  };
}

const isBytesOrNull = (v: unknown) => v === null || v instanceof Uint8Array;

/** Shape checks for one record given to encodeBatch (the types are not enforced at run time). */
function checkRecord(r: RecordInput, i: number): void {
  const bad = (what: string) => new CoreError('CORRUPT_BATCH', `record ${i}: ${what}`);
  if (r === null || typeof r !== 'object') throw bad('not an object');
  if (r.key !== undefined && !isBytesOrNull(r.key)) throw bad('key must be a Uint8Array or null');
  if (!isBytesOrNull(r.value)) throw bad('value must be a Uint8Array or null');
  if (r.headers !== undefined) {
    if (!Array.isArray(r.headers)) throw bad('headers must be an array');
    for (const h of r.headers) {
      if (h === null || typeof h !== 'object' || typeof h.key !== 'string' || !isBytesOrNull(h.value)) {
        throw bad('a header needs a string key and a Uint8Array or null value');
      }
    }
  }
}

function writeBytes(u8: Uint8Array, p: number, bytes: Uint8Array | null): number {
  if (bytes === null) return writeZigzag(u8, p, -1);
  p = writeZigzag(u8, p, bytes.length);
  u8.set(bytes, p);
  return p + bytes.length;
}

function setInt64(dv: DataView, at: number, v: number): void {
  // Two's complement split for -2^53 < v < 2^53.
  const hi = Math.floor(v / 4294967296);
  dv.setInt32(at, hi);
  dv.setUint32(at + 4, v - hi * 4294967296);
}

function readHeaders(own: Uint8Array, p: number, count: number): RecordHeader[] {
  const headers: RecordHeader[] = new Array(count);
  for (let h = 0; h < count; h++) {
    const k = readZigzag(own, p);
    const key = utf8Decoder.decode(own.subarray(k.next, k.next + k.value));
    const v = readZigzag(own, k.next + k.value);
    const value = v.value < 0 ? null : own.subarray(v.next, v.next + v.value);
    p = v.value < 0 ? v.next : v.next + v.value;
    headers[h] = { key, value };
  }
  return headers;
}

/** Binary search: the last slot in relativeOffsets[0..count) whose value is ≤ target; -1 if none. */
export function searchIndex(relativeOffsets: Uint32Array, count: number, relativeOffset: number): number {
  if (!Number.isInteger(count) || count < 0 || count > relativeOffsets.length) {
    throw new RangeError(`searchIndex: count ${count} is not within 0..${relativeOffsets.length}`);
  }
  // Invariant: every slot < lo holds ≤ target, every slot ≥ hi holds > target.
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (relativeOffsets[mid]! <= relativeOffset) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
