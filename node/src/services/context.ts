// What every service of a node shares: the options it was started with (config and
// seams), whether it is stopping, and the small waits and timeouts the services build on —
// all on the injected Clock, so the simulator runs them in virtual time.
import type { Core } from '../../../core-wasm/src/index.js';
import type { Message, NodeId, RaftOptions } from '../../../raft/src/index.js';
import type { NodeConfig } from '../config.js';
import { CairnError, invalidRequest, unavailable } from '../errors.js';
import type { ApplyObserver, GroupRestart } from '../group/raft-group.js';
import type { StoreProvider } from '../group/store.js';
import type { JoinRecord } from '../join-record.js';
import type { NodeInfo, NodeStatus } from '../node-api.js';
import type { Logger } from '../ops/log.js';
import type { Clock } from '../seams/clock.js';
import type { Random } from '../seams/random.js';
import type { Transport } from '../seams/transport.js';
import { STREAM_NAME } from '../state/metadata.js';

export interface CairnNodeOptions {
  config: NodeConfig;
  clock: Clock;
  random: Random;
  transport: Transport<Message>;
  core: Core;
  stores: StoreProvider;
  log: Logger;
  /** Asks another member for its NodeStatus (ClusterStatus); the gRPC layer supplies it. */
  peerStatus(member: NodeInfo, timeoutMs: number): Promise<NodeStatus>;
  pid?: number;
  /** Storage failed: the node stops; the process should exit. */
  onFatal?(err: unknown): void;
  onAppend?(seconds: number, bytes: number): void;
  /** Batch bytes served by Read and Subscribe. */
  onRead?(bytes: number): void;
  onPersist?(seconds: number): void;
  /** A group restarted from its storage: after damage (to be repaired) or a refused snapshot. */
  onGroupRestart?(cause: GroupRestart['cause']): void;
  /** Sees every entry the node's groups apply, in order (the simulator's state-machine-safety check). */
  applyObserver?: ApplyObserver;
  /** The data directory's join record (join-record.ts), when it was created by a start with --join. */
  joinRecord?: JoinRecord;
}

/** The metadata group's id: group 0 holds the catalog. */
export const METADATA_GROUP = 0;
/** Leader duties run every this many ticks. */
export const DUTY_TICKS = 5;

export class NodeContext {
  readonly id: NodeId;
  /** Set once when the node starts stopping; every wait ends with UNAVAILABLE then. */
  stopped = false;

  constructor(readonly o: CairnNodeOptions) {
    this.id = o.config.nodeId;
  }

  get config(): NodeConfig {
    return this.o.config;
  }

  /** The Raft options of every group, from the node's config. */
  raftOptions(): Partial<RaftOptions> {
    const c = this.o.config;
    return {
      electionTimeoutTicks: c.raft.electionTicks,
      heartbeatTicks: c.raft.heartbeatTicks,
      maxSizePerMsgBytes: c.limits.maxAppendEntriesBytes,
      snapshotChunkBytes: c.limits.snapshotChunkBytes,
      maxUncommittedBytes: Math.max(
        c.limits.maxPendingAppendBytesPerPartition * 2,
        c.limits.maxBatchBytes * 4,
      ),
    };
  }

  /** A stream or consumer group name: 1..maxNameBytes of [A-Za-z0-9._-], else INVALID_REQUEST. */
  checkName(name: string, what: string): void {
    const max = this.o.config.limits.maxNameBytes;
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes === 0 || bytes > max || !STREAM_NAME.test(name)) {
      throw invalidRequest(`${what} must be 1-${max} characters of [A-Za-z0-9._-]`);
    }
  }

  /** A stopped group starts again after one election timeout: a fault that keeps striking must not spin. */
  restartDelayMs(): number {
    return this.o.config.raft.electionTicks * this.o.config.raft.tickMs;
  }

  /** `p`, or TIMEOUT (outcome unknown) after `ms`. */
  timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.o.clock.setTimer(ms, () =>
        reject(new CairnError('TIMEOUT', `${what} did not finish in ${ms} ms; its outcome is unknown`)),
      );
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        (e) => {
          cancel();
          reject(e);
        },
      );
    });
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.o.clock.setTimer(ms, resolve));
  }

  /** Polls `cond` every tick until it holds, or rejects with TIMEOUT after `ms`. */
  async waitUntil(cond: () => boolean, ms: number): Promise<void> {
    const deadline = this.o.clock.now() + ms;
    while (!cond()) {
      if (this.stopped) throw unavailable('the node is stopping');
      if (this.o.clock.now() >= deadline)
        throw new CairnError('TIMEOUT', `not done within ${ms} ms; still in progress`);
      await this.sleep(this.o.config.raft.tickMs);
    }
  }

  /** As waitUntil, for a condition that must ask (every duty round, at least 50 ms apart). */
  async waitUntilAsync(cond: () => Promise<boolean>, ms: number): Promise<void> {
    const deadline = this.o.clock.now() + ms;
    while (!(await cond())) {
      if (this.stopped) throw unavailable('the node is stopping');
      if (this.o.clock.now() >= deadline)
        throw new CairnError('TIMEOUT', `not done within ${ms} ms; still in progress`);
      await this.sleep(Math.max(this.o.config.raft.tickMs * DUTY_TICKS, 50));
    }
  }
}
