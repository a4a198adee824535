// The runtime all of a node's Raft groups share: one event loop, one tick timer, and the
// turn. Inputs (ticks, peer frames, client proposals) mark groups dirty; at the end of the
// turn (Clock.defer) the runtime runs every dirty group's Readies, then ends the turn for
// each — one storage sync per group — and sends one frame per peer with every message of
// every group queued during the turn.
//
//   input ─▶ markDirty ─▶ (end of turn) process() × dirty groups ─▶ endTurn() × groups
//                                                         └──▶ one frame per peer
import type { Message, NodeId } from '../../../raft/src/index.js';
import type { Logger } from '../ops/log.js';
import type { GroupMessages } from '../peer/frame.js';
import type { Clock } from '../seams/clock.js';
import type { Transport } from '../seams/transport.js';
import type { ApplyObserver, GroupHost, GroupRestart, RaftGroup } from './raft-group.js';

export interface RuntimeOptions {
  nodeId: NodeId;
  clock: Clock;
  transport: Transport<Message>;
  log: Logger;
  tickMs: number;
  /** Storage failed under a group: the node must stop (it cannot promise durability). */
  onFatal(err: unknown): void;
  /** A group stopped itself to be started again from its storage (damage, a refused snapshot). */
  onGroupRestart(group: RaftGroup, why: GroupRestart): void;
  onPersist?(seconds: number): void;
  /** A group finished repairing lost entries through `bound`. */
  onRepaired?(group: RaftGroup, bound: number): void;
  /** Sees what the groups apply (the simulator's checkers). */
  observer?: ApplyObserver;
  /** Work to do at the start of every turn before groups run (e.g. draining proposal queues). */
  beforeProcess?(): void;
}

export class GroupRuntime {
  private readonly groups = new Map<number, RaftGroup>();
  private readonly dirty = new Set<RaftGroup>();
  /** Messages queued this turn: peer → group → messages. */
  private readonly outbox = new Map<NodeId, Map<number, Message[]>>();
  private scheduled = false;
  private stopTick: (() => void) | null = null;
  private stopped = false;
  /** Groups touched this turn (their endTurn must run even if process found nothing). */
  private readonly touched = new Set<RaftGroup>();
  /** When each peer was last heard from (Clock.now), for liveness-aware placement. */
  private readonly lastHeard = new Map<NodeId, number>();
  readonly host: GroupHost;

  constructor(private readonly opts: RuntimeOptions) {
    this.host = {
      nodeId: opts.nodeId,
      log: opts.log,
      send: (group, messages) => this.queue(group, messages),
      markDirty: (g) => this.markDirty(g),
      now: () => opts.clock.now(),
      setTimer: (ms, fn) => opts.clock.setTimer(ms, fn),
      fatal: (err) => opts.onFatal(err),
      restart: (group, why) => opts.onGroupRestart(group, why),
      observePersist: (s) => opts.onPersist?.(s),
      repaired: (group, bound) => opts.onRepaired?.(group, bound),
      observer: opts.observer,
    };
    opts.transport.onReceive((from, groups) => this.receive(from, groups));
    opts.transport.onPeerChange?.((peer) => this.peerChanged(peer));
  }

  /**
   * A peer's connection went down or came back. Its leaders stop pipelining to it and probe
   * (Raft's "report unreachable"): if it restarted with less log than it acknowledged, the
   * probe's rejection lets the leader find where it really is, even in an idle group.
   */
  private peerChanged(peer: NodeId): void {
    for (const g of this.groups.values()) {
      if (!g.isLeader) continue;
      g.core.reportUnreachable(peer);
      this.markDirty(g);
    }
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      for (const g of this.groups.values()) g.tick();
      this.stopTick = this.opts.clock.setTimer(this.opts.tickMs, tick);
    };
    this.stopTick = this.opts.clock.setTimer(this.opts.tickMs, tick);
  }

  add(group: RaftGroup): void {
    if (this.groups.has(group.id)) throw new Error(`group ${group.id} is already running`);
    this.groups.set(group.id, group);
    this.markDirty(group);
  }

  remove(groupId: number): RaftGroup | undefined {
    const g = this.groups.get(groupId);
    if (g === undefined) return undefined;
    this.groups.delete(groupId);
    this.dirty.delete(g);
    this.touched.delete(g);
    return g;
  }

  get(groupId: number): RaftGroup | undefined {
    return this.groups.get(groupId);
  }

  all(): IterableIterator<RaftGroup> {
    return this.groups.values();
  }

  markDirty(group: RaftGroup): void {
    if (this.stopped) return;
    this.dirty.add(group);
    this.schedule();
  }

  /** Runs `fn` at the end of this turn, before the groups (proposal queues use it). */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.opts.clock.defer(() => this.turn());
  }

  private queue(group: number, messages: readonly Message[]): void {
    for (const m of messages) {
      let byGroup = this.outbox.get(m.to);
      if (byGroup === undefined) {
        byGroup = new Map();
        this.outbox.set(m.to, byGroup);
      }
      let list = byGroup.get(group);
      if (list === undefined) {
        list = [];
        byGroup.set(group, list);
      }
      list.push(m);
    }
    // Messages queued outside a turn (a sync completed) still go out at the end of one.
    this.schedule();
  }

  private turn(): void {
    this.scheduled = false;
    if (this.stopped) return;
    try {
      this.opts.beforeProcess?.();
      // Processing may dirty groups again (a proposal answered, an apply that starts work);
      // bounded rounds keep one turn from starving I/O.
      for (let round = 0; round < 4 && this.dirty.size > 0; round++) {
        const batch = [...this.dirty];
        this.dirty.clear();
        for (const g of batch) {
          if (this.groups.get(g.id) !== g) continue;
          this.touched.add(g);
          g.process();
        }
      }
      for (const g of this.touched) g.endTurn();
      this.touched.clear();
      if (this.dirty.size > 0) this.schedule();
      this.flushOutbox();
    } catch (err) {
      this.opts.onFatal(err);
    }
  }

  private flushOutbox(): void {
    for (const [peer, byGroup] of this.outbox) {
      const groups: GroupMessages<Message>[] = [];
      for (const [group, messages] of byGroup) groups.push({ group, messages });
      this.opts.transport.send(peer, groups);
    }
    this.outbox.clear();
  }

  /** Delivers a peer's frame: each message to its group, if that group runs here. */
  private receive(from: NodeId, groups: GroupMessages<Message>[]): void {
    this.lastHeard.set(from, this.opts.clock.now());
    for (const { group, messages } of groups) {
      const g = this.groups.get(group);
      if (g === undefined) continue; // not (yet, or any longer) here: Raft retries
      for (const m of messages) {
        // The handshake authenticated the sender; a message claiming another is refused.
        if (m.from !== from || m.to !== this.opts.nodeId) {
          this.opts.log.warn(
            { group, from, claimed: m.from, to: m.to },
            'peer message with wrong sender or recipient',
          );
          continue;
        }
        g.step(m);
      }
    }
  }

  /** Whether `peer` sent anything within the last `ms` (this node always counts as heard). */
  heardWithin(peer: NodeId, ms: number): boolean {
    if (peer === this.opts.nodeId) return true;
    const t = this.lastHeard.get(peer);
    return t !== undefined && this.opts.clock.now() - t <= ms;
  }

  stop(): void {
    this.stopped = true;
    this.stopTick?.();
  }
}
