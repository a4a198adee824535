// The simulated cluster: N node slots, each with its own disk, clock skew and Raft
// randomness, running the real CairnNode over the simulated seams. A slot lives on across
// its processes: start → (crash | power loss | fatal) → start again, its disk keeping
// what the crash mode leaves.
import type { Core } from '../../core-wasm/src/index.js';
import type { CairnNode } from '../../node/src/cairn-node.js';
import { loadConfig, type NodeConfig } from '../../node/src/config.js';
import type { GroupStore } from '../../node/src/group/store.js';
import { IdentityError } from '../../node/src/identity.js';
import { defaultLimits, type Limits } from '../../node/src/limits.js';
import type { NodeStatus } from '../../node/src/node-api.js';
import { type NodeSeams, startNode } from '../../node/src/start-node.js';
import type { CrashMode, StorageOptions } from '../../node/src/storage/index.js';
import type { RaftSafetyChecker } from './checkers/raft-safety.js';
import { SimClock } from './clock.js';
import { type DiskProfile, SimDisk } from './disk.js';
import { type ClockSkew, Incarnation } from './incarnation.js';
import type { SimNetwork } from './network.js';
import type { NodeLogs } from './node-log.js';
import type { SimRandom } from './random.js';
import type { Scheduler } from './scheduler.js';
import { tapStores } from './store-tap.js';
import type { Timeline } from './timeline.js';
import { EventKind } from './trace.js';

/** Settings every node of a run shares. */
export interface ClusterSettings {
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotIntervalEntries: number;
  requestTimeoutMs: number;
  membershipTimeoutMs: number;
  storage: Partial<StorageOptions>;
  /** Other limits to override (small ones make flow control and snapshots chunk). */
  limits: Partial<Limits>;
}

export type NodeState = 'down' | 'starting' | 'up';

/** Things that happen to nodes, for the report and the stats. */
export interface NodeEvent {
  atUs: number;
  node: number;
  what: 'start' | 'up' | 'crash' | 'power-loss' | 'fatal' | 'start-failed' | 'pause' | 'resume' | 'wipe';
  detail: string;
}

/** How long a supervisor waits before restarting a process that died by itself. */
export const SUPERVISOR_RESTART_MS = 1000;

export const apiAddress = (id: number) => `10.0.0.${id}:7000`;
export const peerAddress = (id: number) => `10.0.0.${id}:7100`;

export class SimNode {
  inc: Incarnation | null = null;
  node: CairnNode | null = null;
  state: NodeState = 'down';
  generation = 0;
  /** Start the next process with `join` (a wiped disk, or a node added later). */
  join = false;
  /** Group id → its (tapped) store in the current process. */
  readonly stores = new Map<number, GroupStore>();
  /**
   * Group id → the store of the latest process that opened it, kept while the node is down:
   * its log (a superset of what is on disk) is what the node could come back with.
   */
  readonly lastStores = new Map<number, GroupStore>();
  /** The process was paused at this time (µs), or -1. */
  pausedAt = -1;

  constructor(
    readonly id: number,
    readonly disk: SimDisk,
    readonly skew: ClockSkew,
    /** The node's own randomness (Raft timeouts), forked from the run's. */
    readonly random: SimRandom,
  ) {}

  get up(): boolean {
    return this.state === 'up';
  }
}

export class SimCluster {
  readonly nodes = new Map<number, SimNode>();
  readonly events: NodeEvent[] = [];
  /** The initial members (a new cluster's bootstrap list). */
  readonly initial: number[];
  fatals = 0;
  startFailures = 0;
  /** Per (node, group) leader: the log position its configuration was last read at. */
  private readonly leaderLogKey = new Map<number, number>();
  private readonly leaderVoters = new Map<number, number[]>();
  constructor(
    private readonly sched: Scheduler,
    private readonly net: SimNetwork,
    private readonly core: Core,
    private readonly checker: RaftSafetyChecker,
    private readonly logs: NodeLogs,
    private readonly settings: ClusterSettings,
    initial: number[],
    slots: { id: number; skew: ClockSkew; disk: DiskProfile; random: SimRandom; diskRandom: SimRandom }[],
    private readonly timeline: Timeline,
    /** Slots taken out of the cluster for good: never restarted. */
    private readonly removed: ReadonlySet<number>,
    /** Slots whose disks had bits flipped: their identity file may rot too. */
    private readonly corrupted: ReadonlySet<number>,
  ) {
    this.initial = [...initial];
    for (const s of slots) {
      const disk = new SimDisk(s.id, sched, s.diskRandom, s.disk);
      const n = new SimNode(s.id, disk, s.skew, s.random);
      n.join = !initial.includes(s.id);
      this.nodes.set(s.id, n);
    }
  }

  get(id: number): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id} in the simulation`);
    return n;
  }

  private note(node: number, what: NodeEvent['what'], detail = ''): void {
    this.events.push({ atUs: this.sched.nowUs, node, what, detail });
    this.sched.trace.note(`node ${node} ${what}${detail === '' ? '' : ` (${detail})`}`);
  }

  private config(n: SimNode): NodeConfig {
    const s = this.settings;
    const members = (n.join ? this.initial.filter((id) => id !== n.id) : this.initial).map((id) => ({
      id,
      apiAddress: apiAddress(id),
      peerAddress: peerAddress(id),
    }));
    const json = {
      nodeId: n.id,
      clusterId: 'sim',
      dataDir: '/data',
      apiAddress: apiAddress(n.id),
      peerAddress: peerAddress(n.id),
      members,
      join: n.join,
      logLevel: 'silent',
      raft: { tickMs: s.tickMs, electionTicks: s.electionTicks, heartbeatTicks: s.heartbeatTicks },
      limits: {
        ...defaultLimits,
        ...s.limits,
        snapshotIntervalEntries: s.snapshotIntervalEntries,
        requestTimeoutMs: s.requestTimeoutMs,
        membershipTimeoutMs: s.membershipTimeoutMs,
      },
    };
    // The node's own validation runs over it, as for a config file.
    return loadConfig(['--config', 'sim.json'], {}, () => JSON.stringify(json));
  }

  /** Starts a process on node `id` (now, as an event of the new process). */
  start(id: number): void {
    const n = this.get(id);
    if (n.state !== 'down') throw new Error(`node ${id} is already running`);
    const inc = new Incarnation(id, ++n.generation);
    n.inc = inc;
    n.state = 'starting';
    n.stores.clear();
    this.checker.onProcessStart(id);
    this.note(id, 'start', `process ${inc.generation}${n.join ? ', joining' : ''}`);
    const config = this.config(n);
    const log = this.logs.forNode(id);
    const clock = new SimClock(this.sched, inc, n.skew);
    const fs = n.disk.attach(inc);
    // The same start-up as `cairn serve` (node/src/start-node.ts), over the simulated seams:
    // the identity file, the directory layout and group 0 all come off this node's disk.
    const seams: NodeSeams = {
      fs,
      clock,
      random: n.random,
      core: this.core,
      log,
      storage: this.settings.storage,
      listen: async () => this.net.transport(inc),
      wrapStores: (inner) =>
        tapStores(
          inner,
          id,
          this.checker,
          (g, store) => {
            n.stores.set(g, store);
            n.lastStores.set(g, store);
          },
          (g) => {
            n.stores.delete(g);
            n.lastStores.delete(g);
          },
        ),
    };
    this.sched.after(
      0,
      () => {
        startNode(config, seams, {
          peerStatus: (member) => this.peerStatus(inc, member.id),
          pid: inc.generation,
          onFatal: (err) => this.onFatal(n, inc, err),
          applyObserver: {
            applied: (g, e) => this.checker.onApplied(id, g, e, this.termOf(n, g)),
            restored: (g, meta) => this.checker.onRestored(id, g, meta),
          },
        }).then(
          ({ node }) => {
            if (!inc.alive) return;
            n.node = node;
            n.state = 'up';
            this.note(id, 'up');
          },
          (err: unknown) => {
            if (!inc.alive) return;
            this.startFailures++;
            const message = (err as Error)?.message ?? String(err);
            this.note(id, 'start-failed', message);
            this.kill(n, inc);
            if (err instanceof IdentityError) {
              // Only a disk that rots may get here; on any other, identity.ts lost its own
              // durable write. Then the operator does what the error says: moves the
              // directory away, and the node rejoins, re-synced from the cluster.
              if (!this.corrupted.has(id)) {
                this.sched.fail('node-start', `node ${id} refused its own data directory: ${message}`);
                return;
              }
              this.wipe(id);
            }
            this.superviseRestart(n);
          },
        );
      },
      inc,
      EventKind.timer,
    );
  }

  private termOf(n: SimNode, g: number): number {
    return n.node?.groupForTest(g)?.core.currentTerm ?? Number.MAX_SAFE_INTEGER;
  }

  private kill(n: SimNode, inc: Incarnation): void {
    inc.kill();
    n.disk.detach(inc);
    this.timeline.down(n.id);
    if (n.inc === inc) {
      n.inc = null;
      n.node = null;
      n.state = 'down';
      n.pausedAt = -1;
      n.stores.clear();
    }
  }

  /** Storage failed under the node: it stops itself; its supervisor restarts it later. */
  private onFatal(n: SimNode, inc: Incarnation, err: unknown): void {
    if (!inc.alive) return;
    this.fatals++;
    this.note(n.id, 'fatal', (err as Error)?.message ?? String(err));
    this.kill(n, inc);
    this.superviseRestart(n);
  }

  /** A process that died by itself is restarted by its supervisor (systemd, Kubernetes) a little later. */
  private superviseRestart(n: SimNode): void {
    const generation = n.generation;
    this.sched.after(
      SUPERVISOR_RESTART_MS * 1000,
      () => {
        // Only if nothing else started it meanwhile, and it is still part of the cluster.
        if (n.state === 'down' && n.generation === generation && !this.removed.has(n.id)) this.start(n.id);
      },
      null,
      EventKind.fault,
      n.id,
    );
  }

  /** kill -9: the process dies; its disk keeps everything it was handed. */
  crash(id: number): void {
    const n = this.get(id);
    if (n.inc === null) return;
    this.note(id, 'crash');
    this.kill(n, n.inc);
  }

  /** The machine loses power: the process dies and unsynced writes are lost, torn or reordered. */
  powerLoss(id: number, mode: CrashMode): void {
    const n = this.get(id);
    if (n.inc !== null) this.kill(n, n.inc);
    n.disk.powerLoss(mode);
    this.note(id, 'power-loss', mode);
  }

  /** The disk is replaced by an empty one; the node must rejoin the cluster. */
  wipe(id: number): void {
    const n = this.get(id);
    if (n.inc !== null) this.kill(n, n.inc);
    n.disk.wipe();
    n.lastStores.clear();
    n.join = true;
    this.checker.forgetDisk(id);
    this.note(id, 'wipe');
  }

  /** The process stops running (a long GC pause, SIGSTOP): its events wait. */
  pause(id: number): void {
    const n = this.get(id);
    if (n.inc === null || n.inc.paused) return;
    n.inc.paused = true;
    n.pausedAt = this.sched.nowUs;
    this.note(id, 'pause');
  }

  resume(id: number): void {
    const n = this.get(id);
    if (n.inc === null || !n.inc.paused) return;
    n.inc.paused = false;
    n.pausedAt = -1;
    this.sched.release(n.inc);
    this.note(id, 'resume');
  }

  /** A member asks another for its status (clusterStatus): one round trip, if the links allow. */
  private peerStatus(from: Incarnation, to: number): Promise<NodeStatus> {
    return new Promise<NodeStatus>((resolve) => {
      const target = this.nodes.get(to);
      const tInc = target?.inc;
      if (target === undefined || tInc == null) return; // no answer: the caller times out
      const latency = () => this.net.profile.latencyUs;
      this.sched.after(
        latency(),
        () => {
          if (target.node === null || this.net.isCut(from.nodeId, to)) return;
          const status = target.node.nodeStatus();
          this.sched.after(
            latency(),
            () => {
              if (!this.net.isCut(to, from.nodeId)) resolve(status);
            },
            from,
            EventKind.status,
            to,
          );
        },
        tInc,
        EventKind.status,
        from.nodeId,
      );
    });
  }

  /** After an event: sample the roles of the node it belonged to (or of every node). */
  sample(nodeId: number): void {
    if (nodeId !== 0) {
      const n = this.nodes.get(nodeId);
      if (n !== undefined) this.sampleNode(n);
      return;
    }
    for (const n of this.nodes.values()) this.sampleNode(n);
  }

  private sampleNode(n: SimNode): void {
    const node = n.node;
    if (node === null) return;
    for (const g of n.stores.keys()) {
      const rg = node.groupForTest(g);
      if (rg === undefined || rg.isStopped) continue;
      const core = rg.core;
      const role = core.currentRole;
      this.timeline.role(n.id, g, role, core.currentTerm);
      this.checker.sampleCommit(n.id, g, core.commitIndex, core);
      if (role === 'leader') {
        // The configuration can only change when the log does (config entries, snapshots).
        const key = core.lastIndex * 0x10_0000 + core.currentTerm;
        if (this.leaderLogKey.get(n.id * 1_000_000 + g) !== key) {
          this.leaderLogKey.set(n.id * 1_000_000 + g, key);
          const conf = rg.conf();
          this.leaderVoters.set(g, conf.voters);
          this.timeline.conf(g, n.id, conf.voters, conf.learners);
        }
        this.checker.sampleLeader(n.id, g, core.currentTerm, rg.store, this.leaderVoters.get(g) ?? []);
        const commit = core.commitIndex;
        this.checker.sampleLeaderCommit(n.id, g, core.currentTerm, commit, rg.store.term(commit));
      }
    }
  }

  /**
   * Leader completeness, ahead of time: for each group whose committed index advanced, no
   * voter that lacks the newest committed entry may be able to win an election — get the
   * votes of a majority whose logs are no more up to date than its own (Raft §5.4.1).
   * Down nodes count with the log they last had; nodes repairing lost entries do not vote.
   */
  checkElectability(): void {
    for (const g of this.checker.groupsToCheckElectability()) {
      const conf = this.checker.leaderConf(g);
      if (conf === undefined) continue;
      const logs = new Map<number, { log: GroupStore; canVote: boolean }>();
      for (const id of conf) {
        const n = this.nodes.get(id);
        const log = n?.stores.get(g) ?? n?.lastStores.get(g);
        if (n === undefined || log === undefined) continue;
        const core = n.node?.groupForTest(g)?.core;
        const repairing =
          core !== undefined ? core.status().recoveringUntil !== 0 : n.state === 'down' && n.join;
        logs.set(id, { log, canVote: !repairing });
      }
      this.checker.checkElectable(g, conf, logs);
    }
  }

  upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }
}
