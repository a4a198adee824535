// The public surface of sim/: one function to run a simulation, its options and result,
// the checkers' names, and the plug-in for testing a service built on Cairn.

export type { Anomaly, FinalPartition, ReplicaLog } from './checkers/commit-log.js';
export { checkCommitLog } from './checkers/commit-log.js';
export { RaftSafetyChecker } from './checkers/raft-safety.js';
export type { Op, OpKind, Outcome, PolledRecord } from './history.js';
export {
  describeOptions,
  FAULT_GROUPS,
  FAULTS,
  type FaultName,
  MAX_NODES,
  OptionsError,
  parseFaults,
  resolveOptions,
  type SimOptions,
  type SimOptionsInput,
  type StreamSpec,
  type WorkloadMix,
  type WorkloadOptions,
} from './options.js';
export { MAX_SEED } from './random.js';
export { renderReport } from './report.js';
export { DeterminismError } from './sandbox.js';
export type { ServiceModel, ServiceRecord } from './service.js';
export { type SimResult, type SimStats, type SimulateInput, simulate, type Violation } from './simulate.js';
