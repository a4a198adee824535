// The data directory's identity file, `<dataDir>/node.json`: which node of which cluster
// the directory belongs to, so a node is never started on another node's data (its votes
// and log would be taken for someone else's). Written once, before any group exists,
// through the FileSystem seam with the hard state's discipline (write-new, fsync, rename,
// fsync the directory; fs.writeFileAtomic), and its directory's name made durable too:
// after a power loss the file is either absent with nothing else in the directory, or
// whole.
//
// A directory whose identity file is missing or unreadable but which holds other data
// was written by an older Cairn, which did not fsync the file (a power loss left it
// empty), or was changed by hand. Nothing else durable says whose data it is, so the node
// refuses to start and says what the operator can do. A directory with nothing else in
// it is simply taken, as a new one.
import { type FileSystem, joinPath, makeDirsDurable, readFile, writeFileAtomic } from './storage/index.js';

export const IDENTITY_FILE = 'node.json';

export interface NodeIdentity {
  nodeId: number;
  clusterId: string;
}

export type IdentityErrorCode =
  /** The directory belongs to another node or cluster. */
  | 'IDENTITY_MISMATCH'
  /** The directory holds data, and its identity file is missing or unreadable. */
  | 'IDENTITY_LOST';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  constructor(
    readonly code: IdentityErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type IdentityOutcome =
  /** A new directory: the file was written. */
  | 'created'
  /** The file names this node. */
  | 'matched'
  /** The file was empty or torn in an otherwise empty directory: written again. */
  | 'rewritten';

function parseIdentity(bytes: Uint8Array): NodeIdentity | null {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const { nodeId, clusterId } = v as Record<string, unknown>;
  if (!Number.isSafeInteger(nodeId) || (nodeId as number) < 1 || typeof clusterId !== 'string') return null;
  return { nodeId: nodeId as number, clusterId };
}

function encodeIdentity(id: NodeIdentity): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify({ nodeId: id.nodeId, clusterId: id.clusterId })}\n`);
}

/**
 * Checks that `dataDir` is this node's, creating the directory and its identity file if
 * it is new. Throws IdentityError when it is another node's, or when it holds data whose
 * identity is lost.
 */
export async function checkIdentity(
  fs: FileSystem,
  dataDir: string,
  mine: NodeIdentity,
): Promise<IdentityOutcome> {
  await makeDirsDurable(fs, dataDir);
  const path = joinPath(dataDir, IDENTITY_FILE);
  const bytes = await readFile(fs, path);
  const theirs = bytes === null ? null : parseIdentity(bytes);
  if (theirs !== null) {
    if (theirs.nodeId !== mine.nodeId || theirs.clusterId !== mine.clusterId)
      throw new IdentityError(
        'IDENTITY_MISMATCH',
        `${dataDir} belongs to node ${theirs.nodeId} of cluster '${theirs.clusterId}', not node ${mine.nodeId} of '${mine.clusterId}'`,
      );
    return 'matched';
  }
  const others = (await fs.list(dataDir)).filter((n) => n !== IDENTITY_FILE && n !== `${IDENTITY_FILE}.tmp`);
  if (others.length > 0) {
    const what = bytes === null ? 'is missing' : bytes.length === 0 ? 'is empty' : 'cannot be read';
    throw new IdentityError(
      'IDENTITY_LOST',
      `${path} ${what}, but ${dataDir} holds data (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', …' : ''}), ` +
        `so nothing says which node it belongs to (older Cairn versions did not fsync this file, and a power loss could empty it). ` +
        `If the directory is node ${mine.nodeId}'s of cluster '${mine.clusterId}', write ` +
        `'${JSON.stringify(mine)}' to ${path} and start again; otherwise move the directory away ` +
        `and start the node with --join, to be re-synced from the cluster`,
    );
  }
  await writeFileAtomic(fs, path, encodeIdentity(mine));
  return bytes === null ? 'created' : 'rewritten';
}
