// Hard state (term, vote, commit), persisted atomically by write-new + fdatasync + rename
// + directory fsync (fs.writeFileAtomic). A crash leaves either the old `state` file or the
// new one, whole. Because the file in place was always fsynced *before* it was renamed
// there, a `state` file that fails its CRC is not a torn write but damage at rest, and it
// is reported as such: never read as "no vote" (a reset vote could vote twice in a term).
import type { Core } from '../../../core-wasm/src/index.js';
import type { HardState } from '../../../raft/src/types.js';
import { magic, openEnvelope, sealEnvelope } from './envelope.js';
import { invariant, StorageError } from './errors.js';
import { type FileSystem, joinPath, readFileDecoded, removeIfExists, writeFileAtomic } from './fs.js';
import { READ_ATTEMPTS } from './options.js';

//
// The file also holds the log's term bound: no entry of a larger term is in the log. The
// flusher makes a bound durable before it writes the first entry above the last one
// (group-storage.ts), so the bound holds after any crash, and recovery can check every
// stored term against it — including the last batch's, which nothing after it checks
// (partitionLeaderEpoch is outside the Kafka CRC). Raising it costs one hard-state write
// before the first flush of each new term, which a new term rewrites anyway.
export const HARD_STATE_FILE = 'state';
const HARD_STATE_MAGIC = magic('CHST');
/** term, vote, commit, term bound: f64 each (f64 holds every safe integer exactly). */
const PAYLOAD_BYTES = 32;
/** Files written before the term bound existed: term, vote, commit. */
const PAYLOAD_BYTES_WITHOUT_BOUND = 24;

export type HardStateLoad =
  | { kind: 'absent' }
  /** `termBound`: no log entry has a larger term (Infinity when the file predates the bound). */
  | { kind: 'ok'; hardState: HardState; termBound: number }
  | { kind: 'corrupt'; why: string };

export function checkHardState(hs: HardState): void {
  for (const k of ['term', 'vote', 'commit'] as const) {
    const v = hs[k];
    if (!Number.isSafeInteger(v) || v < 0)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `hard state ${k} must be a non-negative integer, got ${String(v)}`,
      );
  }
}

export function encodeHardState(core: Core, hs: HardState, termBound: number): Uint8Array {
  const payload = new Uint8Array(PAYLOAD_BYTES);
  const dv = new DataView(payload.buffer);
  dv.setFloat64(0, hs.term);
  dv.setFloat64(8, hs.vote);
  dv.setFloat64(16, hs.commit);
  dv.setFloat64(24, termBound);
  return sealEnvelope(core, HARD_STATE_MAGIC, payload);
}

export function decodeHardState(core: Core, bytes: Uint8Array): HardStateLoad {
  const env = openEnvelope(core, HARD_STATE_MAGIC, bytes);
  if (!env.ok) return { kind: 'corrupt', why: env.why };
  const n = env.payload.length;
  if (n !== PAYLOAD_BYTES && n !== PAYLOAD_BYTES_WITHOUT_BOUND)
    return { kind: 'corrupt', why: `payload of ${n} bytes` };
  const dv = new DataView(env.payload.buffer, env.payload.byteOffset, n);
  const hardState = { term: dv.getFloat64(0), vote: dv.getFloat64(8), commit: dv.getFloat64(16) };
  const termBound = n === PAYLOAD_BYTES ? dv.getFloat64(24) : Number.POSITIVE_INFINITY;
  try {
    checkHardState(hardState);
  } catch {
    return { kind: 'corrupt', why: 'fields out of range' };
  }
  if (n === PAYLOAD_BYTES && !(Number.isSafeInteger(termBound) && termBound >= 0))
    return { kind: 'corrupt', why: 'term bound out of range' };
  return { kind: 'ok', hardState, termBound };
}

/** Reads `<dir>/state` and removes a stray `state.tmp` (an interrupted write, never trusted). */
export async function loadHardState(fs: FileSystem, core: Core, dir: string): Promise<HardStateLoad> {
  await removeIfExists(fs, joinPath(dir, `${HARD_STATE_FILE}.tmp`));
  const loaded = await readFileDecoded(fs, joinPath(dir, HARD_STATE_FILE), READ_ATTEMPTS, (bytes) =>
    decodeHardState(core, bytes),
  );
  return loaded ?? { kind: 'absent' };
}

export async function saveHardState(
  fs: FileSystem,
  core: Core,
  dir: string,
  hs: HardState,
  termBound: number,
): Promise<void> {
  checkHardState(hs);
  invariant(Number.isSafeInteger(termBound) && termBound >= 0, `term bound ${termBound}`);
  await writeFileAtomic(fs, joinPath(dir, HARD_STATE_FILE), encodeHardState(core, hs, termBound));
}
