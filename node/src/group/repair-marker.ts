// The repair marker `<data>/groups/<id>.repair` (DESIGN §6): present while a group waits to
// be repaired from a leader, it holds the last Raft index this node may have acknowledged
// before storage lost entries. Until the node has caught up past it, it neither votes nor
// campaigns, so the marker is a safety input like the hard state and gets the same CRC'd
// envelope: a bit flip that lowered the number would let the node vote too soon, and one
// that raised it would keep a caught-up node out of every election of an idle group.
import type { Core } from '../../../core-wasm/src/api.js';
import { magic, openJsonEnvelope, sealEnvelope } from '../storage/envelope.js';
import { type FileSystem, readFile, writeFileAtomic } from '../storage/index.js';

const MARKER_MAGIC = magic('CRPR');

export type RepairMarkerLoad =
  | { kind: 'absent' }
  | { kind: 'ok'; lastIndexBeforeRepair: number }
  /** The file is there but fails its CRC: the node knows it lost entries, not how many. */
  | { kind: 'corrupt'; why: string };

const isMarker = (x: unknown): x is { lastIndexBeforeRepair: number } =>
  typeof x === 'object' &&
  x !== null &&
  Number.isSafeInteger((x as { lastIndexBeforeRepair: unknown }).lastIndexBeforeRepair) &&
  (x as { lastIndexBeforeRepair: number }).lastIndexBeforeRepair >= 0;

/** Markers written before the envelope: the number alone, in ASCII digits. */
const LEGACY = /^[0-9]{1,15}$/;

export async function loadRepairMarker(fs: FileSystem, core: Core, path: string): Promise<RepairMarkerLoad> {
  const bytes = await readFile(fs, path);
  if (bytes === null) return { kind: 'absent' };
  const r = openJsonEnvelope(core, MARKER_MAGIC, bytes, isMarker);
  if (r.ok) return { kind: 'ok', lastIndexBeforeRepair: r.value.lastIndexBeforeRepair };
  const text = new TextDecoder().decode(bytes);
  if (LEGACY.test(text)) return { kind: 'ok', lastIndexBeforeRepair: Number(text) };
  return { kind: 'corrupt', why: r.why };
}

/** Writes the marker durably (write-new, fsync, rename, fsync the directory). */
export async function writeRepairMarker(
  fs: FileSystem,
  core: Core,
  path: string,
  lastIndexBeforeRepair: number,
): Promise<void> {
  const payload = new TextEncoder().encode(JSON.stringify({ lastIndexBeforeRepair }));
  await writeFileAtomic(fs, path, sealEnvelope(core, MARKER_MAGIC, payload));
}
