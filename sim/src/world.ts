// Everything one run is made of, in one place: the scheduler (virtual time and trace),
// the randomness, the network, the cluster, the clients' requests and history, the
// checkers and the timeline. The phases of a run (simulate.ts) drive it.
import type { Core } from '../../core-wasm/src/index.js';
import { RaftSafetyChecker } from './checkers/raft-safety.js';
import { SimCluster } from './cluster.js';
import { History } from './history.js';
import { type ClockSkew, NO_SKEW } from './incarnation.js';
import { SimNetwork } from './network.js';
import { NodeLogs } from './node-log.js';
import type { SimOptions } from './options.js';
import { SimRandom } from './random.js';
import { Rpc } from './rpc.js';
import { Scheduler } from './scheduler.js';
import { Timeline } from './timeline.js';
import { EventKind } from './trace.js';

export type Phase = 'setup' | 'faults' | 'heal' | 'check' | 'done';

/** What the service model (service.ts) reports at the end of a run. */
export interface ServiceStats {
  commands: number;
  accepted: number;
  applied: number;
  crashes: number;
}

export class World {
  readonly sched = new Scheduler();
  /** The run's own draws (workload, faults); each node and disk has a child of its own. */
  readonly rng: SimRandom;
  readonly net: SimNetwork;
  readonly cluster: SimCluster;
  readonly rpc: Rpc;
  readonly history = new History();
  readonly checker: RaftSafetyChecker;
  readonly timeline: Timeline;
  phase: Phase = 'setup';
  /** Node slots that are members of the cluster now (initial ones, then as membership changes). */
  readonly members = new Set<number>();
  /** Slots taken out of the cluster for good. */
  readonly removed = new Set<number>();
  /** Nodes whose disks had bits flipped (at rest or on reads). */
  readonly corrupted = new Set<number>();
  /** INTERNAL errors clients got (a node bug short of a violation; listed in the result). */
  readonly internalErrors: string[] = [];
  /** Replicas whose final read failed (corrupted disks), listed in the result. */
  readonly readFailures: string[] = [];
  // The run's fault injector and service model, as far as the world needs them (narrow
  // types, so that they can import the world without an import circle).
  nemesis: { readonly strikes: number } | undefined;
  service: { stats(): ServiceStats } | undefined;
  /** Records per append, capped so that a batch fits the message limits. */
  readonly recordsPerAppend: number;

  readonly logs: NodeLogs;

  constructor(
    readonly options: SimOptions,
    readonly core: Core,
  ) {
    const root = new SimRandom(options.seed);
    root.fork(); // the options' stream (options.ts)
    this.rng = root.fork();
    const netRng = root.fork();
    const rpcRng = root.fork();
    this.timeline = new Timeline(() => this.sched.nowUs);
    this.logs = new NodeLogs(() => this.sched.nowUs);
    const checker = new RaftSafetyChecker(core, (p, m) => this.sched.fail(p, m));
    this.checker = checker;
    this.net = new SimNetwork(this.sched, netRng, core, options.network, (_from, _to, groups) => {
      for (const g of groups)
        for (const m of g.messages)
          if (m.type === 'voteResponse' && m.granted && !m.pre)
            checker.onVoteGranted(g.group, m.from, m.term, m.to);
    });
    const slots = [];
    const n = options.nodes + options.spares;
    const skewOn = options.faults.includes('skew');
    for (let id = 1; id <= n; id++) {
      const random = root.fork();
      const diskRandom = root.fork();
      const skew: ClockSkew = skewOn
        ? {
            offsetMs: this.rng.between(-options.nemesis.maxOffsetMs, options.nemesis.maxOffsetMs),
            rate: 1 + this.rng.between(-options.nemesis.maxRateSkew, options.nemesis.maxRateSkew),
            wallOffsetMs: Math.round(
              this.rng.between(-options.nemesis.maxOffsetMs, options.nemesis.maxOffsetMs),
            ),
          }
        : { ...NO_SKEW };
      slots.push({ id, skew, disk: options.disk, random, diskRandom });
    }
    const initial = Array.from({ length: options.nodes }, (_, i) => i + 1);
    for (const id of initial) this.members.add(id);
    const maxBatchBytes = Math.min(4 << 20, options.maxAppendEntriesBytes);
    this.cluster = new SimCluster(
      this.sched,
      this.net,
      core,
      this.checker,
      this.logs,
      {
        tickMs: options.tickMs,
        electionTicks: options.electionTicks,
        heartbeatTicks: options.heartbeatTicks,
        snapshotIntervalEntries: options.snapshotIntervalEntries,
        requestTimeoutMs: options.requestTimeoutMs,
        membershipTimeoutMs: Math.max(options.requestTimeoutMs * 3, 10_000),
        storage: options.storage,
        limits: {
          maxAppendEntriesBytes: options.maxAppendEntriesBytes,
          maxBatchBytes,
          maxRecordBytes: Math.min(1 << 20, maxBatchBytes),
          maxRequestBytes: Math.max(8 << 20, maxBatchBytes + 1024),
          snapshotChunkBytes: options.snapshotChunkBytes,
        },
      },
      initial,
      slots,
      this.timeline,
      this.removed,
      this.corrupted,
    );
    this.rpc = new Rpc(this.sched, this.cluster, this.net, rpcRng);
    // Room for the record framing around each value (~30 B) and the batch header (61 B).
    const perRecord = options.workload.valueBytes + 40;
    this.recordsPerAppend = Math.max(
      1,
      Math.min(options.workload.maxRecordsPerAppend, Math.floor((maxBatchBytes - 100) / perRecord)),
    );
  }

  get nemesisStrikes(): number {
    return this.nemesis?.strikes ?? 0;
  }

  /** Resolves after `ms` of virtual time (an event of the world, not of any node). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.sched.after(ms * 1000, resolve, null, EventKind.client);
    });
  }

  /** A member chosen at random (where a client sends a request when it knows no better). */
  randomMember(): number {
    return this.rng.pick([...this.members].sort((a, b) => a - b));
  }

  /** The members, sorted (up or down: the liveness phase restarts the ones that are down). */
  memberList(): number[] {
    return [...this.members].sort((a, b) => a - b);
  }
}
