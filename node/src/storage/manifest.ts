// The manifest names the live generation directory and where the log starts. It is
// rewritten whole and atomically (write-new + fsync + rename + directory fsync), so the
// log's start moves (snapshot, retention) and a received snapshot replaces the whole log
// (a new generation) in one durable step.
//
//   <dir>/manifest            this file
//   <dir>/state               hard state (hard-state.ts)
//   <dir>/g<generation>/      segments (<baseOffset>.log, .index) and snapshot state files
//   <dir>/incoming/           a snapshot being received (snapshot.ts)
import type { Core } from '../../../core-wasm/src/index.js';
import type { ConfState } from '../../../raft/src/types.js';
import { magic, openJsonEnvelope, sealEnvelope } from './envelope.js';
import { invariant } from './errors.js';
import { type FileSystem, joinPath, readFileDecoded, removeIfExists, writeFileAtomic } from './fs.js';
import { READ_ATTEMPTS } from './options.js';

export const MANIFEST_FILE = 'manifest';
const MANIFEST_MAGIC = magic('CMAN');

/** The snapshot the Raft log starts after. Index 0 = none (the log starts at index 1, offset 0). */
export interface SnapshotRecord {
  index: number;
  term: number;
  conf: ConfState;
  /** Last offset the snapshot covers (the last offset of entry `index`); -1 when index is 0. */
  lastOffset: number;
  /** File in the generation directory holding the node's state blob; null when none was given. */
  stateFile: string | null;
  stateBytes: number;
  stateCrc: number;
}

export interface Manifest {
  generation: number;
  /** First offset still held (Kafka's log start offset): retention deleted everything below it. */
  logStartOffset: number;
  snapshot: SnapshotRecord;
}

export function emptyManifest(generation: number): Manifest {
  return {
    generation,
    logStartOffset: 0,
    snapshot: {
      index: 0,
      term: 0,
      conf: { voters: [], learners: [] },
      lastOffset: -1,
      stateFile: null,
      stateBytes: 0,
      stateCrc: 0,
    },
  };
}

export function generationDir(dir: string, generation: number): string {
  return joinPath(dir, `g${generation}`);
}

export function parseGenerationName(name: string): number | null {
  const m = /^g(\d{1,15})$/.exec(name);
  return m ? Number(m[1]) : null;
}

const isInt = (v: unknown, min: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isIdList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => isInt(x, 1));

export function isManifest(m: unknown): m is Manifest {
  const x = m as Manifest;
  const s = x?.snapshot;
  return (
    isInt(x?.generation, 0) &&
    isInt(x.logStartOffset, 0) &&
    typeof s === 'object' &&
    s !== null &&
    isInt(s.index, 0) &&
    isInt(s.term, 0) &&
    isInt(s.lastOffset, -1) &&
    isIdList(s.conf?.voters) &&
    isIdList(s.conf?.learners) &&
    (s.stateFile === null || (typeof s.stateFile === 'string' && /^[\w.-]+$/.test(s.stateFile))) &&
    isInt(s.stateBytes, 0) &&
    isInt(s.stateCrc, 0)
  );
}

export type ManifestLoad =
  | { kind: 'absent' }
  | { kind: 'ok'; manifest: Manifest }
  | { kind: 'corrupt'; why: string };

export function decodeManifest(core: Core, bytes: Uint8Array): ManifestLoad {
  const r = openJsonEnvelope(core, MANIFEST_MAGIC, bytes, isManifest);
  return r.ok ? { kind: 'ok', manifest: r.value } : { kind: 'corrupt', why: r.why };
}

export async function loadManifest(fs: FileSystem, core: Core, dir: string): Promise<ManifestLoad> {
  await removeIfExists(fs, joinPath(dir, `${MANIFEST_FILE}.tmp`));
  const loaded = await readFileDecoded(fs, joinPath(dir, MANIFEST_FILE), READ_ATTEMPTS, (bytes) =>
    decodeManifest(core, bytes),
  );
  return loaded ?? { kind: 'absent' };
}

export async function saveManifest(
  fs: FileSystem,
  core: Core,
  dir: string,
  manifest: Manifest,
): Promise<void> {
  invariant(isManifest(manifest), `a well-formed manifest: ${JSON.stringify(manifest)}`);
  const payload = new TextEncoder().encode(JSON.stringify(manifest));
  await writeFileAtomic(fs, joinPath(dir, MANIFEST_FILE), sealEnvelope(core, MANIFEST_MAGIC, payload));
}
