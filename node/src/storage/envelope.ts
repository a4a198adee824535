// A CRC'd envelope for the small files storage rewrites whole (hard state, manifest,
// snapshot state): magic u32 | version u16 | reserved u16 | payload length u32 | payload |
// crc32c u32 of everything before it. Big-endian, like the batches.
import type { Core } from '../../../core-wasm/src/api.js';

const HEADER_BYTES = 12;
const CRC_BYTES = 4;
export const ENVELOPE_VERSION = 1;

/** Four ASCII characters as a u32 (file magics). */
export function magic(tag: string): number {
  if (tag.length !== 4) throw new Error(`magic tag must be 4 characters: ${tag}`);
  return (
    ((tag.charCodeAt(0) << 24) | (tag.charCodeAt(1) << 16) | (tag.charCodeAt(2) << 8) | tag.charCodeAt(3)) >>>
    0
  );
}

export function sealEnvelope(core: Core, magicValue: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length + CRC_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, magicValue);
  view.setUint16(4, ENVELOPE_VERSION);
  view.setUint32(8, payload.length);
  out.set(payload, HEADER_BYTES);
  view.setUint32(HEADER_BYTES + payload.length, core.crc32c(out.subarray(0, HEADER_BYTES + payload.length)));
  return out;
}

/** The payload, or why the bytes are not a whole, intact envelope of this kind. */
export function openEnvelope(
  core: Core,
  magicValue: number,
  bytes: Uint8Array,
): { ok: true; payload: Uint8Array } | { ok: false; why: string } {
  if (bytes.length < HEADER_BYTES + CRC_BYTES) return { ok: false, why: `only ${bytes.length} bytes` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== magicValue) return { ok: false, why: 'bad magic' };
  if (view.getUint16(4) !== ENVELOPE_VERSION)
    return { ok: false, why: `unknown version ${view.getUint16(4)}` };
  const length = view.getUint32(8);
  if (HEADER_BYTES + length + CRC_BYTES !== bytes.length)
    return { ok: false, why: `length ${length} does not match file size ${bytes.length}` };
  const crc = view.getUint32(HEADER_BYTES + length);
  if (core.crc32c(bytes.subarray(0, HEADER_BYTES + length)) !== crc)
    return { ok: false, why: 'CRC mismatch' };
  return { ok: true, payload: bytes.subarray(HEADER_BYTES, HEADER_BYTES + length) };
}

/** A JSON envelope's value, or why the bytes are not one: the CRC, the JSON and `isValue` must all pass. */
export function openJsonEnvelope<T>(
  core: Core,
  magicValue: number,
  bytes: Uint8Array,
  isValue: (x: unknown) => x is T,
): { ok: true; value: T } | { ok: false; why: string } {
  const env = openEnvelope(core, magicValue, bytes);
  if (!env.ok) return env;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(env.payload));
  } catch {
    return { ok: false, why: 'payload is not JSON' };
  }
  return isValue(parsed) ? { ok: true, value: parsed } : { ok: false, why: 'fields out of range' };
}
