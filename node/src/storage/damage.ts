// Damage: what storage found that may have cost the node data or state it acknowledged,
// and the durable record of it (DESIGN §6).
//
//   <dir>/damage      every damage found and not yet repaired   (CRC'd, atomic)
//
// Why a record of its own. Recovery keeps the valid prefix and cuts what follows damage,
// resets the log when the manifest is unreadable, and the node later overwrites an
// unreadable hard state: each of these forgets the damage. If the process stopped between
// such a step and the node's own note that it waits for repair, the next start would see
// a healthy, shorter log and vote with it. So the damage is written here, durably, before
// any step that forgets it, and reported again at every open until the node says it was
// repaired (`GroupStorage.clearDamage`). A record that cannot be read is itself reported
// as damage: it can only have said that something was lost.
import type { Core } from '../../../core-wasm/src/index.js';
import { magic, openJsonEnvelope, sealEnvelope } from './envelope.js';
import { type FileSystem, joinPath, readFileDecoded, removeIfExists, writeFileAtomic } from './fs.js';
import { MAX_DAMAGE_RECORDS, READ_ATTEMPTS } from './options.js';

/** Why the node may have lost acknowledged data or state. */
export type DamageReason =
  /** A batch failed validation (length, magic, CRC) with valid data after it, or inside a sealed segment. */
  | 'corrupt-batch'
  /** A batch is valid by CRC but its offset or term does not fit the log (fields outside the CRC). */
  | 'inconsistent-batch'
  /** A segment is missing: offsets jump where the log must be contiguous. */
  | 'missing-segment'
  /** The hard-state file failed its CRC: the term and vote are unknown. */
  | 'hard-state'
  /** The manifest is missing or failed its CRC: where the log starts is unknown; the log was reset. */
  | 'manifest'
  /** A read (after open) found a stored batch that fails validation. */
  | 'read'
  /** The record of earlier, unrepaired damage is unreadable: what it said is unknown. */
  | 'damage-record';

const REASONS: readonly DamageReason[] = [
  'corrupt-batch',
  'inconsistent-batch',
  'missing-segment',
  'hard-state',
  'manifest',
  'read',
  'damage-record',
];

export interface Damage {
  reason: DamageReason;
  /** Last Raft index of the valid prefix that was kept (the log's lastIndex after recovery). */
  lastIndexBefore: number;
  /** Last offset of the valid prefix kept before the damage. */
  lastOffsetBefore: number;
  /** File and byte position where the damage was found. */
  file: string;
  position: number;
  detail: string;
}

export const DAMAGE_FILE = 'damage';
const DAMAGE_MAGIC = magic('CDMG');

const isInt = (v: unknown, min: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

function isDamage(d: unknown): d is Damage {
  const x = d as Damage;
  return (
    typeof x === 'object' &&
    x !== null &&
    REASONS.includes(x.reason) &&
    isInt(x.lastIndexBefore, 0) &&
    isInt(x.lastOffsetBefore, -1) &&
    typeof x.file === 'string' &&
    isInt(x.position, 0) &&
    typeof x.detail === 'string'
  );
}

export type DamageRecordLoad =
  | { kind: 'absent' }
  | { kind: 'ok'; damage: Damage[] }
  | { kind: 'corrupt'; why: string };

function decodeDamageRecord(core: Core, bytes: Uint8Array): DamageRecordLoad {
  const r = openJsonEnvelope(
    core,
    DAMAGE_MAGIC,
    bytes,
    (x): x is Damage[] => Array.isArray(x) && x.length > 0 && x.every(isDamage),
  );
  return r.ok ? { kind: 'ok', damage: r.value } : { kind: 'corrupt', why: r.why };
}

export async function loadDamageRecord(fs: FileSystem, core: Core, dir: string): Promise<DamageRecordLoad> {
  await removeIfExists(fs, joinPath(dir, `${DAMAGE_FILE}.tmp`));
  const loaded = await readFileDecoded(fs, joinPath(dir, DAMAGE_FILE), READ_ATTEMPTS, (bytes) =>
    decodeDamageRecord(core, bytes),
  );
  return loaded ?? { kind: 'absent' };
}

/** What an unreadable damage record stands for: a loss of unknown extent. */
export function unreadableRecord(why: string): Damage {
  return {
    reason: 'damage-record',
    lastIndexBefore: 0,
    lastOffsetBefore: -1,
    file: DAMAGE_FILE,
    position: 0,
    detail: `the record of earlier damage is unreadable (${why})`,
  };
}

/**
 * Adds `d` to the durable record (atomically: write-new + fdatasync + rename + directory
 * fsync). Returns once it is durable: only then may the caller cut, reset or overwrite
 * what the damage concerns. The first damages are kept when the record is full (the first
 * says the most: the shortest valid prefix).
 */
export async function recordDamage(fs: FileSystem, core: Core, dir: string, d: Damage): Promise<void> {
  const loaded = await loadDamageRecord(fs, core, dir);
  const list =
    loaded.kind === 'ok' ? loaded.damage : loaded.kind === 'corrupt' ? [unreadableRecord(loaded.why)] : [];
  if (list.length < MAX_DAMAGE_RECORDS) list.push(d);
  const payload = new TextEncoder().encode(JSON.stringify(list));
  await writeFileAtomic(fs, joinPath(dir, DAMAGE_FILE), sealEnvelope(core, DAMAGE_MAGIC, payload));
}

/** Forgets every recorded damage, durably (the node was repaired). */
export async function clearDamageRecord(fs: FileSystem, dir: string): Promise<void> {
  if (await removeIfExists(fs, joinPath(dir, DAMAGE_FILE))) await fs.syncDir(dir);
}
