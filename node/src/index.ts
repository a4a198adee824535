// The public surface of node/: what the simulator, benchmarks and tools build a node from.
// (node/storage has its own surface, node/src/storage/index.ts.)

export { ERROR_DETAIL_KEY, fromServiceError, grpcStatusOf, toServiceError } from './api/grpc-errors.js';
export { callUnary, serviceDefinition } from './api/grpc-service.js';
export { ApiServer, type ApiServerOptions } from './api/server.js';
export { CairnNode, type CairnNodeOptions, convergeStep, type StoreProvider } from './cairn-node.js';
export {
  ConfigError,
  defaultConfig,
  formatMembers,
  loadConfig,
  type MemberAddress,
  type NodeConfig,
  parseMembers,
} from './config.js';
export { asCairnError, CairnError, type ErrorCodeName, type ErrorFacts } from './errors.js';
export { MemoryGroupStore } from './group/memory-store.js';
export type { GroupHost, GroupMachine, RaftGroup } from './group/raft-group.js';
export { GroupRuntime, type RuntimeOptions } from './group/runtime.js';
export { SegmentGroupStore, type SegmentStoresOptions, segmentStores } from './group/segment-store.js';
export type { GroupStore, OpenedState } from './group/store.js';
export { defaultLimits, defaultRaftTiming, type Limits, type RaftTiming } from './limits.js';
export type * from './node-api.js';
export { createLogger, type Logger, silentLogger } from './ops/log.js';
export { NodeMetrics, serveMetrics } from './ops/metrics.js';
export {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameError,
  type GroupMessages,
  type MessageValidator,
} from './peer/frame.js';
export { GrpcTransport, type GrpcTransportOptions, type PeerStats } from './peer/grpc-transport.js';
export { raftMessageValidator } from './peer/raft-messages.js';
export { type CancelTimer, type Clock, realClock } from './seams/clock.js';
export { type Random, seededRandom, systemRandom } from './seams/random.js';
export type { Transport } from './seams/transport.js';
export {
  buildBatch,
  buildOffsetCommitBatch,
  type CheckedBatch,
  CONSUMER_OFFSET_CONTROL_TYPE,
  checkClientBatch,
  classifyBatch,
  controlTypeOf,
  isControlBatchAt,
  parseOffsetCommit,
} from './state/batches.js';
export * from './state/metadata.js';
export * from './state/partition.js';
