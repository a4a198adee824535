// Hard state (term, vote, commit), persisted atomically by write-new + fdatasync + rename
// + directory fsync (fs.writeFileAtomic). A crash leaves either the old `state` file or the
// new one, whole. Because the file in place was always fsynced *before* it was renamed
// there, a `state` file that fails its CRC is not a torn write but damage at rest, and it
// is reported as such: never read as "no vote" (a reset vote could vote twice in a term).
import type { Core } from '../../../core-wasm/src/index.js';
import type { HardState } from '../../../raft/src/types.js';
import { magic, openEnvelope, sealEnvelope } from './envelope.js';
import { StorageError } from './errors.js';
import { type FileSystem, joinPath, readFileDecoded, removeIfExists, writeFileAtomic } from './fs.js';
import { READ_ATTEMPTS } from './options.js';

export const HARD_STATE_FILE = 'state';
const HARD_STATE_MAGIC = magic('CHST');
const PAYLOAD_BYTES = 24;

export type HardStateLoad =
  | { kind: 'absent' }
  | { kind: 'ok'; hardState: HardState }
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

export function encodeHardState(core: Core, hs: HardState): Uint8Array {
  const payload = new Uint8Array(PAYLOAD_BYTES);
  const dv = new DataView(payload.buffer);
  // f64 holds every safe integer exactly.
  dv.setFloat64(0, hs.term);
  dv.setFloat64(8, hs.vote);
  dv.setFloat64(16, hs.commit);
  return sealEnvelope(core, HARD_STATE_MAGIC, payload);
}

export function decodeHardState(core: Core, bytes: Uint8Array): HardStateLoad {
  const env = openEnvelope(core, HARD_STATE_MAGIC, bytes);
  if (!env.ok) return { kind: 'corrupt', why: env.why };
  if (env.payload.length !== PAYLOAD_BYTES)
    return { kind: 'corrupt', why: `payload of ${env.payload.length} bytes` };
  const dv = new DataView(env.payload.buffer, env.payload.byteOffset, PAYLOAD_BYTES);
  const hardState = { term: dv.getFloat64(0), vote: dv.getFloat64(8), commit: dv.getFloat64(16) };
  try {
    checkHardState(hardState);
  } catch {
    return { kind: 'corrupt', why: 'fields out of range' };
  }
  return { kind: 'ok', hardState };
}

/** Reads `<dir>/state` and removes a stray `state.tmp` (an interrupted write, never trusted). */
export async function loadHardState(fs: FileSystem, core: Core, dir: string): Promise<HardStateLoad> {
  await removeIfExists(fs, joinPath(dir, `${HARD_STATE_FILE}.tmp`));
  const loaded = await readFileDecoded(fs, joinPath(dir, HARD_STATE_FILE), READ_ATTEMPTS, (bytes) =>
    decodeHardState(core, bytes),
  );
  return loaded ?? { kind: 'absent' };
}

export async function saveHardState(fs: FileSystem, core: Core, dir: string, hs: HardState): Promise<void> {
  checkHardState(hs);
  await writeFileAtomic(fs, joinPath(dir, HARD_STATE_FILE), encodeHardState(core, hs));
}
