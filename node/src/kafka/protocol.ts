// The Kafka wire protocol's primitive types, read and written (the protocol guide's
// "Protocol Primitive Types"): big-endian integers, zig-zag varints, strings and byte
// arrays with int16/int32 lengths or, in flexible versions, unsigned-varint lengths plus one
// ("compact"), arrays likewise, and tagged fields (skipped when read, none written).
// A Reader never reads past its frame: anything malformed is a KafkaProtocolError, which
// closes that one connection.

/** A frame that does not parse as the request it says it is. */
export class KafkaProtocolError extends Error {
  override readonly name = 'KafkaProtocolError';
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export class Reader {
  private readonly view: DataView;
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    pos = 0,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length)
      throw new KafkaProtocolError(`truncated request: needs ${n} more bytes at ${this.pos}`);
  }

  int8(): number {
    this.need(1);
    return this.view.getInt8(this.pos++);
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    this.need(2);
    const v = this.view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }

  /** An int64 as a number: offsets, ids and timestamps all stay below 2^53 here. */
  int64(): number {
    this.need(8);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
      throw new KafkaProtocolError(`int64 ${v} is out of range`);
    return Number(v);
  }

  uvarint(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = this.int8() & 0xff;
      if (shift === 28 && b > 0x0f) throw new KafkaProtocolError('unsigned varint is too long');
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  }

  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  private text(n: number): string {
    this.need(n);
    try {
      const s = decoder.decode(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      return s;
    } catch {
      throw new KafkaProtocolError('a string is not valid UTF-8');
    }
  }

  string(): string {
    const s = this.nullableString();
    if (s === null) throw new KafkaProtocolError('a required string is null');
    return s;
  }

  nullableString(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    if (n < 0) throw new KafkaProtocolError(`bad string length ${n}`);
    return this.text(n);
  }

  compactString(): string {
    const s = this.compactNullableString();
    if (s === null) throw new KafkaProtocolError('a required string is null');
    return s;
  }

  compactNullableString(): string | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.text(n - 1);
  }

  /** Bytes with an int32 length (-1 = null); a view of the frame, not a copy. */
  nullableBytes(): Uint8Array | null {
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0) throw new KafkaProtocolError(`bad bytes length ${n}`);
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  compactNullableBytes(): Uint8Array | null {
    const n = this.uvarint();
    if (n === 0) return null;
    this.need(n - 1);
    const b = this.buf.subarray(this.pos, this.pos + n - 1);
    this.pos += n - 1;
    return b;
  }

  /** An array with an int32 count (-1 = null); every element takes at least a byte. */
  nullableArray<T>(item: (r: Reader) => T): T[] | null {
    const n = this.int32();
    if (n === -1) return null;
    return this.items(n, item);
  }

  array<T>(item: (r: Reader) => T): T[] {
    const a = this.nullableArray(item);
    if (a === null) throw new KafkaProtocolError('a required array is null');
    return a;
  }

  compactNullableArray<T>(item: (r: Reader) => T): T[] | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.items(n - 1, item);
  }

  compactArray<T>(item: (r: Reader) => T): T[] {
    const a = this.compactNullableArray(item);
    if (a === null) throw new KafkaProtocolError('a required array is null');
    return a;
  }

  private items<T>(n: number, item: (r: Reader) => T): T[] {
    // A count the frame cannot hold is refused before anything is allocated for it.
    if (n < 0 || n > this.remaining) throw new KafkaProtocolError(`bad array length ${n}`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item(this));
    return out;
  }

  /** Tagged fields (flexible versions): none is known here, so all are skipped. */
  skipTags(): void {
    const n = this.uvarint();
    if (n > this.remaining) throw new KafkaProtocolError(`bad tagged field count ${n}`);
    for (let i = 0; i < n; i++) {
      this.uvarint(); // tag
      const size = this.uvarint();
      this.need(size);
      this.pos += size;
    }
  }
}

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  int8(v: number): this {
    this.room(1);
    this.view.setInt8(this.pos++, v);
    return this;
  }

  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }

  int16(v: number): this {
    this.room(2);
    this.view.setInt16(this.pos, v);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.room(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
    return this;
  }

  int64(v: number): this {
    this.room(8);
    this.view.setBigInt64(this.pos, BigInt(v));
    this.pos += 8;
    return this;
  }

  uvarint(v: number): this {
    let x = v;
    while (x >= 0x80) {
      this.int8((x % 0x80) | 0x80);
      x = Math.floor(x / 0x80);
    }
    return this.int8(x);
  }

  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  string(s: string): this {
    const b = encoder.encode(s);
    return this.int16(b.length).raw(b);
  }

  nullableString(s: string | null): this {
    return s === null ? this.int16(-1) : this.string(s);
  }

  compactString(s: string): this {
    const b = encoder.encode(s);
    return this.uvarint(b.length + 1).raw(b);
  }

  compactNullableString(s: string | null): this {
    return s === null ? this.uvarint(0) : this.compactString(s);
  }

  nullableBytes(b: Uint8Array | null): this {
    return b === null ? this.int32(-1) : this.int32(b.length).raw(b);
  }

  compactNullableBytes(b: Uint8Array | null): this {
    return b === null ? this.uvarint(0) : this.uvarint(b.length + 1).raw(b);
  }

  array<T>(items: readonly T[], item: (w: Writer, v: T) => void): this {
    this.int32(items.length);
    for (const v of items) item(this, v);
    return this;
  }

  compactArray<T>(items: readonly T[], item: (w: Writer, v: T) => void): this {
    this.uvarint(items.length + 1);
    for (const v of items) item(this, v);
    return this;
  }

  /** No tagged fields. */
  tags(): this {
    return this.uvarint(0);
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}
