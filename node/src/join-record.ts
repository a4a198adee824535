// The join record `<data>/join`: present when the data directory was created by a start
// with --join — an empty disk for a node the cluster may already know (a wiped or replaced
// machine, or a node being added). Such a node may have acknowledged entries of the groups
// that existed before its disk was lost, and starts each of them repairing (DESIGN §6). A
// group created after it had caught up with the catalog it never held, and must not be
// marked: when every replica of a new partition is such a node, none of them would vote and
// the partition would never elect a leader.
//
// The record holds the horizon: the first group id this directory's node cannot have held
// before, the catalog's nextGroupId once group 0 had been repaired through the leader's
// bound (0 until then: every fresh group is marked). Same CRC'd envelope and write
// discipline as the repair marker; an unreadable record reads as "horizon unknown".
import type { Core } from '../../core-wasm/src/api.js';
import { magic, openJsonEnvelope, sealEnvelope } from './storage/envelope.js';
import { type FileSystem, joinPath, readFile, writeFileAtomic } from './storage/index.js';

export const JOIN_FILE = 'join';

const JOIN_MAGIC = magic('CRJN');

const isRecord = (x: unknown): x is { horizon: number } =>
  typeof x === 'object' &&
  x !== null &&
  Number.isSafeInteger((x as { horizon: unknown }).horizon) &&
  (x as { horizon: number }).horizon >= 0;

/** The directory's join record: undefined when it has none (it was not created to join). */
export interface JoinRecord {
  /** The first group id the node cannot have held before its disk was new; 0 while unknown. */
  readonly horizon: number;
  /** Records the horizon durably; resolves once it is. */
  setHorizon(horizon: number): Promise<void>;
}

async function write(fs: FileSystem, core: Core, path: string, horizon: number): Promise<void> {
  await writeFileAtomic(
    fs,
    path,
    sealEnvelope(core, JOIN_MAGIC, new TextEncoder().encode(JSON.stringify({ horizon }))),
  );
}

/**
 * Opens the join record of `dataDir`; `created` says the directory is new with this start
 * and `join` that the node was started with --join (then the record is written, horizon
 * unknown, before anything else goes into the directory).
 */
export async function openJoinRecord(
  fs: FileSystem,
  core: Core,
  dataDir: string,
  o: { created: boolean; join: boolean },
): Promise<JoinRecord | undefined> {
  const path = joinPath(dataDir, JOIN_FILE);
  let horizon: number;
  if (o.created && o.join) {
    await write(fs, core, path, 0);
    horizon = 0;
  } else {
    const bytes = await readFile(fs, path);
    if (bytes === null) return undefined;
    const r = openJsonEnvelope(core, JOIN_MAGIC, bytes, isRecord);
    horizon = r.ok ? r.value.horizon : 0;
  }
  const record = {
    horizon,
    async setHorizon(h: number): Promise<void> {
      await write(fs, core, path, h);
      record.horizon = h;
    },
  };
  return record;
}
