// A state folded from one partition's records, kept current: what a service uses to
// share state between its instances through a stream, and to rebuild a crashed instance.
//
//   start:  state, offset ← newest snapshot (or initial(), the partition's first offset)
//   loop:   read from offset (long poll) → state = reducer(state, record) for each record,
//           offset ← the read's next offset → every snapshotEvery records, save a snapshot
//
// `offset` is the view's position: every record below it is reflected in `state`, and
// none at or above it. Reads return committed records only, so a view never reflects an
// append that could still be lost, and two views at the same offset hold the same state
// (given a deterministic reducer).
import { CairnClientError } from './errors.js';
import { sleep } from './router.js';
import type { SnapshotStore } from './snapshot-store.js';
import type { ConsumedRecord, ReadOptions, ReadResult } from './types.js';

export type Reducer<S> = (state: S, record: ConsumedRecord) => S;

export interface MaterializeOptions<S> {
  /** The state before any record (called again for every rebuild). */
  initial: () => S;
  /** The partition to follow (default 0). */
  partition?: number;
  /** Where snapshots go; without one every start replays the log from its beginning. */
  snapshotStore?: SnapshotStore;
  /** Save a snapshot after this many records were applied since the last one (0 = only on close/snapshot()). */
  snapshotEvery?: number;
  /** The key in the store (default `<stream>/<partition>`). */
  snapshotKey?: string;
  /** State ↔ bytes for snapshots; default JSON (plain objects, arrays, strings, numbers). */
  encode?: (state: S) => Uint8Array;
  decode?: (bytes: Uint8Array) => S;
  /** Long-poll wait of each read when the view is at the end of the partition. */
  maxWaitMs?: number;
  /** Called on every transient read failure (the view retries) and on a snapshot it had to ignore. */
  onWarning?: (err: Error) => void;
}

export interface Materialized<S> {
  /** The current state; reflects every record below `offset`. */
  readonly state: S;
  /** The next offset to apply. */
  readonly offset: number;
  /** Resolves once the starting point (snapshot or beginning) is loaded; rejects if it cannot be. */
  readonly ready: Promise<void>;
  /** Why the view stopped for good (a reducer that threw, a stream deleted, records lost to retention). */
  readonly error: Error | undefined;
  /** Resolves once the record at `offset` is reflected (this.offset > offset). */
  waitFor(offset: number, timeoutMs?: number): Promise<void>;
  /** Resolves once everything committed when it was called is reflected (asks the leader). */
  catchUp(timeoutMs?: number): Promise<void>;
  /** Saves a snapshot of the current state now. */
  snapshot(): Promise<void>;
  /** Stops following; saves a last snapshot when there is a store and something new to save. */
  close(): Promise<void>;
}

/** What a view needs from the client. */
export interface ViewContext {
  read(partition: number, o: ReadOptions, signal: AbortSignal): Promise<ReadResult>;
  offsets(partition: number): Promise<{ logStartOffset: number; highWatermark: number }>;
  closing: AbortSignal;
  backoffMs(failures: number): number;
}

const DEFAULT_WAIT_FOR_MS = 30_000;
const DEFAULT_MAX_WAIT_MS = 1_000;

/** Snapshot file layout: magic, then a JSON header line, then the state bytes. */
const MAGIC = 'cairn-snapshot-v1\n';

interface SnapshotHeader {
  stream: string;
  partition: number;
  offset: number;
  stateBytes: number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

function encodeSnapshot(h: SnapshotHeader, state: Uint8Array): Uint8Array {
  const head = utf8.encode(`${MAGIC}${JSON.stringify(h)}\n`);
  const out = new Uint8Array(head.length + state.length);
  out.set(head, 0);
  out.set(state, head.length);
  return out;
}

function decodeSnapshot(bytes: Uint8Array): { header: SnapshotHeader; state: Uint8Array } {
  const magic = utf8.encode(MAGIC);
  if (bytes.length < magic.length || !magic.every((b, i) => bytes[i] === b))
    throw new Error('not a snapshot');
  const nl = bytes.indexOf(10, magic.length);
  if (nl < 0) throw new Error('snapshot header is cut off');
  const header = JSON.parse(fromUtf8.decode(bytes.subarray(magic.length, nl))) as SnapshotHeader;
  if (
    typeof header !== 'object' ||
    !Number.isSafeInteger(header.offset) ||
    header.offset < 0 ||
    !Number.isSafeInteger(header.stateBytes)
  )
    throw new Error('snapshot header is malformed');
  const state = bytes.subarray(nl + 1);
  // A length check catches a truncated file (a store that does not save atomically).
  if (state.length !== header.stateBytes)
    throw new Error(`snapshot holds ${state.length} state bytes, its header says ${header.stateBytes}`);
  return { header, state };
}

const jsonEncode = (s: unknown) => utf8.encode(JSON.stringify(s));
const jsonDecode = (b: Uint8Array) => JSON.parse(fromUtf8.decode(b));

/** Errors a view waits out: the cluster or a node is down, or a leader is being elected. */
const TRANSIENT = new Set(['UNAVAILABLE', 'TIMEOUT', 'NOT_LEADER', 'INTERNAL']);

class View<S> implements Materialized<S> {
  state: S;
  offset = 0;
  error: Error | undefined;
  readonly ready: Promise<void>;
  private readonly partition: number;
  private readonly key: string;
  private readonly stop = new AbortController();
  private readonly loop: Promise<void>;
  private waiters: { offset: number; resolve(): void; reject(e: Error): void }[] = [];
  private sinceSnapshot = 0;
  private savedOffset = -1;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: ViewContext,
    private readonly stream: string,
    private readonly reducer: Reducer<S>,
    private readonly o: MaterializeOptions<S>,
  ) {
    this.partition = o.partition ?? 0;
    this.key = o.snapshotKey ?? `${stream}/${this.partition}`;
    this.state = o.initial();
    const onClosing = () => this.stop.abort();
    if (ctx.closing.aborted) this.stop.abort();
    else ctx.closing.addEventListener('abort', onClosing, { once: true });
    this.ready = this.load();
    this.loop = this.ready
      .then(() => this.run())
      .catch((err: Error) => this.failed(err))
      .finally(() => ctx.closing.removeEventListener('abort', onClosing));
    // `ready` rejections are reported through `error` and waiters too; do not crash on them.
    this.ready.catch(() => {});
  }

  private async load(): Promise<void> {
    const bytes = await this.o.snapshotStore?.load(this.key);
    if (bytes !== undefined) {
      try {
        const { header, state } = decodeSnapshot(bytes);
        if (header.stream !== this.stream || header.partition !== this.partition)
          throw new Error(`it is of ${header.stream}/${header.partition}`);
        this.state = (this.o.decode ?? jsonDecode)(state) as S;
        this.offset = header.offset;
        this.savedOffset = header.offset;
        return;
      } catch (err) {
        // Replaying the log gives the same state, only slower.
        this.o.onWarning?.(new Error(`snapshot '${this.key}' ignored: ${(err as Error).message}`));
        this.state = this.o.initial();
      }
    }
    this.offset = (await this.ctx.offsets(this.partition)).logStartOffset;
  }

  private async run(): Promise<void> {
    const maxWaitMs = this.o.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    let failures = 0;
    while (!this.stop.signal.aborted) {
      let r: ReadResult;
      try {
        r = await this.ctx.read(this.partition, { offset: this.offset, maxWaitMs }, this.stop.signal);
        failures = 0;
      } catch (err) {
        if (this.stop.signal.aborted) return;
        if (!(err instanceof CairnClientError) || !TRANSIENT.has(err.code)) throw err;
        this.o.onWarning?.(err);
        await sleep(this.ctx.backoffMs(++failures), this.stop.signal);
        continue;
      }
      for (const rec of r.records) {
        try {
          this.state = this.reducer(this.state, rec);
        } catch (err) {
          throw new Error(
            `the reducer threw at ${this.stream}/${this.partition} offset ${rec.offset}: ${(err as Error).message}`,
            { cause: err },
          );
        }
        this.offset = rec.offset + 1;
        this.sinceSnapshot++;
      }
      this.offset = Math.max(this.offset, r.nextOffset);
      this.notify();
      const every = this.o.snapshotEvery ?? 0;
      if (every > 0 && this.sinceSnapshot >= every && this.o.snapshotStore !== undefined)
        await this.snapshot();
    }
  }

  private notify(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.offset < this.offset);
    this.waiters = this.waiters.filter((w) => w.offset >= this.offset);
    for (const w of ready) w.resolve();
  }

  private failed(err: Error): void {
    if (this.stop.signal.aborted && this.error === undefined) return;
    this.error = err;
    this.stop.abort();
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  waitFor(offset: number, timeoutMs = DEFAULT_WAIT_FOR_MS): Promise<void> {
    if (this.offset > offset) return Promise.resolve();
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.stop.signal.aborted)
      return Promise.reject(new CairnClientError('UNAVAILABLE', 'the view is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new CairnClientError(
            'TIMEOUT',
            `${this.stream}/${this.partition} view did not reach offset ${offset} within ${timeoutMs} ms (it is at ${this.offset})`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        offset,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  async catchUp(timeoutMs = DEFAULT_WAIT_FOR_MS): Promise<void> {
    const { highWatermark } = await this.ctx.offsets(this.partition);
    if (highWatermark > 0) await this.waitFor(highWatermark - 1, timeoutMs);
  }

  snapshot(): Promise<void> {
    const store = this.o.snapshotStore;
    if (store === undefined) return Promise.reject(new Error('this view has no snapshot store'));
    // Encoded now, synchronously: the bytes are the state at exactly this offset.
    const offset = this.offset;
    if (offset === this.savedOffset) return this.saving;
    const state = (this.o.encode ?? jsonEncode)(this.state);
    const bytes = encodeSnapshot(
      { stream: this.stream, partition: this.partition, offset, stateBytes: state.length },
      state,
    );
    this.sinceSnapshot = 0;
    // One save at a time, in order, so an older snapshot never overwrites a newer one.
    this.saving = this.saving
      .catch(() => {})
      .then(() => store.save(this.key, bytes))
      .then(() => {
        this.savedOffset = Math.max(this.savedOffset, offset);
      });
    return this.saving;
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    for (const w of this.waiters.splice(0))
      w.reject(new CairnClientError('UNAVAILABLE', 'the view was closed'));
    if (this.o.snapshotStore !== undefined && this.error === undefined && this.offset !== this.savedOffset)
      await this.snapshot();
    await this.saving;
  }
}

export function materialize<S>(
  ctx: ViewContext,
  stream: string,
  reducer: Reducer<S>,
  options: MaterializeOptions<S>,
): Materialized<S> {
  if (typeof options?.initial !== 'function') throw new TypeError('materialize needs options.initial()');
  const every = options.snapshotEvery ?? 0;
  if (!Number.isInteger(every) || every < 0) throw new TypeError('snapshotEvery must be an integer ≥ 0');
  return new View(ctx, stream, reducer, options);
}
