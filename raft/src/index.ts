// The public surface of raft/: the core, its inputs and outputs, and the in-memory log
// and PRNG that tests, the benchmark and the simulator use.

export { check, isCount, RaftError, type RaftErrorCode } from './errors.js';
export {
  applyConfChange,
  type ConfChange,
  decodeConfState,
  encodeConfState,
  isLearner,
  isVoter,
  quorumSize,
} from './membership.js';
export { type LogWrite, MemoryLog } from './memory-log.js';
export type {
  AppendMessage,
  AppendResponse,
  HeartbeatMessage,
  HeartbeatResponse,
  Message,
  MessageType,
  ReadIndexMessage,
  ReadIndexResponse,
  SnapshotAckMessage,
  SnapshotChunkMessage,
  TimeoutNowMessage,
  VoteMessage,
  VoteResponse,
} from './messages.js';
export { needsPersist } from './messages.js';
export { DEFAULT_OPTIONS, type RaftOptions, resolveOptions } from './options.js';
export { createPrng, type Prng } from './prng.js';
export { RaftCore, type RaftInit, type RaftStatus, snapshotMetaProblem } from './raft.js';
export type {
  ProposeRejection,
  ProposeResult,
  ReadRequestResult,
  ReadResult,
  Ready,
  Role,
  SnapshotWork,
  SoftState,
  TransferResult,
} from './ready.js';
export type { ConfState, Entry, EntryType, HardState, LogReader, NodeId, SnapshotMeta } from './types.js';
