// The run's trace: every executed event folds (time, kind, node, detail) into a 64-bit
// hash — the run's fingerprint, equal for equal seeds on every machine — and the last
// events are kept in a ring, with notes, to show what led up to a violation.

/** Event kinds, as hashed and printed. */
export const EventKind = {
  timer: 1,
  defer: 2,
  deliver: 3,
  disk: 4,
  client: 5,
  request: 6,
  response: 7,
  fault: 8,
  phase: 9,
  status: 10,
  service: 11,
} as const;
export type EventKindName = keyof typeof EventKind;

const kindNames: string[] = [];
for (const [name, code] of Object.entries(EventKind)) kindNames[code] = name;

/** Disk operations as the trace numbers them (disk.ts), for printing. */
export const DISK_OPS = [
  '',
  'open',
  'create',
  'read',
  'write',
  'fsync',
  'truncate',
  'size',
  'close',
  'rename',
  'remove',
  'list',
  'mkdir',
  'fsync dir',
  'exists',
] as const;

function describeDetail(kind: number, detail: number): string {
  switch (kind) {
    case EventKind.timer:
      return `after ${detail} ms`;
    case EventKind.disk:
      return DISK_OPS[detail] ?? String(detail);
    case EventKind.deliver:
      return `frame ${(detail >>> 0).toString(16).padStart(8, '0')}`;
    case EventKind.client:
    case EventKind.request:
    case EventKind.response:
      return detail === 0 ? 'operator' : `client ${detail}`;
    case EventKind.defer:
      return 'end of turn';
    default:
      return detail === 0 ? '' : String(detail);
  }
}

/** How many recent events the ring keeps for a failure report. */
export const TRACE_RING_EVENTS = 400;

export class Trace {
  /** Two independent 32-bit lanes (FNV-style multiply, murmur finalizer at the end). */
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193;
  events = 0;
  private readonly at = new Float64Array(TRACE_RING_EVENTS);
  private readonly kind = new Uint8Array(TRACE_RING_EVENTS);
  private readonly node = new Int32Array(TRACE_RING_EVENTS);
  private readonly detail = new Float64Array(TRACE_RING_EVENTS);
  private readonly notes: (string | undefined)[] = new Array(TRACE_RING_EVENTS);

  /** Folds one executed event into the hash and the ring. */
  record(atUs: number, kind: number, node: number, detail: number): void {
    this.mix(atUs);
    this.mix(kind | (node << 8));
    this.mix(detail);
    const i = this.events % TRACE_RING_EVENTS;
    this.at[i] = atUs;
    this.kind[i] = kind;
    this.node[i] = node;
    this.detail[i] = detail;
    this.notes[i] = undefined;
    this.events++;
  }

  /** Attaches a note to the latest event (and hashes it: notes are part of the run). */
  note(text: string): void {
    for (let k = 0; k < text.length; k++) this.mix(text.charCodeAt(k));
    if (this.events === 0) return;
    const i = (this.events - 1) % TRACE_RING_EVENTS;
    const prev = this.notes[i];
    this.notes[i] = prev === undefined ? text : `${prev}; ${text}`;
  }

  /** Folds a number (any double; integers up to 2^53 exactly) into both lanes. */
  mix(v: number): void {
    const lo = v >>> 0;
    const hi = Math.floor(v / 0x1_0000_0000) >>> 0;
    this.h1 = Math.imul(this.h1 ^ lo, 0x01000193);
    this.h1 = Math.imul(this.h1 ^ hi, 0x01000193);
    this.h2 = Math.imul(this.h2 ^ lo, 0x5bd1e995);
    this.h2 = Math.imul(this.h2 ^ (this.h2 >>> 15) ^ hi, 0x27d4eb2d);
  }

  /** The run's fingerprint so far: 16 hex digits. */
  hash(): string {
    const fin = (h: number) => {
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      return (h >>> 0).toString(16).padStart(8, '0');
    };
    return fin(this.h1 ^ Math.imul(this.events, 0x9e3779b1)) + fin(this.h2 + this.events);
  }

  /** The last `n` events, oldest first, as lines "t=12.345678s node 2 deliver 0x1f… | note". */
  last(n = 60): string[] {
    const count = Math.min(n, this.events, TRACE_RING_EVENTS);
    const out: string[] = [];
    for (let k = this.events - count; k < this.events; k++) {
      const i = k % TRACE_RING_EVENTS;
      const t = (this.at[i]! / 1e6).toFixed(6);
      const who = this.node[i]! > 0 ? `node ${this.node[i]}` : 'world ';
      const what = kindNames[this.kind[i]!] ?? `kind${this.kind[i]}`;
      const note = this.notes[i];
      const detail = describeDetail(this.kind[i]!, this.detail[i]!);
      out.push(`t=${t}s ${who} ${what.padEnd(8)} ${detail}${note === undefined ? '' : ` | ${note}`}`);
    }
    return out;
  }
}
