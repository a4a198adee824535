// Kafka's variable-length integers: protobuf-style base-128 groups, least significant
// first, with zigzag sign encoding. A varint (int32) takes at most 5 bytes, a varlong
// (int64) at most 10. Readers never look at or past `end`.
//
// AssemblyScript has no multiple return values: a reader returns the value and leaves
// the position after it in `varintNext`; on malformed or truncated input it returns 0 and
// sets `varintNext` to 0 (no valid input position is 0: the arena starts above static data).

export let varintNext: usize = 0;

/** Reads a zigzag varint (int32) at ptr; see varintNext. */
export function readVarint(ptr: usize, end: usize): i32 {
  let raw: u32 = 0;
  let shift: u32 = 0;
  while (ptr < end) {
    const b = <u32>load<u8>(ptr++);
    raw |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) {
      // The fifth byte may carry only 4 more bits of a 32-bit value.
      if (shift === 28 && b > 0x0f) break;
      varintNext = ptr;
      return <i32>((raw >>> 1) ^ (0 - (raw & 1)));
    }
    shift += 7;
    if (shift > 28) break;
  }
  varintNext = 0;
  return 0;
}

/** Reads a zigzag varlong (int64) at ptr; see varintNext. */
export function readVarlong(ptr: usize, end: usize): i64 {
  let raw: u64 = 0;
  let shift: u64 = 0;
  while (ptr < end) {
    const b = <u64>load<u8>(ptr++);
    raw |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) {
      // The tenth byte may carry only 1 more bit of a 64-bit value.
      if (shift === 63 && b > 1) break;
      varintNext = ptr;
      return <i64>((raw >>> 1) ^ (0 - (raw & 1)));
    }
    shift += 7;
    if (shift > 63) break;
  }
  varintNext = 0;
  return 0;
}
