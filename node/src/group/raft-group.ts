// The group driver: one Raft core, its storage, and the state machine it feeds. It carries
// out each Ready as raft/src/ready.ts requires:
//
//   snapshot work → storage, at once           (LogReader reflects an install at once)
//   log write     → storage, at once           (LogReader reflects it; durable later)
//   hard state    → storage, at once           (one fsync with the entries)
//   messagesNow   → the runtime's outbox       (the leader's appends leave before its fsync)
//   committed     → the state machine, in order; waiting clients answered
//   reads         → waiting linearizable reads
//   at the end of the turn: one storage sync per group; when it completes, in Ready order:
//   messagesAfterPersist → outbox, persisted(i, t), snapshotInstalled(meta).
//
// Why the order matters (DESIGN §5): a vote or an append acknowledgement promises
// something about the disk, so it may only leave once the disk holds it; the leader's own
// appends promise nothing and leave at once, so followers write in parallel with the
// leader (thesis §10.2.1); and the leader counts itself toward commit only after persisted().
//
// A group never stops the node for what its storage reads back or a peer sends: stored
// bytes that fail validation (StoreCorruption, whether the core, a client read or a
// snapshot transfer found them) and a received snapshot that fails its checks
// (SnapshotRejected) stop this group only — its core may have been cut off halfway through
// a step — and the host starts it again from storage (GroupHost.restart): after damage,
// verified in full, cut at the damage and marked as repairing (DESIGN §6: no vote, no
// campaign until caught up from a leader past what it held); after a refused snapshot, as
// it was before the transfer, for the leader to send again. Only a failed write or fsync
// is fatal (nothing on disk can be trusted to be as left).
import {
  type ConfState,
  decodeConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ProposeResult,
  RaftCore,
  type RaftInit,
  type Ready,
  type SnapshotMeta,
  type SoftState,
} from '../../../raft/src/index.js';
import { CairnError, unavailable } from '../errors.js';
import type { Logger } from '../ops/log.js';
import { type GroupStore, SnapshotRejected, StoreCorruption } from './store.js';

/** Why a group stopped itself to be started again from its storage. */
export interface GroupRestart {
  /**
   * 'damage': stored bytes failed validation — reopen verifying everything and repair
   * from the leader. 'snapshot-rejected': a received snapshot failed its checks — the
   * transfer is discarded, the log is as before.
   */
  cause: 'damage' | 'snapshot-rejected';
  detail: string;
}

/** What the runtime offers a group: sending, scheduling, time. */
export interface GroupHost {
  readonly nodeId: NodeId;
  /** Queues messages for the end of the turn (one frame per peer per turn). */
  send(group: number, messages: readonly Message[]): void;
  /** The group has work: run process() this turn. */
  markDirty(group: RaftGroup): void;
  now(): number;
  setTimer(ms: number, fn: () => void): () => void;
  /** Storage failed: the node cannot go on safely. */
  fatal(err: unknown): void;
  /** The group stopped itself (see GroupRestart): start it again from its storage. */
  restart(group: RaftGroup, why: GroupRestart): void;
  observePersist(seconds: number): void;
  /** The group finished repairing lost entries through `bound` (Ready.repairedPast). */
  repaired(group: RaftGroup, bound: number): void;
  /** Sees every entry each group applies and every snapshot it restores (the simulator's checkers). */
  readonly observer?: ApplyObserver;
  readonly log: Logger;
}

/** Observes what a node's groups apply, in order; it must not call back into the group. */
export interface ApplyObserver {
  applied(group: number, entry: Entry): void;
  /**
   * The group's state machine was replaced by snapshot `meta` (applied is now meta.index):
   * an installed snapshot, or the group (re)starting from storage — at its snapshot, or
   * empty at index 0 (`meta` then has index and term 0).
   */
  restored(group: number, meta: SnapshotMeta): void;
}

/** The state machine side of a group. */
export interface GroupMachine {
  /** Applies one committed entry (any type, in log order); the result goes to the proposer. */
  apply(entry: Entry): unknown;
  /** Called when role or leader changed, after the Ready's log write was handed to storage. */
  onSoftState(state: SoftState): void;
  /** Replaces the state with a snapshot's state-machine part (meta.index is now applied). */
  restore(meta: SnapshotMeta, state: Uint8Array): void;
}

/** One Ready's durable work and what waits for it. */
interface PersistSlot {
  messages: readonly Message[];
  /** Last entry of the Ready's log write: persisted(index, term) once durable. */
  last: { index: number; term: number } | undefined;
  install: SnapshotMeta | undefined;
  /** Whether the Ready handed storage anything to make durable. */
  durable: boolean;
}

interface Waiter {
  term: number;
  resolve(result: unknown): void;
  reject(err: CairnError): void;
}

export class RaftGroup {
  readonly core: RaftCore;
  private softState: SoftState = { leader: 0, role: 'follower' };
  /** Slots of this turn's Readies, not yet covered by a sync. */
  private slots: PersistSlot[] = [];
  /** Syncs in flight, oldest first, each with the slots it covers. */
  private readonly syncing: PersistSlot[][] = [];
  /** Proposals waiting for their entry to be applied, by index. */
  private readonly waiters = new Map<number, Waiter>();
  /** Linearizable reads waiting for the core's answer, by context. */
  private readonly reads = new Map<number, { resolve(index: number): void; reject(err: CairnError): void }>();
  private nextReadContext = 1;
  /** Callers waiting for the applied index to reach a value. */
  private appliedWaiters: { index: number; resolve(): void }[] = [];
  private appliedIndex: number;
  /** Membership as of the applied index (what a snapshot taken now must record). */
  private appliedConf: ConfState;
  private stopped = false;
  private snapshotting = false;
  /** The hard state last handed to storage (see handle()). */
  private persistedHard: HardState | undefined;
  /** A snapshot install is in progress: the core must not be called (see process()). */
  private blocked = false;
  private readonly stopListening: () => void;

  constructor(
    readonly id: number,
    private readonly host: GroupHost,
    readonly store: GroupStore,
    private readonly machine: GroupMachine,
    init: Omit<RaftInit, 'log' | 'id'>,
  ) {
    this.core = new RaftCore({ ...init, id: host.nodeId, log: store });
    this.appliedIndex = init.applied ?? store.firstIndex() - 1;
    this.appliedConf = init.snapshot?.conf ?? init.conf;
    this.persistedHard = init.hardState;
    // A group restarted within the process applies again from its snapshot (or from 0).
    host.observer?.restored(id, init.snapshot ?? { index: 0, term: 0, conf: this.appliedConf, size: 0 });
    // Damage a client read finds (outside any core call) restarts the group too.
    this.stopListening = store.onDamage((detail) => this.halt({ cause: 'damage', detail }));
  }

  /** A stopped group (e.g. waiting to restart for repair) leads nothing. */
  get role(): SoftState['role'] {
    return this.stopped ? 'follower' : this.softState.role;
  }

  get leader(): NodeId {
    return this.stopped ? 0 : this.softState.leader;
  }

  get isLeader(): boolean {
    return !this.stopped && this.softState.role === 'leader';
  }

  get applied(): number {
    return this.appliedIndex;
  }

  conf(): ConfState {
    return this.core.status().conf;
  }

  // --- inputs ---------------------------------------------------------------------------

  tick(): void {
    if (this.stopped || this.blocked) return;
    this.guarded(() => this.core.tick(), undefined);
    this.host.markDirty(this);
  }

  /** A message from a peer, already validated structurally (peer/raft-messages.ts). */
  step(m: Message): void {
    if (this.stopped || this.blocked) return;
    try {
      this.core.step(m);
    } catch (err) {
      if (err instanceof StoreCorruption) {
        this.halt({ cause: 'damage', detail: err.message });
        return;
      }
      // The core refuses what it finds malformed without changing anything.
      this.host.log.warn(
        { group: this.id, from: m.from, err: (err as Error).message },
        'message refused by Raft',
      );
      return;
    }
    this.host.markDirty(this);
  }

  /**
   * Proposes entries; returns the core's answer and, when accepted, one promise per entry
   * that resolves with the state machine's result of applying it, or rejects when the
   * entry's fate is taken out of this node's hands first (see failWaitersFrom: TIMEOUT when
   * it may still commit, NOT_LEADER when it cannot).
   */
  propose(data: Uint8Array[]): { result: ProposeResult; applied: Promise<unknown>[] } {
    if (this.stopped || this.blocked)
      return { result: { ok: false, reason: 'notLeader', leader: 0 }, applied: [] };
    const result = this.guarded(() => this.core.propose(data), {
      ok: false,
      reason: 'notLeader',
      leader: 0,
    } as ProposeResult);
    this.host.markDirty(this);
    if (!result.ok) return { result, applied: [] };
    const applied: Promise<unknown>[] = [];
    for (let i = result.firstIndex; i <= result.lastIndex; i++) applied.push(this.waitFor(i, result.term));
    return { result, applied };
  }

  /** Waits for the entry at `index` of `term` (already in the log) to be applied. */
  waitFor(index: number, term: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (index <= this.appliedIndex) {
        reject(new CairnError('INTERNAL', `entry ${index} was applied before anyone waited for it`));
        return;
      }
      this.waiters.set(index, { term, resolve, reject });
    });
  }

  /**
   * Confirms leadership with a quorum and resolves with an index whose application makes a
   * read linearizable (ReadIndex, thesis §6.4), once this node has applied through it.
   */
  readIndex(timeoutMs: number): Promise<number> {
    if (this.stopped || this.blocked)
      return Promise.reject(unavailable('the group is not serving right now'));
    const context = this.nextReadContext++;
    const r = this.guarded(() => this.core.readIndex(context), undefined);
    this.host.markDirty(this);
    if (r === undefined) return Promise.reject(unavailable('the group is not serving right now'));
    if (!r.ok) {
      return Promise.reject(
        r.reason === 'noLeader'
          ? new CairnError('NOT_LEADER', 'no leader to confirm the read', { leaderId: 0, leaderAddress: '' })
          : unavailable('too many reads waiting'),
      );
    }
    return new Promise<number>((resolve, reject) => {
      // The core gives no answer when the forwarded request or its reply is lost.
      const cancel = this.host.setTimer(timeoutMs, () => this.cancelRead(context));
      this.reads.set(context, {
        resolve: (i) => {
          cancel();
          resolve(i);
        },
        reject: (e) => {
          cancel();
          reject(e);
        },
      });
    }).then(async (index) => {
      await this.waitApplied(index);
      return index;
    });
  }

  /** Resolves once the state machine has applied through `index`. */
  waitApplied(index: number): Promise<void> {
    if (index <= this.appliedIndex) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  private cancelRead(context: number): void {
    this.reads.get(context)?.reject(unavailable('the read was not confirmed in time'));
    this.reads.delete(context);
  }

  // --- the turn -------------------------------------------------------------------------

  /** Asks the runtime to run this group's turn (e.g. after handing it work directly). */
  markDirty(): void {
    this.host.markDirty(this);
  }

  /** Carries out every Ready the core has. Called by the runtime once per turn when dirty. */
  process(): void {
    this.guarded(() => this.processReadies(), undefined);
  }

  private processReadies(): void {
    while (!this.stopped && !this.blocked && this.core.hasReady()) {
      const rd = this.core.takeReady();
      if (rd.snapshot.some((w) => w.type === 'install')) {
        // Installing replaces the log on disk (asynchronously), and the core may not be
        // called until the LogReader shows the snapshot point: the group pauses — ticks
        // and messages are dropped (Raft retries), proposals refused — until it is done.
        this.blocked = true;
        this.install(rd).then(
          () => {
            this.blocked = false;
            this.host.markDirty(this);
          },
          // A refused snapshot is peer input (a corrupted leader can send it): the core
          // already moved to the snapshot point, so this group restarts from its storage,
          // which still holds the log as it was; the leader finds it behind and sends again.
          (err) => this.failed(err),
        );
        return;
      }
      this.handle(rd, undefined);
    }
  }

  private async install(rd: Ready): Promise<void> {
    let installed: SnapshotMeta | undefined;
    for (const w of rd.snapshot) {
      switch (w.type) {
        case 'writeChunk':
          this.store.writeSnapshotChunk(w.meta, w.offset, w.data, w.done);
          break;
        case 'discardPartial':
          this.store.discardPartialSnapshot(w.meta);
          break;
        case 'install': {
          const state = await this.store.installSnapshot(w.meta);
          if (this.stopped) return;
          this.machine.restore(w.meta, state);
          this.host.observer?.restored(this.id, w.meta);
          this.failWaitersFrom(0, 'a snapshot replaced the log');
          this.appliedConf = w.meta.conf;
          this.advanceApplied(w.meta.index);
          installed = w.meta;
          this.host.log.info(
            { group: this.id, index: w.meta.index, term: w.meta.term, bytes: w.meta.size },
            'snapshot installed',
          );
          break;
        }
      }
    }
    this.handle({ ...rd, snapshot: [] }, installed);
  }

  /** Carries out one Ready; `installed` is the snapshot its install step already put in place. */
  private handle(rd: Ready, installed: SnapshotMeta | undefined): void {
    const slot: PersistSlot = {
      messages: rd.messagesAfterPersist,
      last: undefined,
      install: installed,
      durable: installed !== undefined,
    };
    for (const w of rd.snapshot) {
      switch (w.type) {
        case 'writeChunk':
          this.store.writeSnapshotChunk(w.meta, w.offset, w.data, w.done);
          slot.durable = true;
          break;
        case 'discardPartial':
          this.store.discardPartialSnapshot(w.meta);
          break;
        case 'install':
          throw new Error('an install is handled by install()');
      }
    }
    if (rd.logWrite !== undefined) {
      const w = rd.logWrite;
      if (w.truncateFrom !== undefined)
        this.failWaitersFrom(w.truncateFrom, 'the entry was overwritten', false);
      this.store.write(w);
      const last = w.entries[w.entries.length - 1];
      if (last !== undefined) slot.last = { index: last.index, term: last.term };
      slot.durable = true;
    }
    if (rd.hardState !== undefined) {
      // Term and vote must be durable before the messages that depend on them; the commit
      // index need not be (a restarted node learns it again from the leader), and storage
      // writes hard state whole (new file, fsync, rename, directory fsync) — several fsyncs
      // per commit advance. So a change of commit alone is written only with the next
      // term/vote change or every hardStateCommitInterval entries.
      const hs = rd.hardState;
      const prev = this.persistedHard;
      if (
        prev === undefined ||
        hs.term !== prev.term ||
        hs.vote !== prev.vote ||
        hs.commit - prev.commit >= HARD_STATE_COMMIT_INTERVAL ||
        hs.commit < prev.commit
      ) {
        this.store.setHardState(hs);
        this.persistedHard = { ...hs };
        slot.durable = true;
      }
    }
    if (rd.softState !== undefined) {
      const wasLeader = this.softState.role === 'leader';
      this.softState = rd.softState;
      if (wasLeader && rd.softState.role !== 'leader') {
        // Outcome unknown: the entries may still commit under the next leader.
        this.failWaitersFrom(0, 'leadership was lost before the entry committed; it may still commit');
      }
      this.machine.onSoftState(rd.softState);
    }
    this.sendNow(rd.messagesNow);
    if (slot.durable || slot.messages.length > 0) {
      if (slot.durable || this.slots.length > 0 || this.syncing.length > 0) this.slots.push(slot);
      else this.host.send(this.id, slot.messages); // nothing earlier to wait for
    }
    if (rd.committed.length > 0) {
      for (const e of rd.committed) this.applyEntry(e);
      this.core.applied(this.appliedIndex);
    }
    for (const r of rd.reads) {
      const waiter = this.reads.get(r.context);
      if (waiter === undefined) continue;
      this.reads.delete(r.context);
      if (r.type === 'ready') waiter.resolve(r.index);
      else if (r.reason === 'leaderChanged') {
        waiter.reject(
          new CairnError('NOT_LEADER', 'leadership changed during the read', { leaderId: this.leader }),
        );
      } else waiter.reject(unavailable('the leader is overloaded with reads'));
    }
    if (rd.repairedPast !== undefined) {
      this.host.log.info(
        { group: this.id, index: rd.repairedPast },
        'repaired from the leader; voting again',
      );
      this.store.clearLostEntries();
      this.host.repaired(this, rd.repairedPast);
    }
  }

  private applyEntry(e: Entry): void {
    // Invariant: entries are applied once each, in index order.
    if (e.index !== this.appliedIndex + 1) {
      throw new Error(`group ${this.id}: applying entry ${e.index} after ${this.appliedIndex}`);
    }
    const result = this.machine.apply(e);
    this.host.observer?.applied(this.id, e);
    if (e.type === 'config') this.appliedConf = decodeConfState(e.data);
    const w = this.waiters.get(e.index);
    if (w !== undefined) {
      this.waiters.delete(e.index);
      if (w.term === e.term) w.resolve(result);
      else w.reject(notCommitted('another leader\u2019s entry was committed at its index', this.leader));
    }
    this.advanceApplied(e.index);
  }

  private advanceApplied(index: number): void {
    this.appliedIndex = index;
    if (this.appliedWaiters.length > 0) {
      const ready = this.appliedWaiters.filter((a) => a.index <= this.appliedIndex);
      if (ready.length > 0) {
        this.appliedWaiters = this.appliedWaiters.filter((a) => a.index > this.appliedIndex);
        for (const a of ready) a.resolve();
      }
    }
  }

  /**
   * Fails the proposers waiting for entries from `index` on. `mayCommit`: whether the
   * entries may still commit (a new leader may keep them) — then the outcome is unknown
   * (TIMEOUT, as the proto defines it), and a client must not simply repeat the request;
   * otherwise they are gone (NOT_LEADER: repeating it at the leader is safe).
   */
  private failWaitersFrom(index: number, why: string, mayCommit = true): void {
    for (const [i, w] of this.waiters) {
      if (i >= index) {
        this.waiters.delete(i);
        w.reject(mayCommit ? outcomeUnknown(why) : notCommitted(why, this.leader));
      }
    }
  }

  private sendNow(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const ready: Message[] = [];
    for (const m of messages) {
      if (m.type === 'snapshotChunk' && m.data.length !== m.length) this.fillChunk(m);
      else ready.push(m);
    }
    if (ready.length > 0) this.host.send(this.id, ready);
  }

  /** Leader: a snapshot chunk leaves once its bytes are read from storage. */
  private fillChunk(m: Extract<Message, { type: 'snapshotChunk' }>): void {
    this.store.readSnapshotChunk(m.meta, m.offset, m.length).then(
      (data) => {
        if (this.stopped) return;
        if (data === undefined || data.length !== m.length) {
          // The same snapshot's stream may have changed under it (compaction, retention):
          // the core then sends it anew, from the start, at its new size.
          const now = this.store.snapshotToSend();
          if (
            now !== undefined &&
            now.index === m.meta.index &&
            now.term === m.meta.term &&
            now.size !== m.meta.size
          )
            this.core.snapshotTaken(now);
          this.core.reportSnapshot(m.to, false);
          this.host.markDirty(this);
          return;
        }
        this.host.send(this.id, [{ ...m, data }]);
      },
      // The leader's own snapshot does not read back: it sends nothing it cannot vouch for,
      // and is repaired like any other damage.
      (err) => this.failed(err),
    );
  }

  /** End of turn: one sync covers every Ready of this turn. */
  endTurn(): void {
    if (this.slots.length === 0) return;
    const batch = this.slots;
    this.slots = [];
    const needsSync = batch.some((s) => s.durable);
    if (!needsSync && this.syncing.length === 0) {
      this.complete(batch);
      return;
    }
    this.syncing.push(batch);
    const started = this.host.now();
    this.store.sync().then(
      () => {
        if (this.stopped) return;
        // Syncs resolve in call order (GroupStore.sync), so this batch is the oldest.
        const oldest = this.syncing.shift();
        if (oldest !== batch) {
          this.host.fatal(new Error(`group ${this.id}: storage syncs completed out of order`));
          return;
        }
        this.host.observePersist((this.host.now() - started) / 1000);
        this.complete(batch);
      },
      (err) => this.host.fatal(err),
    );
  }

  private complete(batch: PersistSlot[]): void {
    this.guarded(() => {
      for (const s of batch) {
        if (s.messages.length > 0) this.host.send(this.id, s.messages);
        if (s.last !== undefined) this.core.persisted(s.last.index, s.last.term);
        if (s.install !== undefined) this.core.snapshotInstalled(s.install);
      }
    }, undefined);
    this.host.markDirty(this);
  }

  /**
   * Runs a call into the core (or storage) that may read stored entries. Stored bytes that
   * fail validation stop the group for repair (see the file comment) and `fallback` is
   * returned; any other error is not ours to judge here and propagates.
   */
  private guarded<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof StoreCorruption)) throw err;
      this.halt({ cause: 'damage', detail: err.message });
      return fallback;
    }
  }

  /**
   * An asynchronous storage step failed: refused snapshots and damage restart the group
   * (see the file comment); anything else is fatal.
   */
  private failed(err: unknown): void {
    // A stopped group's store is closing or closed (a restart, or the node stopping): what
    // its storage steps still in flight fail with is moot — the core is not called again,
    // and a restart opens the store afresh (simulator seed 110198: an install under way
    // when a restart closed the store stopped the whole node with "storage is closed").
    if (this.stopped) return;
    if (err instanceof SnapshotRejected) {
      this.host.log.warn({ group: this.id, err: err.message }, 'received snapshot refused');
      this.halt({ cause: 'snapshot-rejected', detail: err.message });
    } else if (err instanceof StoreCorruption) {
      this.halt({ cause: 'damage', detail: err.message });
    } else this.host.fatal(err);
  }

  /** Stops the group (its core is not called again) and asks the host to start it anew. */
  halt(why: GroupRestart): void {
    if (this.stopped) return;
    this.host.log.warn({ group: this.id, cause: why.cause, detail: why.detail }, 'group stops to restart');
    this.stop(
      why.cause === 'damage'
        ? 'storage found damage; the group restarts to be repaired'
        : 'a received snapshot was refused; the group restarts',
    );
    this.host.restart(this, why);
  }

  /**
   * Takes a snapshot at the applied index with the state machine's part `state` (which
   * must reflect exactly that index: the caller captures it synchronously with this call).
   * Storage may then drop the log through it; the leader sends it to followers behind.
   */
  async takeSnapshot(state: Uint8Array): Promise<SnapshotMeta | undefined> {
    if (this.stopped || this.snapshotting || this.blocked) return undefined;
    const index = this.appliedIndex;
    const term = this.store.term(index);
    if (term === undefined || index === 0) return undefined;
    this.snapshotting = true;
    try {
      const meta = await this.store.takeSnapshot(index, term, this.appliedConf, state);
      if (!this.stopped) {
        this.core.snapshotTaken(meta);
        this.host.markDirty(this);
      }
      return meta;
    } finally {
      this.snapshotting = false;
    }
  }

  /** Stops the group: pending proposals and reads fail; storage is closed by the caller. */
  stop(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopListening();
    this.failWaitersFrom(0, why);
    for (const r of this.reads.values()) r.reject(unavailable(why));
    this.reads.clear();
  }

  get isStopped(): boolean {
    return this.stopped;
  }
}

/** Entries the commit index may advance before a commit-only hard state change is written. */
const HARD_STATE_COMMIT_INTERVAL = 1024;

function notCommitted(why: string, leader: NodeId): CairnError {
  return new CairnError('NOT_LEADER', `${why} (it was not committed)`, { leaderId: leader });
}

function outcomeUnknown(why: string): CairnError {
  return new CairnError('TIMEOUT', `${why} (outcome unknown: it may still commit)`);
}
