// Rewriting a record batch with fewer records, for key compaction. Kafka's cleaner does
// the same: the batch keeps its header (baseOffset, lastOffsetDelta, epoch, producer
// fields, timestamps, codec) and each kept record keeps its offsetDelta and
// timestampDelta, so every surviving record keeps its offset and the batch still ends
// at the same offset.
//
// core.encodeBatch numbers records 0..n-1 and derives lastOffsetDelta from the count, so
// it cannot express "records at deltas 0, 4, 9 of a batch ending at 11"; this small
// encoder does (see the report to the coordinator). The CRC and LZ4 come from the core.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Core, CorePool, DecodedRecord } from '../../../core-wasm/src/index.js';
import { BATCH_HEADER_BYTES, dataView } from './batch-fields.js';
import { invariant } from './errors.js';

const CODEC_NONE = 0;
const CODEC_GZIP = 1;
const CODEC_LZ4 = 3;
const TWO_32 = 4294967296;
const utf8 = new TextEncoder();

/** Bytes of the zigzag varint of `v` (|v| < 2^52, so plain arithmetic stays exact). */
function zigzagSize(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

function writeZigzag(out: Uint8Array, p: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    out[p++] = (z % 128) | 128;
    z = Math.floor(z / 128);
  }
  out[p++] = z;
  return p;
}

function bytesField(b: Uint8Array | null): number {
  return b === null ? zigzagSize(-1) : zigzagSize(b.length) + b.length;
}

function writeBytesField(out: Uint8Array, p: number, b: Uint8Array | null): number {
  if (b === null) return writeZigzag(out, p, -1);
  p = writeZigzag(out, p, b.length);
  out.set(b, p);
  return p + b.length;
}

/** Whether this codec can be rewritten here (snappy and zstd batches are kept whole). */
export function canRewrite(attributes: number): boolean {
  const codec = attributes & 7;
  return codec === CODEC_NONE || codec === CODEC_GZIP || codec === CODEC_LZ4;
}

const gzipAsync = promisify(gzip);

/**
 * `original` (a valid batch) with only `kept` of its records (in order, a non-empty
 * subset). Compression runs off the event loop: gzip on libuv's threads, LZ4 on the pool
 * when one is given and the batch is large enough to pay for the hop.
 */
export async function rewriteBatch(
  core: Core,
  pool: CorePool | undefined,
  poolMinBytes: number,
  original: Uint8Array,
  kept: readonly DecodedRecord[],
): Promise<Uint8Array> {
  if (kept.length === 0) throw new Error('rewriteBatch: keep at least one record (drop the batch instead)');
  const hv = dataView(original);
  const baseOffset = hv.getInt32(0) * TWO_32 + hv.getUint32(4);
  const baseTimestamp = hv.getInt32(27) * TWO_32 + hv.getUint32(31);
  const codec = hv.getInt16(21) & 7;
  // Pass 1: sizes.
  const headerKeys = kept.map((r) => r.headers.map((h) => utf8.encode(h.key)));
  const bodies = kept.map((r, i) => {
    let n = 1 + zigzagSize(r.timestamp - baseTimestamp) + zigzagSize(r.offset - baseOffset);
    n += bytesField(r.key) + bytesField(r.value) + zigzagSize(r.headers.length);
    r.headers.forEach((h, j) => {
      n += bytesField(headerKeys[i]![j]!) + bytesField(h.value);
    });
    return n;
  });
  const recordsBytes = bodies.reduce((a, n) => a + zigzagSize(n) + n, 0);
  // Pass 2: the records region.
  const region = new Uint8Array(recordsBytes);
  let p = 0;
  kept.forEach((r, i) => {
    p = writeZigzag(region, p, bodies[i]!);
    region[p++] = 0; // record attributes: unused in v2
    p = writeZigzag(region, p, r.timestamp - baseTimestamp);
    p = writeZigzag(region, p, r.offset - baseOffset);
    p = writeBytesField(region, p, r.key);
    p = writeBytesField(region, p, r.value);
    p = writeZigzag(region, p, r.headers.length);
    r.headers.forEach((h, j) => {
      p = writeBytesField(region, p, headerKeys[i]![j]!);
      p = writeBytesField(region, p, h.value);
    });
  });
  invariant(p === recordsBytes, 'rewriteBatch wrote what it measured');
  const payload =
    codec === CODEC_GZIP
      ? new Uint8Array(await gzipAsync(region))
      : codec === CODEC_LZ4
        ? pool && region.length >= poolMinBytes
          ? await pool.lz4Compress(region)
          : core.lz4Compress(region)
        : region;
  const out = new Uint8Array(BATCH_HEADER_BYTES + payload.length);
  out.set(original.subarray(0, BATCH_HEADER_BYTES));
  out.set(payload, BATCH_HEADER_BYTES);
  const dv = dataView(out);
  dv.setInt32(8, out.length - 12); // batchLength
  dv.setInt32(57, kept.length); // recordCount; lastOffsetDelta (23) stays: the batch ends where it did
  dv.setUint32(17, core.crc32c(out.subarray(21)));
  return out;
}
