// A partition snapshot as a byte stream, for InstallSnapshot: the snapshot's metadata,
// the node's state blob, and the data segments below the Raft log start (offsets kept,
// batches as stored: compacted or retained). Group 0 sends the same form with its
// catalog as the state and usually no segments.
//
//   header   envelope 'CSNP' (envelope.ts) holding JSON: { meta {index, term, conf},
//            lastOffset, logStartOffset, stateBytes, stateCrc, segments [{baseOffset, bytes}] }
//   state    stateBytes bytes
//   segments each segment's bytes, in order
//
// Sender: `openSnapshotReader()` pins the segments it names (retention and compaction
// leave pinned files readable) and serves read(offset, length) at any offset, so a
// transfer can resume anywhere. Receiver: `receiveSnapshot(meta)` writes chunks in order
// to `<dir>/incoming/stream` and records the synced length in `incoming/progress`; after
// a dropped connection or a crash it resumes from `received()`. `finish()` validates the
// stream (header CRC, state CRC, every batch) and installs it atomically: a new
// generation directory is built and fsynced, then the manifest is switched to it.
import type { SnapshotMeta } from '../../../raft/src/types.js';
import { magic, openEnvelope, sealEnvelope } from './envelope.js';
import { invariant, StorageError } from './errors.js';
import {
  baseName,
  type FileHandle,
  joinPath,
  readFile,
  readFully,
  removeTree,
  removeTreeIfPossible,
  writeFileAtomic,
} from './fs.js';
import type { GroupStorage } from './group-storage.js';
import { generationDir, isManifest, type Manifest, saveManifest } from './manifest.js';
import { type RecoveryReport, recoverLog } from './recovery.js';
import { scanSegment } from './scan.js';
import { Segment } from './segment.js';
import { NO_INDEX } from './segment-index.js';

const SNAPSHOT_MAGIC = magic('CSNP');
const PROGRESS_MAGIC = magic('CSNR');
const ENVELOPE_HEADER_BYTES = 12;
const ENVELOPE_OVERHEAD_BYTES = 16;
export const INCOMING_DIR = 'incoming';

interface StreamHeader {
  meta: { index: number; term: number; conf: SnapshotMeta['conf'] };
  lastOffset: number;
  logStartOffset: number;
  stateBytes: number;
  stateCrc: number;
  segments: { baseOffset: number; bytes: number }[];
}

function isStreamHeader(h: unknown): h is StreamHeader {
  const x = h as StreamHeader;
  // Reuse the manifest's field checks for the shared parts.
  const asManifest: Manifest = {
    generation: 0,
    logStartOffset: x?.logStartOffset,
    snapshot: {
      index: x?.meta?.index,
      term: x?.meta?.term,
      conf: x?.meta?.conf,
      lastOffset: x?.lastOffset,
      stateFile: null,
      stateBytes: x?.stateBytes,
      stateCrc: x?.stateCrc,
    },
  };
  return (
    isManifest(asManifest) &&
    Array.isArray(x.segments) &&
    x.segments.every(
      (s) =>
        Number.isSafeInteger(s?.baseOffset) &&
        s.baseOffset >= 0 &&
        Number.isSafeInteger(s.bytes) &&
        s.bytes > 0,
    )
  );
}

/** The sender's side: the snapshot as a stream of `size` bytes. */
export interface SnapshotReader {
  readonly meta: SnapshotMeta;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the pinned segments. */
  close(): Promise<void>;
}

/** The receiver's side. */
export interface SnapshotWriter {
  readonly meta: SnapshotMeta;
  /** Bytes received, contiguous from 0: the offset the sender continues from. */
  received(): number;
  /** Writes `chunk` at `offset` (≤ received(); bytes already held are skipped). */
  write(offset: number, chunk: Uint8Array): Promise<void>;
  /**
   * Validates the whole stream and installs it, atomically replacing the log. Returns the
   * recovery report of the new log; its `kept` names leftovers not removed yet.
   */
  finish(): Promise<RecoveryReport>;
  /** Forgets the partial stream. */
  abort(): Promise<void>;
}

interface Section {
  at: number; // stream offset
  bytes: number;
  read: (offset: number, length: number) => Promise<Uint8Array>;
}

export async function openSnapshotReader(storage: GroupStorage): Promise<SnapshotReader> {
  const snap = storage.manifest.snapshot;
  const loaded = await storage.loadSnapshot();
  const state = loaded.state ?? new Uint8Array(0);
  const startOffset = snap.lastOffset + 1;
  // The data: every segment with offsets below the Raft log start, the last one cut at it.
  const pinned: Segment[] = [];
  const segments: { seg: Segment; file: FileHandle; bytes: number }[] = [];
  // The segment holding the first Raft entry is cut where that entry starts.
  let cutSegment: Segment | null = null;
  let cutPosition = 0;
  if (storage.firstIndex() <= storage.lastIndex()) {
    const loc = storage.locate(storage.firstIndex());
    cutSegment = loc.segment;
    cutPosition = loc.position;
  }
  for (const seg of storage.segments) {
    if (seg.baseOffset >= startOffset) break;
    const bytes = seg === cutSegment ? cutPosition : seg.size;
    if (bytes === 0) continue;
    invariant(bytes <= seg.diskBytes && seg.file !== null, 'snapshot data is on disk');
    storage.pin(seg);
    pinned.push(seg);
    segments.push({ seg, file: seg.file, bytes });
  }
  const header: StreamHeader = {
    meta: { index: snap.index, term: snap.term, conf: snap.conf },
    lastOffset: snap.lastOffset,
    logStartOffset: storage.logStartOffset(),
    stateBytes: state.length,
    stateCrc: storage.core.crc32c(state),
    segments: segments.map((s) => ({ baseOffset: s.seg.baseOffset, bytes: s.bytes })),
  };
  const headerBytes = sealEnvelope(
    storage.core,
    SNAPSHOT_MAGIC,
    new TextEncoder().encode(JSON.stringify(header)),
  );
  const sections: Section[] = [];
  let at = 0;
  const add = (bytes: number, read: Section['read']): void => {
    sections.push({ at, bytes, read });
    at += bytes;
  };
  add(headerBytes.length, async (o, n) => headerBytes.subarray(o, o + n));
  if (state.length > 0) add(state.length, async (o, n) => state.subarray(o, o + n));
  for (const s of segments) add(s.bytes, (o, n) => readFully(s.file, o, n));
  const size = at;
  let closed = false;
  return {
    meta: { index: snap.index, term: snap.term, conf: snap.conf, size },
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (closed) throw new StorageError('CLOSED', 'snapshot reader is closed');
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset > size
      )
        throw new StorageError(
          'INVALID_ARGUMENT',
          `snapshot read (${offset}, ${length}) outside [0, ${size}]`,
        );
      const end = Math.min(size, offset + length);
      const out = new Uint8Array(end - offset);
      for (const s of sections) {
        const lo = Math.max(offset, s.at);
        const hi = Math.min(end, s.at + s.bytes);
        if (lo >= hi) continue;
        const part = await s.read(lo - s.at, hi - lo);
        if (part.length !== hi - lo) throw new StorageError('CORRUPT', 'snapshot data shorter than recorded');
        out.set(part, lo - offset);
      }
      return out;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const seg of pinned) storage.unpin(seg);
    },
  };
}

function sameMeta(
  a: { index: number; term: number; size: number },
  b: { index: number; term: number; size: number },
): boolean {
  return a.index === b.index && a.term === b.term && a.size === b.size;
}

function checkMeta(meta: SnapshotMeta): void {
  for (const k of ['index', 'term', 'size'] as const)
    if (!Number.isSafeInteger(meta[k]) || meta[k] < 0)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `snapshot ${k} must be a non-negative integer, got ${String(meta[k])}`,
      );
  if (meta.size < ENVELOPE_OVERHEAD_BYTES)
    throw new StorageError('BAD_SNAPSHOT', `snapshot size ${meta.size} is too small`);
}

export async function receiveSnapshot(storage: GroupStorage, meta: SnapshotMeta): Promise<SnapshotWriter> {
  checkMeta(meta);
  const { fs, core, dir, options } = storage;
  const inDir = joinPath(dir, INCOMING_DIR);
  const streamPath = joinPath(inDir, 'stream');
  const progressPath = joinPath(inDir, 'progress');

  // Resume a matching partial stream; anything else there is stale.
  let synced = 0;
  const progress = await readFile(fs, progressPath).catch(() => null);
  const env = progress ? openEnvelope(core, PROGRESS_MAGIC, progress) : null;
  let resumed = false;
  if (env?.ok) {
    try {
      const p = JSON.parse(new TextDecoder().decode(env.payload)) as {
        meta: SnapshotMeta;
        syncedBytes: number;
      };
      if (
        sameMeta(p.meta, meta) &&
        Number.isSafeInteger(p.syncedBytes) &&
        p.syncedBytes <= meta.size &&
        (await fs.exists(streamPath))
      ) {
        synced = p.syncedBytes;
        resumed = true;
      }
    } catch {
      // not ours: start over
    }
  }
  if (!resumed) {
    // A remnant of an open file may keep the old directory (and it); the new stream's files are new.
    await removeTreeIfPossible(fs, inDir);
    await fs.mkdir(inDir);
    await fs.syncDir(dir);
  }
  const file = await fs.open(streamPath, { create: true });
  // Bytes past the recorded progress may be torn: drop them (durably) and continue from there.
  await file.truncate(synced);
  await file.sync();
  const saveProgress = async (syncedBytes: number): Promise<void> => {
    const payload = new TextEncoder().encode(
      JSON.stringify({ meta: { index: meta.index, term: meta.term, size: meta.size }, syncedBytes }),
    );
    await writeFileAtomic(fs, progressPath, sealEnvelope(core, PROGRESS_MAGIC, payload));
  };
  if (!resumed) {
    await fs.syncDir(inDir);
    await saveProgress(0);
  }

  let received = synced;
  let done = false;
  let chain: Promise<void> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
  const live = (): void => {
    if (done) throw new StorageError('CLOSED', 'snapshot writer is finished');
  };

  return {
    meta,
    received: () => received,
    write: (offset, chunk) =>
      serial(async () => {
        live();
        if (!Number.isSafeInteger(offset) || offset < 0 || !(chunk instanceof Uint8Array))
          throw new StorageError('INVALID_ARGUMENT', `bad snapshot chunk at ${offset}`);
        if (offset > received)
          throw new StorageError(
            'BAD_SNAPSHOT',
            `chunk at ${offset} leaves a gap after ${received} received bytes`,
          );
        if (offset + chunk.length > meta.size)
          throw new StorageError(
            'BAD_SNAPSHOT',
            `chunk at ${offset} of ${chunk.length} bytes runs past the size ${meta.size}`,
          );
        const fresh = chunk.subarray(received - offset);
        if (fresh.length === 0) return;
        await file.write(fresh, received);
        received += fresh.length;
        if (received - synced >= options.snapshotSyncIntervalBytes) {
          await file.sync();
          synced = received;
          await saveProgress(synced);
        }
      }),
    finish: () =>
      serial(async () => {
        live();
        if (received !== meta.size)
          throw new StorageError('BAD_SNAPSHOT', `snapshot incomplete: ${received} of ${meta.size} bytes`);
        await file.sync();
        const report = await installSnapshot(storage, meta, file);
        done = true;
        await file.close();
        // The stream's directory is a leftover now: the next receive or recovery retries.
        if (!(await removeTreeIfPossible(fs, inDir))) report.kept.push(baseName(inDir));
        await fs.syncDir(dir);
        return report;
      }),
    abort: () =>
      serial(async () => {
        done = true;
        await file.close();
        await removeTreeIfPossible(fs, inDir);
      }),
  };
}

async function parseHeader(
  storage: GroupStorage,
  meta: SnapshotMeta,
  file: FileHandle,
): Promise<{ header: StreamHeader; headerBytes: number }> {
  const bad = (why: string): never => {
    throw new StorageError('BAD_SNAPSHOT', `snapshot stream: ${why}`);
  };
  const lead = await readFully(file, 0, ENVELOPE_HEADER_BYTES);
  if (lead.length < ENVELOPE_HEADER_BYTES) bad('too short');
  const payloadBytes = new DataView(lead.buffer, lead.byteOffset, lead.byteLength).getUint32(8);
  const headerBytes = payloadBytes + ENVELOPE_OVERHEAD_BYTES;
  if (headerBytes > meta.size) bad(`header of ${headerBytes} bytes exceeds the stream`);
  const env = openEnvelope(storage.core, SNAPSHOT_MAGIC, await readFully(file, 0, headerBytes));
  if (!env.ok) bad(`header ${env.why}`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode((env as { payload: Uint8Array }).payload));
  } catch {
    bad('header is not JSON');
  }
  if (!isStreamHeader(header)) return bad('header fields out of range');
  if (header.meta.index !== meta.index || header.meta.term !== meta.term)
    bad(
      `header says index ${header.meta.index} term ${header.meta.term}, expected ${meta.index} ${meta.term}`,
    );
  const total = headerBytes + header.stateBytes + header.segments.reduce((n, s) => n + s.bytes, 0);
  if (total !== meta.size) bad(`sections add up to ${total} bytes, the stream has ${meta.size}`);
  let prev = -1;
  for (const s of header.segments) {
    if (s.baseOffset <= prev || s.baseOffset > header.lastOffset)
      bad(`segment base offsets out of order at ${s.baseOffset}`);
    if (s.bytes > storage.options.segmentBytes * 2 + 16 * 1024 * 1024)
      bad(`segment of ${s.bytes} bytes is too large`);
    prev = s.baseOffset;
  }
  return { header, headerBytes };
}

/** Validates the received stream and makes it the log (see the file comment). */
async function installSnapshot(
  storage: GroupStorage,
  meta: SnapshotMeta,
  stream: FileHandle,
): Promise<RecoveryReport> {
  const { fs, core, dir, options } = storage;
  const { header, headerBytes } = await parseHeader(storage, meta, stream);
  const state = header.stateBytes > 0 ? await readFully(stream, headerBytes, header.stateBytes) : null;
  if (state && core.crc32c(state) !== header.stateCrc)
    throw new StorageError('BAD_SNAPSHOT', 'snapshot state fails its CRC');

  return await storage.enqueue(async () => {
    const generation = storage.manifest.generation + 1;
    const gen = generationDir(dir, generation);
    await removeTree(fs, gen);
    await fs.mkdir(gen);
    await fs.syncDir(dir);
    try {
      // Segments: copied, then validated by the same scan as recovery (CRC, offsets).
      let at = headerBytes + header.stateBytes;
      let prevLast = -1;
      for (const s of header.segments) {
        const seg = new Segment(s.baseOffset, NO_INDEX);
        const out = await fs.open(joinPath(gen, seg.logName), { create: true, truncate: true });
        try {
          for (let done = 0; done < s.bytes; ) {
            const n = Math.min(options.scanChunkBytes, s.bytes - done);
            const chunk = await readFully(stream, at + done, n);
            if (chunk.length !== n)
              throw new StorageError('BAD_SNAPSHOT', 'snapshot stream shorter than its header');
            await out.write(chunk, done);
            done += n;
          }
          await out.sync();
          const scan = await scanSegment({
            core,
            pool: storage.pool,
            file: out,
            fileBytes: s.bytes,
            baseOffset: s.baseOffset,
            startOffset: header.lastOffset + 1,
            indexIntervalBytes: options.indexIntervalBytes,
            chunkBytes: options.scanChunkBytes,
            poolMinBytes: options.poolMinBytes,
          });
          if (
            scan.stop ||
            scan.firstOffset < s.baseOffset ||
            scan.firstOffset <= prevLast ||
            scan.lastOffset > header.lastOffset
          )
            throw new StorageError(
              'BAD_SNAPSHOT',
              `snapshot segment ${s.baseOffset}: ${scan.stop?.message ?? `offsets ${scan.firstOffset}..${scan.lastOffset} out of place`}`,
            );
          prevLast = scan.lastOffset;
        } finally {
          await out.close();
        }
        at += s.bytes;
      }
      let stateFile: string | null = null;
      if (state) {
        stateFile = `snapshot-${header.meta.index}-${header.meta.term}.state`;
        const f = await fs.open(joinPath(gen, stateFile), { create: true, truncate: true });
        try {
          await f.write(state, 0);
          await f.sync();
        } finally {
          await f.close();
        }
      }
      await fs.syncDir(gen);
      const manifest: Manifest = {
        generation,
        logStartOffset: header.logStartOffset,
        snapshot: {
          index: header.meta.index,
          term: header.meta.term,
          conf: header.meta.conf,
          lastOffset: header.lastOffset,
          stateFile,
          stateBytes: header.stateBytes,
          stateCrc: header.stateCrc,
        },
      };
      // The switch: before this line a crash leaves the old log, after it the new one.
      await saveManifest(fs, core, dir, manifest);
    } catch (e) {
      await removeTree(fs, gen).catch(() => {});
      throw e;
    }
    return await storage.replaceLog(async (report) =>
      recoverLog({ fs, core, pool: storage.pool, dir, options, report }),
    );
  });
}
