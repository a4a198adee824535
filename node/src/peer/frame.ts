// Frames: what travels between two nodes. One frame carries the Raft messages of many
// groups, gathered in one turn of the event loop, from one node to one peer.
//
// Wire form (msgpackr, arrays rather than maps to keep frames small):
//   hello:    [FRAME_VERSION, 0, from, clusterId, to]
//   messages: [FRAME_VERSION, 1, from, clusterId, [[groupId, [message, …]], …]]
// Decoding never trusts the bytes: a frame that is not exactly this shape, or whose
// messages fail the structural check, is refused with a FrameError, and the connection
// that sent it is closed (peer/grpc-transport.ts). Nothing a peer sends reaches a Raft core
// unchecked.
import { Packr } from 'msgpackr';
import { isNodeId } from '../config.js';

export const FRAME_VERSION = 1;

export type NodeId = number;

/** The first frame on a connection, in each direction: who is speaking, to whom, in which cluster. */
export interface HelloFrame {
  kind: 'hello';
  from: NodeId;
  clusterId: string;
  to: NodeId;
}

export interface GroupMessages<M> {
  /** The Raft group (0 = metadata, then one per partition). */
  group: number;
  messages: M[];
}

export interface MessageFrame<M> {
  kind: 'messages';
  from: NodeId;
  clusterId: string;
  groups: GroupMessages<M>[];
}

export type Frame<M> = HelloFrame | MessageFrame<M>;

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/**
 * Checks one decoded message; returns why it is malformed, or null when it is well formed.
 * The peer layer knows nothing of Raft: the node passes the Raft message validator.
 */
export type MessageValidator = (message: unknown) => string | null;

// Maps decode as plain objects; records (msgpackr's structure extension) are off so that
// a frame is self-describing and a peer cannot make us keep structure state across frames.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Largest group id: group ids are allocated upward from 1 and stay safe integers. */
export const MAX_GROUP_ID = Number.MAX_SAFE_INTEGER;

export function encodeFrame<M>(frame: Frame<M>): Uint8Array {
  if (frame.kind === 'hello') {
    return packr.pack([FRAME_VERSION, 0, frame.from, frame.clusterId, frame.to]);
  }
  return packr.pack([
    FRAME_VERSION,
    1,
    frame.from,
    frame.clusterId,
    frame.groups.map((g) => [g.group, g.messages]),
  ]);
}

/**
 * Decodes and validates a frame. Throws FrameError on anything malformed: undecodable
 * bytes, a wrong shape, an unknown version or kind, ids out of range, or a message the
 * validator refuses. `maxBytes` is checked before decoding.
 */
export function decodeFrame<M>(bytes: Uint8Array, maxBytes: number, validate: MessageValidator): Frame<M> {
  if (bytes.length > maxBytes) throw new FrameError(`frame of ${bytes.length} bytes exceeds ${maxBytes}`);
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (err) {
    throw new FrameError(`undecodable frame: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length !== 5) throw new FrameError('frame is not a 5-element array');
  const [version, kind, from, clusterId, body] = raw as unknown[];
  if (version !== FRAME_VERSION) throw new FrameError(`unknown frame version ${String(version)}`);
  if (!isNodeId(from)) throw new FrameError('frame sender is not a node id');
  if (typeof clusterId !== 'string' || clusterId.length > 64)
    throw new FrameError('frame cluster id is not a string');
  if (kind === 0) {
    if (!isNodeId(body)) throw new FrameError('hello target is not a node id');
    return { kind: 'hello', from, clusterId, to: body };
  }
  if (kind !== 1) throw new FrameError(`unknown frame kind ${String(kind)}`);
  if (!Array.isArray(body)) throw new FrameError('frame groups are not an array');
  const groups: GroupMessages<M>[] = [];
  for (const entry of body as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2)
      throw new FrameError('frame group is not [groupId, messages]');
    const [group, messages] = entry as unknown[];
    if (!Number.isSafeInteger(group) || (group as number) < 0)
      throw new FrameError('frame group id is not a group id');
    if (!Array.isArray(messages)) throw new FrameError(`group ${group} messages are not an array`);
    for (const m of messages as unknown[]) {
      const why = validate(m);
      if (why !== null) throw new FrameError(`group ${group}: malformed message: ${why}`);
    }
    groups.push({ group: group as number, messages: messages as M[] });
  }
  return { kind: 'messages', from, clusterId, groups };
}
