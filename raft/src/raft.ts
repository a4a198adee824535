// The Raft core: one object per Raft group, a deterministic state machine driven by
// inputs (tick, step, propose, readIndex, persisted, applied, snapshot and membership
// inputs) and answering with Ready outputs (ready.ts says what the driver owes for each).
// No I/O, no clock, no randomness of its own: the driver's PRNG picks election timeouts.
//
// Shape (as in the paper's Figure 2 and etcd-io/raft): step() handles what is common to
// every role (terms, votes), then dispatches to stepLeader / stepCandidate / stepFollower;
// becomeFollower / becomeCandidate / becomeLeader change role.
//
// Section references: "§5.x" the Raft paper (Ongaro & Ousterhout 2014), "thesis §x" the
// Raft dissertation (Ongaro 2014).

import { check, isCount, RaftError } from './errors.js';
import { RaftLog } from './log.js';
import {
  applyConfChange,
  type ConfChange,
  ConfigHistory,
  confStateProblem,
  decodeConfState,
  encodeConfState,
  isLearner,
  isMember,
  isVoter,
  quorumSize,
} from './membership.js';
import type { LogWrite } from './memory-log.js';
import {
  type AppendMessage,
  type AppendResponse,
  type HeartbeatMessage,
  type HeartbeatResponse,
  type Message,
  needsPersist,
  type ReadIndexResponse,
  type SnapshotAckMessage,
  type SnapshotChunkMessage,
  type VoteMessage,
  type VoteResponse,
} from './messages.js';
import { type RaftOptions, resolveOptions } from './options.js';
import { Progress } from './progress.js';
import { quorumValue } from './quorum.js';
import { ReadQueue } from './read-index.js';
import type {
  ProposeResult,
  ReadRequestResult,
  ReadResult,
  Ready,
  Role,
  SnapshotWork,
  SoftState,
  TransferResult,
} from './ready.js';
import type { ConfState, Entry, HardState, LogReader, NodeId, SnapshotMeta } from './types.js';

/** How to build a core: for a new node, or for a restart from what the driver persisted. */
export interface RaftInit {
  id: NodeId;
  /** The stored log. On restart, everything in it is taken as durable. */
  log: LogReader;
  /**
   * Membership as of index `applied`. For a new cluster: the initial voters (every node
   * starts with the same). For a node joining an existing cluster: empty voters and learners.
   * On restart the core scans the log after `applied` for newer config entries.
   */
  conf: ConfState;
  /** Persisted term, vote and commit; omit for a new node. */
  hardState?: HardState;
  /** Index the state machine reflects at start (≥ the snapshot index); default log.firstIndex() - 1. */
  applied?: number;
  /** The newest snapshot the driver holds (required when the log has been compacted). */
  snapshot?: SnapshotMeta;
  /** Uniform floats in [0, 1) from the driver's seeded PRNG (election timeouts). */
  random: () => number;
  options?: Partial<RaftOptions>;
  /**
   * Storage found it may have lost entries this node acknowledged (DESIGN §6): the node
   * neither votes nor campaigns until it has caught up from a leader through the bound that
   * leader gives it (checkRepair); the index is the driver's record of the loss (1 when
   * nothing says how far the log was). The driver keeps this durable until
   * Ready.repairedPast says the repair is done.
   */
  lostEntries?: { lastIndexBeforeRepair: number };
  /** A snapshot partly received before a restart, to resume the transfer where it stopped. */
  partialSnapshot?: { meta: SnapshotMeta; receivedBytes: number };
}

/** A snapshot of the core's state, for tests, metrics and the driver's status pages. */
export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId;
  leader: NodeId;
  commit: number;
  applied: number;
  persisted: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  /** Leader only: each member's replication state. */
  progress: { id: NodeId; match: number; next: number; state: string; learner: boolean }[];
  transferee: NodeId;
  recoveringUntil: number;
}

/** A follower repairing lost entries gets its bound, with its token, on appends and heartbeats. */
function withRepairBound(msg: AppendMessage | HeartbeatMessage, pr: Progress): void {
  if (pr.repairBound === 0) return;
  msg.repairBound = pr.repairBound;
  msg.repairToken = pr.repairToken;
}

/** Shared empty lists handed out in place of new ones; frozen so no caller can fill them. */
const EMPTY: readonly never[] = Object.freeze([]);
const EMPTY_ENTRIES: readonly Entry[] = EMPTY;

export class RaftCore {
  readonly id: NodeId;
  private readonly opts: RaftOptions;
  private readonly random: () => number;
  private readonly log: RaftLog;
  private readonly conf: ConfigHistory;

  private term = 0;
  private vote: NodeId = 0;
  private leader: NodeId = 0;
  private role: Role = 'follower';

  /** Ticks since the last valid message from a leader (follower), or since the last CheckQuorum round (leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** In [electionTimeoutTicks, 2 × electionTimeoutTicks), redrawn on every role change. */
  private randomizedElectionTimeout = 0;

  /** Candidate: the answers so far (true = granted). */
  private readonly votes = new Map<NodeId, boolean>();

  // ---- leader state ----
  private readonly progress = new Map<NodeId, Progress>();
  /** Every member but self, for sending. */
  private peers: Progress[] = [];
  /** Voters' progress (self included when a voter), for quorums. */
  private voterProgress: Progress[] = [];
  /** Scratch for quorum arithmetic, grown with the voter count (no allocation per use). */
  private quorumValues = new Float64Array(8);
  private quorumScratch = new Float64Array(8);
  /** Index of this leader's first entry (its no-op): commit ≥ it means "committed in my term". */
  private termStartIndex = 0;
  /**
   * A leader elected by its own vote alone (one voter) leads before its term and vote are
   * durable: they go to disk with its no-op, in one fsync. Until that no-op is persisted it
   * takes no proposals. Otherwise a power loss could take the term with the entries, and
   * the node, elected again in the same term, would write different entries under the
   * same (index, term) as the lost ones — which a learner may already hold, and would keep.
   */
  private termDurableAt = 0;
  private transferee: NodeId = 0;
  private transferElapsed = 0;
  /** Uncommitted proposal bytes, and (lastIndex, bytes) marks to release them at commit. */
  private uncommittedBytes = 0;
  private uncommittedMarks: number[] = [];
  private uncommittedHead = 0;
  private readSeq = 0;
  private readRoundRequested = false;
  private readonly pendingReads = new ReadQueue();
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private readsAwaitingCommit: { context: number; from: NodeId }[] = [];

  // ---- snapshots ----
  /** The newest snapshot the driver holds (what the leader sends to a follower behind the log start). */
  private snapshotMeta: SnapshotMeta | undefined;
  /** Follower: the snapshot being received and how many bytes of it are written. */
  private receiving: { meta: SnapshotMeta; offset: number } | undefined;
  /** Follower: an install was handed to the driver and not yet confirmed. */
  private installing: SnapshotMeta | undefined;

  // ---- lost-entries repair (DESIGN §6) ----
  private recoveringUntil = 0;
  /** Highest index through which our log was confirmed to match a leader's. */
  private leaderMatched = 0;
  /**
   * The current term's leader's bound for our repair (AppendMessage.repairBound): 0 until
   * it has sent one. Each term's leader gives its own.
   */
  private repairBound = 0;
  /**
   * Drawn at each loss of entries: our answers carry it while we ask for a bound, and only a
   * bound carrying it back is taken — one the leader made for an earlier loss (before a
   * restart, or before damage found since) does not cover what we acknowledged after it.
   */
  private repairToken = 0;
  private repairedPast: number | undefined;

  // ---- apply flow control: (lastIndex, bytes) of handed-out batches not yet applied ----
  private applyMarks: number[] = [];
  private applyOutstandingBytes = 0;

  // ---- outputs since the last Ready ----
  private msgsNow: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private readResults: ReadResult[] = [];
  private snapshotWork: SnapshotWork[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;

  constructor(init: RaftInit) {
    check(!!init && typeof init === 'object', 'invalidConfig', 'init must be an object');
    const { id, log } = init;
    check(isCount(id) && id > 0, 'invalidConfig', `id must be a positive integer, got ${String(id)}`);
    check(typeof init.random === 'function', 'invalidConfig', 'random must be a function');
    check(
      !!log && typeof log.firstIndex === 'function' && typeof log.entries === 'function',
      'invalidConfig',
      'log must be a LogReader',
    );
    const problem = confStateProblem(init.conf);
    check(problem === '', 'invalidConfig', `conf: ${problem}`);
    this.opts = resolveOptions(init.options);
    this.id = id;
    this.random = init.random;

    const first = log.firstIndex();
    const last = log.lastIndex();
    check(
      isCount(first) && first >= 1 && isCount(last) && last >= first - 1,
      'invalidConfig',
      'bad log bounds',
    );
    const applied = init.applied ?? first - 1;
    check(
      isCount(applied) && applied >= first - 1 && applied <= last,
      'invalidConfig',
      `applied ${applied} outside [${first - 1}, ${last}]`,
    );
    const hs = init.hardState ?? { term: 0, vote: 0, commit: 0 };
    check(isCount(hs.term) && isCount(hs.vote) && isCount(hs.commit), 'invalidConfig', 'bad hard state');
    check(
      log.term(last) !== undefined && log.term(last)! <= hs.term,
      'invalidConfig',
      'log term beyond hard state term',
    );
    if (init.snapshot) {
      const m = init.snapshot;
      check(snapshotMetaProblem(m) === '', 'invalidConfig', `snapshot: ${snapshotMetaProblem(m)}`);
      check(
        m.index >= first - 1 && m.index <= applied,
        'invalidConfig',
        'snapshot must cover the compacted log',
      );
      this.snapshotMeta = m;
    } else {
      check(first === 1, 'invalidConfig', 'a compacted log needs its snapshot');
    }

    // A commit index beyond the durable log (commit written before its entries reached disk)
    // is only knowledge we can no longer use: lowering it is always safe.
    const commit = Math.min(Math.max(hs.commit, applied), last);
    this.log = new RaftLog(log, commit, applied);
    this.conf = new ConfigHistory(init.conf, applied);
    // Config entries after `applied` are newer than init.conf (configs apply when appended).
    for (let lo = applied + 1; lo <= last; ) {
      const batch = log.entries(lo, last + 1, this.opts.maxApplyBytes);
      for (const e of batch) if (e.type === 'config') this.conf.push(e.index, decodeConfState(e.data));
      lo += batch.length;
    }
    this.conf.compact(commit);

    if (init.lostEntries) {
      const x = init.lostEntries.lastIndexBeforeRepair;
      check(isCount(x), 'invalidConfig', 'lostEntries.lastIndexBeforeRepair must be an integer ≥ 0');
      this.recoveringUntil = x;
      this.repairToken = this.drawRepairToken();
    }
    if (init.partialSnapshot) {
      const p = init.partialSnapshot;
      check(snapshotMetaProblem(p.meta) === '', 'invalidConfig', 'partialSnapshot.meta');
      check(
        isCount(p.receivedBytes) && p.receivedBytes <= p.meta.size,
        'invalidConfig',
        'partialSnapshot bytes',
      );
      this.receiving = { meta: p.meta, offset: p.receivedBytes };
    }

    this.term = hs.term;
    this.vote = hs.vote;
    this.prevHard = { term: hs.term, vote: hs.vote, commit };
    this.prevSoft = { leader: 0, role: 'follower' };
    this.becomeFollower(this.term, 0);
  }

  // =====================================================================================
  // Inputs
  // =====================================================================================

  /** Advances the logical clock by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /**
   * Handles a message from a peer. Throws RaftError('invalidMessage') for a malformed
   * message (changing nothing); otherwise never throws for anything a peer can send.
   */
  step(m: Message): void {
    validateMessage(m, this.id);

    // §5.1: terms order everything. A higher term makes us a follower in it, with three
    // exceptions that keep a disruptive or stale node from raising everyone's term.
    if (m.term > this.term) {
      if (m.type === 'vote') {
        // Thesis §4.2.3: a node that heard from a leader within the minimum election timeout
        // ignores vote requests (removed servers and rejoining partitioned nodes cannot
        // disrupt a working leader), unless the campaign comes from a leadership transfer.
        // Only with CheckQuorum: without it a leader cut off from a majority never steps
        // down, so "I heard from a leader" says nothing about whether one still leads.
        const inLease =
          this.opts.checkQuorum && this.leader !== 0 && this.electionElapsed < this.opts.electionTimeoutTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === 'vote' && m.pre) {
        // A pre-vote asks about a future term; answering changes nothing of ours.
      } else if (m.type === 'voteResponse' && m.pre && m.granted) {
        // A granted pre-vote carries the term we would campaign in, not a newer one.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshotChunk';
        this.becomeFollower(m.term, fromLeader ? m.from : 0);
      }
    } else if (m.term < this.term) {
      if (m.type === 'append' || m.type === 'heartbeat') {
        // A stale leader: tell it our term so it steps down. Without this, a node whose term
        // rose during a partition could never be heard (with PreVote it cannot raise the
        // leader's term by campaigning), and the cluster would stall.
        this.send(this.appendResponse(m.from, 0, false, 0, 0));
      } else if (m.type === 'vote' && m.pre) {
        this.send(this.voteResponse(m.from, this.term, true, false));
      }
      return;
    }

    switch (m.type) {
      case 'vote':
        this.handleVote(m);
        return;
      case 'readIndex':
        if (this.role === 'leader') this.handleReadIndexRequest(m.context, m.from);
        else this.send(this.readIndexResponse(m.from, m.context, 0, true));
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /**
   * Appends client data as 'normal' entries (leader only). The entries are committed when a
   * quorum holds them durably; the driver learns that when they appear in Ready.committed.
   */
  propose(data: readonly Uint8Array[]): ProposeResult {
    check(
      Array.isArray(data) && data.length > 0,
      'invalidInput',
      'propose needs a non-empty array of Uint8Array',
    );
    let bytes = 0;
    for (const d of data) {
      check(d instanceof Uint8Array, 'invalidInput', 'propose: data must be Uint8Array');
      bytes += d.byteLength;
    }
    const refused = this.refuseProposal(bytes);
    if (refused) return refused;
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = new Array(data.length);
    for (let k = 0; k < data.length; k++)
      entries[k] = { index: first + k, term: this.term, type: 'normal', data: data[k]! };
    this.appendAsLeader(entries, bytes);
    return { ok: true, firstIndex: first, lastIndex: first + data.length - 1, term: this.term };
  }

  /** Proposes a single-server membership change (see membership.ts for the rules). */
  proposeConfChange(change: ConfChange): ProposeResult {
    const refused = this.refuseProposal(0);
    if (refused) return refused;
    const reject = (
      reason: 'changePending' | 'leaderNotReady' | 'notCaughtUp' | 'invalidChange',
      detail?: string,
    ) =>
      detail === undefined
        ? { ok: false as const, reason, leader: this.leader }
        : { ok: false as const, reason, leader: this.leader, detail };
    if (this.conf.currentIndex > this.log.committed) return reject('changePending');
    if (this.log.committed < this.termStartIndex) return reject('leaderNotReady');
    const next = applyConfChange(this.conf.current, change);
    if (typeof next === 'string') return reject('invalidChange', next);
    if (change.type === 'promote') {
      const pr = this.progress.get(change.node);
      // A new voter must hold every committed entry: otherwise a later single-server change
      // (removing an old voter) could leave a committed entry on less than a quorum of the
      // new configuration, and a minority of failed disks could then lose it.
      if (
        !pr ||
        pr.match < this.log.committed ||
        pr.match + this.opts.promotionMaxLagEntries < this.log.lastIndex()
      )
        return reject('notCaughtUp');
    }
    const index = this.log.lastIndex() + 1;
    const data = encodeConfState(next);
    this.appendAsLeader([{ index, term: this.term, type: 'config', data }], data.byteLength);
    return { ok: true, firstIndex: index, lastIndex: index, term: this.term };
  }

  /**
   * Asks for a linearizable read. The outcome comes as a ReadResult with the same context
   * in a later Ready (on a leader of a one-voter cluster, possibly the next one). A follower
   * forwards the request to its leader; if that message or its answer is lost no result
   * comes, so the driver times reads out itself.
   */
  readIndex(context: number): ReadRequestResult {
    check(
      typeof context === 'number' && Number.isFinite(context),
      'invalidInput',
      'read context must be a number',
    );
    if (this.role === 'leader') {
      if (this.pendingReadCount() >= this.opts.maxPendingReads) return { ok: false, reason: 'overloaded' };
      this.handleReadIndexRequest(context, this.id);
      return { ok: true };
    }
    if (this.leader === 0) return { ok: false, reason: 'noLeader' };
    this.send({ type: 'readIndex', term: this.term, from: this.id, to: this.leader, context });
    return { ok: true };
  }

  /**
   * The driver made the log durable through `index`, whose entry has `term`. Ignored when
   * the log no longer holds that entry (it was replaced while the write was in flight).
   */
  persisted(index: number, term: number): void {
    check(isCount(index) && isCount(term), 'invalidInput', 'persisted(index, term) needs integers ≥ 0');
    // Durability is reported in write order, so an entry after a pending install being durable
    // means the install is too.
    if (this.log.term(index) !== term || index <= this.log.persisted) return;
    this.log.persisted = index;
    if (this.role === 'leader') {
      const self = this.progress.get(this.id);
      if (self?.maybeUpdate(index) && !self.isLearner && index > this.log.committed) this.maybeCommit();
    }
    this.checkRepair();
  }

  /** The state machine has applied every entry through `index` (handed out in Ready.committed). */
  applied(index: number): void {
    check(isCount(index), 'invalidInput', 'applied(index) needs an integer ≥ 0');
    check(
      index <= this.log.applying,
      'invalidInput',
      `applied ${index} beyond handed-out ${this.log.applying}`,
    );
    if (index <= this.log.applied) return;
    this.log.applied = index;
    // Release the apply budget of every batch that ends at or before index.
    let k = 0;
    while (k < this.applyMarks.length && this.applyMarks[k]! <= index) {
      this.applyOutstandingBytes -= this.applyMarks[k + 1]!;
      k += 2;
    }
    if (k > 0) this.applyMarks.splice(0, k);
  }

  /**
   * The driver took a snapshot of the state machine at meta.index (≤ applied). It may now
   * compact the log through meta.index; the leader sends this snapshot to followers whose
   * next entry is no longer in the log. The same snapshot (index and term) again with
   * another size replaces it: the driver's stream for it changed (a transfer of the old
   * one is refused by the driver, and starts again at 0 with this one).
   */
  snapshotTaken(meta: SnapshotMeta): void {
    const problem = snapshotMetaProblem(meta);
    check(problem === '', 'invalidInput', `snapshot: ${problem}`);
    check(
      meta.index <= this.log.applied,
      'invalidInput',
      `snapshot at ${meta.index} beyond applied ${this.log.applied}`,
    );
    const t = this.log.term(meta.index);
    check(t === undefined || t === meta.term, 'invalidInput', `snapshot term ${meta.term} ≠ log term ${t}`);
    const s = this.snapshotMeta;
    if (
      !s ||
      meta.index > s.index ||
      (meta.index === s.index && meta.term === s.term && meta.size !== s.size)
    )
      this.snapshotMeta = meta;
  }

  /** The 'install' of `meta` is durable and the state machine reflects it. */
  snapshotInstalled(meta: SnapshotMeta): void {
    check(
      !!this.installing && meta.index === this.installing.index && meta.term === this.installing.term,
      'invalidInput',
      `no install of snapshot ${meta?.index}/${meta?.term} is pending`,
    );
    this.installing = undefined;
    this.log.snapshotInstalled(meta.index);
    this.applyMarks = [];
    this.applyOutstandingBytes = 0;
    if (!this.snapshotMeta || meta.index > this.snapshotMeta.index) this.snapshotMeta = meta;
    this.checkRepair();
  }

  /** Leadership transfer (thesis §3.10): catch `to` up, then tell it to campaign at once. */
  transferLeadership(to: NodeId): TransferResult {
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.leader };
    if (to === this.id) return { ok: false, reason: 'self', leader: this.leader };
    const pr = this.progress.get(to);
    if (!pr) return { ok: false, reason: 'unknownNode', leader: this.leader };
    if (pr.isLearner) return { ok: false, reason: 'learner', leader: this.leader };
    if (this.transferee === to) return { ok: true };
    this.transferee = to;
    this.transferElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else pr.forceAppend = true;
    return { ok: true };
  }

  /** The transport could not reach `peer`: stop pipelining to it and probe. */
  reportUnreachable(peer: NodeId): void {
    const pr = this.role === 'leader' ? this.progress.get(peer) : undefined;
    if (pr && pr.state === 'replicate') pr.becomeProbe();
  }

  /**
   * The driver could not send the snapshot to `peer` (ok = false: it no longer has that
   * snapshot, or the connection failed): the leader drops the transfer and starts again on
   * the next heartbeat answer, with its newest snapshot, resuming where the follower got to.
   * ok = true needs no action (the follower's answers drive the transfer).
   */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    const pr = this.role === 'leader' ? this.progress.get(peer) : undefined;
    if (ok || pr?.state !== 'snapshot') return;
    pr.snapshot = undefined;
    pr.becomeProbe();
    pr.probeSent = true;
  }

  /**
   * Storage found it may have lost entries this node acknowledged; its last index before the
   * repair was `lastIndexBeforeRepair`. Until it has caught up from a leader through the
   * bound that leader gives it, it neither votes nor campaigns (DESIGN §6). A leader or
   * candidate steps down. Storage that must cut its log to repair it does so while the
   * core is down and passes RaftInit.lostEntries instead (the log never changes behind a
   * running core's back).
   */
  reportLostEntries(lastIndexBeforeRepair: number): void {
    check(isCount(lastIndexBeforeRepair), 'invalidInput', 'lastIndexBeforeRepair must be an integer ≥ 0');
    this.recoveringUntil = Math.max(this.recoveringUntil, lastIndexBeforeRepair);
    this.leaderMatched = Math.min(this.leaderMatched, this.log.lastIndex());
    // What we acknowledged since the leader's bound may be gone too: ask for a new one.
    this.repairBound = 0;
    this.repairToken = this.drawRepairToken();
    if (this.role !== 'follower') this.becomeFollower(this.term, 0);
    this.checkRepair();
  }

  // =====================================================================================
  // Outputs
  // =====================================================================================

  /** Whether takeReady() would return anything. */
  hasReady(): boolean {
    this.flush();
    if (this.msgsNow.length > 0 || this.msgsAfterPersist.length > 0) return true;
    if (this.readResults.length > 0 || this.snapshotWork.length > 0 || this.repairedPast !== undefined)
      return true;
    if (this.log.hasPendingWrite()) return true;
    const hs = this.prevHard;
    if (hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.log.committed) return true;
    if (this.prevSoft.leader !== this.leader || this.prevSoft.role !== this.role) return true;
    return this.canApply();
  }

  /**
   * Everything the core has for the driver since the last call; the driver must do its part
   * (ready.ts) before the next call into the core: in particular, storage must reflect the
   * snapshot install and the log write at once.
   */
  takeReady(): Ready {
    this.flush();
    let hardState: HardState | undefined;
    const hs = this.prevHard;
    if (hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.log.committed) {
      hardState = { term: this.term, vote: this.vote, commit: this.log.committed };
      this.prevHard = hardState;
    }
    let softState: SoftState | undefined;
    if (this.prevSoft.leader !== this.leader || this.prevSoft.role !== this.role) {
      softState = { leader: this.leader, role: this.role };
      this.prevSoft = softState;
    }
    let committed: readonly Entry[] = EMPTY_ENTRIES;
    if (this.canApply()) {
      const budget = this.opts.maxApplyBytes - this.applyOutstandingBytes;
      committed = this.log.entries(this.log.applying + 1, this.log.applyLimit() + 1, budget);
      let bytes = 0;
      for (const e of committed) bytes += e.data.byteLength;
      this.log.applying = committed[committed.length - 1]!.index;
      this.applyMarks.push(this.log.applying, bytes);
      this.applyOutstandingBytes += bytes;
    }
    this.log.takeSnapshot();
    const logWrite: LogWrite | undefined = this.log.takeWrite();
    // Each list goes to the driver and the core starts a new one. An empty list is never
    // handed out live (the core would keep appending to the driver's Ready): a frozen
    // shared empty list takes its place, which costs no allocation.
    const ready: Ready = {
      softState,
      hardState,
      snapshot: this.snapshotWork.length > 0 ? this.snapshotWork : EMPTY,
      logWrite,
      messagesNow: this.msgsNow.length > 0 ? this.msgsNow : EMPTY,
      messagesAfterPersist: this.msgsAfterPersist.length > 0 ? this.msgsAfterPersist : EMPTY,
      committed,
      reads: this.readResults.length > 0 ? this.readResults : EMPTY,
      repairedPast: this.repairedPast,
    };
    if (this.snapshotWork.length > 0) this.snapshotWork = [];
    if (this.msgsNow.length > 0) this.msgsNow = [];
    if (this.msgsAfterPersist.length > 0) this.msgsAfterPersist = [];
    if (this.readResults.length > 0) this.readResults = [];
    this.repairedPast = undefined;
    return ready;
  }

  status(): RaftStatus {
    const progress: RaftStatus['progress'] = [];
    if (this.role === 'leader') {
      for (const pr of this.progress.values()) {
        progress.push({ id: pr.id, match: pr.match, next: pr.next, state: pr.state, learner: pr.isLearner });
      }
    }
    const c = this.conf.current;
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      persisted: this.log.persisted,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: { voters: [...c.voters], learners: [...c.learners] },
      progress,
      transferee: this.transferee,
      recoveringUntil: this.recoveringUntil,
    };
  }

  get currentRole(): Role {
    return this.role;
  }
  get currentTerm(): number {
    return this.term;
  }
  get currentLeader(): NodeId {
    return this.leader;
  }
  get commitIndex(): number {
    return this.log.committed;
  }
  get lastIndex(): number {
    return this.log.lastIndex();
  }
  /** Term of the entry at `index` in the core's view of the log (undefined outside it). */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  // =====================================================================================
  // Roles
  // =====================================================================================

  private becomeFollower(term: number, leader: NodeId): void {
    if (this.role === 'leader') this.leaveLeadership();
    if (term !== this.term) {
      this.term = term;
      this.vote = 0;
      this.repairBound = 0;
      // Only the committed prefix surely matches the new term's leader.
      this.leaderMatched = Math.min(this.leaderMatched, this.log.committed);
    }
    this.role = 'follower';
    this.leader = leader;
    this.votes.clear();
    this.resetTimers();
  }

  /** §5.2 (and thesis §9.6 when pre): start an election. */
  private becomeCandidate(pre: boolean, transfer: boolean): void {
    this.votes.clear();
    this.leader = 0;
    this.resetTimers();
    let voteTerm: number;
    if (pre) {
      // A pre-candidate asks whether it could win in term + 1 without changing its term.
      this.role = 'preCandidate';
      voteTerm = this.term + 1;
    } else {
      this.role = 'candidate';
      this.term += 1;
      this.vote = this.id;
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (this.pollVotes() === 'won') {
      if (pre) this.becomeCandidate(false, transfer);
      else {
        this.becomeLeader();
        this.termDurableAt = this.termStartIndex;
      }
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const v of this.conf.current.voters) {
      if (v === this.id) continue;
      const msg: VoteMessage = {
        type: 'vote',
        term: voteTerm,
        from: this.id,
        to: v,
        pre,
        lastIndex,
        lastTerm,
        transfer,
      };
      this.send(msg);
    }
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leader = this.id;
    this.votes.clear();
    this.resetTimers();
    this.transferee = 0;
    this.uncommittedBytes = 0;
    this.uncommittedMarks = [];
    this.uncommittedHead = 0;
    this.progress.clear();
    this.syncProgress();
    const self = this.progress.get(this.id)!;
    self.match = this.log.persisted;
    self.next = this.log.lastIndex() + 1;
    // §8 / thesis §6.4: a no-op of the new term lets the leader learn what is committed,
    // and gates config changes and reads until it commits.
    this.termStartIndex = this.log.lastIndex() + 1;
    this.termDurableAt = 0;
    this.appendAsLeader(
      [{ index: this.termStartIndex, term: this.term, type: 'noop', data: new Uint8Array(0) }],
      0,
    );
  }

  /** Leader → follower: fail what only a leader could finish. */
  private leaveLeadership(): void {
    for (const r of this.pendingReads.drain()) this.failRead(r.context, r.from);
    for (const r of this.readsAwaitingCommit) this.failRead(r.context, r.from);
    this.readsAwaitingCommit = [];
    this.readRoundRequested = false;
    this.progress.clear();
    this.peers = [];
    this.voterProgress = [];
    this.transferee = 0;
    this.uncommittedBytes = 0;
    this.uncommittedMarks = [];
    this.uncommittedHead = 0;
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    const t = this.opts.electionTimeoutTicks;
    this.randomizedElectionTimeout = t + Math.min(t - 1, Math.floor(this.random() * t));
  }

  /**
   * May this node stand for election? Voters only, and not while repairing lost entries or
   * installing a snapshot. A node whose newest config entry removes (or demotes) it but is
   * not yet committed still counts as a voter of the previous configuration: it may hold the
   * only copy of that entry, and without its candidacy no one else could win. Elected, it
   * counts votes and acks by the newest configuration, commits it, and steps down, as a
   * leader that removed itself does (thesis §4.2.2).
   */
  private promotable(): boolean {
    if (this.recoveringUntil !== 0 || this.installing) return false;
    if (isVoter(this.conf.current, this.id)) return true;
    const prev = this.conf.previous;
    return this.conf.currentIndex > this.log.committed && prev !== undefined && isVoter(prev, this.id);
  }

  private pollVotes(): 'won' | 'lost' | 'pending' {
    const voters = this.conf.current.voters;
    let granted = 0;
    let rejected = 0;
    for (const v of voters) {
      const g = this.votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    const q = quorumSize(voters.length);
    if (granted >= q) return 'won';
    if (rejected > voters.length - q) return 'lost';
    return 'pending';
  }

  // =====================================================================================
  // Ticks
  // =====================================================================================

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.becomeCandidate(this.opts.preVote, false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.transferee !== 0 && ++this.transferElapsed >= this.opts.electionTimeoutTicks) {
      // The target did not take over in an election timeout: keep leading (thesis §3.10).
      this.transferee = 0;
    }
    if (this.electionElapsed >= this.opts.electionTimeoutTicks) {
      this.electionElapsed = 0;
      // Thesis §6.2: a leader that has not heard from a quorum in an election timeout steps
      // down, so clients find the real leader and its reads stop.
      if (this.opts.checkQuorum && !this.quorumRecentlyActive()) {
        this.becomeFollower(this.term, 0);
        return;
      }
    }
    for (const pr of this.peers) {
      const s = pr.snapshot;
      if (pr.state === 'snapshot' && s && ++s.idleTicks >= this.opts.snapshotStallTicks) {
        // A stalled transfer resends from what the follower confirmed: never paused forever.
        s.idleTicks = 0;
        s.sentOffset = s.ackedOffset;
        s.finished = false;
      }
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  private quorumRecentlyActive(): boolean {
    let active = 0;
    for (const pr of this.voterProgress) {
      if (pr.id === this.id || (pr.recentActive && pr.repairToken === 0)) active++;
    }
    for (const pr of this.peers) pr.recentActive = false;
    return active >= quorumSize(this.voterProgress.length);
  }

  // =====================================================================================
  // Votes (every role)
  // =====================================================================================

  private handleVote(m: VoteMessage): void {
    // §5.2, §5.4.1: one vote per term, only for a candidate whose log is at least as
    // up-to-date. A pre-vote is granted on the same terms for a future term, without
    // recording anything. A node repairing lost entries votes for nobody (DESIGN §6).
    const canVote =
      this.vote === m.from || (this.vote === 0 && this.leader === 0) || (m.pre && m.term > this.term);
    if (canVote && this.recoveringUntil === 0 && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send(this.voteResponse(m.from, m.term, m.pre, true));
      if (!m.pre) {
        this.vote = m.from;
        this.electionElapsed = 0;
      }
    } else {
      this.send(this.voteResponse(m.from, this.term, m.pre, false));
    }
  }

  // =====================================================================================
  // Follower
  // =====================================================================================

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshotChunk':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshotChunk(m);
        return;
      case 'timeoutNow':
        // Thesis §3.10: campaign at once, skipping PreVote, with voters told to ignore their lease.
        if (this.promotable()) this.becomeCandidate(false, true);
        return;
      case 'readIndexResponse':
        this.readResults.push(
          m.reject
            ? { type: 'failed', context: m.context, reason: 'leaderChanged' }
            : { type: 'ready', context: m.context, index: m.index },
        );
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshotChunk':
        // §5.2: a leader of our term exists; we lost.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'voteResponse': {
        if (m.pre !== (this.role === 'preCandidate')) return;
        if (!isVoter(this.conf.current, m.from)) return;
        this.votes.set(m.from, m.granted);
        const result = this.pollVotes();
        if (result === 'won') {
          if (this.role === 'preCandidate') this.becomeCandidate(false, false);
          else this.becomeLeader();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, 0);
        }
        return;
      }
      case 'readIndexResponse':
        this.stepFollower(m);
        return;
      default:
        return;
    }
  }

  /** §5.3: the consistency check, then append, truncating a conflicting suffix. */
  private handleAppend(m: AppendMessage): void {
    const log = this.log;
    this.takeRepairBound(m.repairBound, m.repairToken);
    // While an install is being confirmed the log already starts after the snapshot point:
    // appends continue from there (only applying waits for snapshotInstalled()).
    if (m.prevIndex < log.committed) {
      // Everything through our commit index matches the leader's log (it is committed).
      this.send(this.appendResponse(m.from, log.committed, false, 0, 0));
      return;
    }
    if (!log.matchTerm(m.prevIndex, m.prevTerm)) {
      // Reject, with a hint that lets the leader skip the whole conflicting term: the
      // last index ≤ prevIndex whose term ≤ prevTerm (or our last index if shorter).
      const hint = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
      this.send(this.appendResponse(m.from, m.prevIndex, true, hint.index, hint.term));
      return;
    }
    const lastNew = m.prevIndex + m.entries.length;
    if (m.entries.length > 0) {
      const conflict = log.findConflict(m.entries);
      if (conflict !== 0) {
        if (conflict <= log.committed) {
          throw new RaftError('invariant', `entry ${conflict} conflicts with committed ${log.committed}`);
        }
        const fresh =
          conflict === m.entries[0]!.index ? m.entries : m.entries.slice(conflict - m.entries[0]!.index);
        this.appendAsFollower(fresh);
      }
    }
    // Commit only what we verified matches the leader's log: through lastNew.
    this.commitTo(Math.min(m.commit, lastNew));
    if (lastNew > this.leaderMatched) this.leaderMatched = lastNew;
    this.send(this.appendResponse(m.from, lastNew, false, 0, 0));
    this.checkRepair();
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.takeRepairBound(m.repairBound, m.repairToken);
    // The leader sends min(our match, its commit): an index we hold and that matches —
    // unless we lost entries, and what it took us to hold is gone (another leader may have
    // filled the gap with different entries before this one heard of the loss): while
    // repairing, only what an append showed to match.
    const last = this.log.lastIndex();
    this.commitTo(Math.min(m.commit, this.recoveringUntil !== 0 ? this.leaderMatched : last));
    const resp: HeartbeatResponse = {
      type: 'heartbeatResponse',
      term: this.term,
      from: this.id,
      to: m.from,
      readSeq: m.readSeq,
    };
    if (m.commit > last) resp.logEnd = last;
    if (this.recoveringUntil !== 0) resp.repairing = this.repairToken;
    this.send(resp);
    this.checkRepair();
  }

  /** A repair bound from the current leader (see checkRepair). */
  private takeRepairBound(bound: number | undefined, token: number | undefined): void {
    if (
      bound !== undefined &&
      this.recoveringUntil !== 0 &&
      token === this.repairToken &&
      bound > this.repairBound
    )
      this.repairBound = bound;
  }

  /** §7, chunked: write chunks in order, then install; resumable by offset. */
  private handleSnapshotChunk(m: SnapshotChunkMessage): void {
    const meta = m.meta;
    if (this.installing) return; // one install at a time; the leader resends after a stall
    if (meta.index <= this.log.committed) {
      // We already have everything it covers; say so, and the leader goes back to appends.
      this.dropReceiving();
      this.send(this.appendResponse(m.from, this.log.committed, false, 0, 0));
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // §7: our log already holds the snapshot's last entry, so it matches through it.
      this.dropReceiving();
      this.commitTo(meta.index);
      this.send(this.appendResponse(m.from, meta.index, false, 0, 0));
      return;
    }
    let r = this.receiving;
    // Another size is another stream of the same snapshot (see snapshotTaken): start over.
    if (!r || r.meta.index !== meta.index || r.meta.term !== meta.term || r.meta.size !== meta.size) {
      if (m.offset !== 0) {
        // A transfer we know nothing of (we restarted, or it is new to us): start over.
        this.send(this.snapshotAck(m.from, meta, 0, true));
        return;
      }
      this.dropReceiving();
      r = this.receiving = { meta, offset: 0 };
    }
    if (m.offset < r.offset) {
      // Already written (a resend, or a new leader starting from 0): tell how far we are.
      this.send(this.snapshotAck(m.from, meta, r.offset, false));
      return;
    }
    if (m.offset > r.offset) {
      this.send(this.snapshotAck(m.from, meta, r.offset, true));
      return;
    }
    this.snapshotWork.push({ type: 'writeChunk', meta, offset: m.offset, data: m.data, done: m.done });
    r.offset += m.length;
    if (!m.done) {
      this.send(this.snapshotAck(m.from, meta, r.offset, false));
      return;
    }
    // The last chunk: install. The log becomes the snapshot point; the configuration is the snapshot's.
    this.receiving = undefined;
    this.snapshotWork.push({ type: 'install', meta });
    this.installing = meta;
    this.log.restore(meta);
    this.conf.reset(meta.conf, meta.index);
    if (meta.index > this.leaderMatched) this.leaderMatched = meta.index;
    // Sent after the install is durable (messagesAfterPersist): the leader resumes appends from here.
    this.send(this.appendResponse(m.from, meta.index, false, 0, 0));
  }

  private dropReceiving(): void {
    if (this.receiving) this.snapshotWork.push({ type: 'discardPartial', meta: this.receiving.meta });
    this.receiving = undefined;
  }

  // =====================================================================================
  // Leader
  // =====================================================================================

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'appendResponse':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResponse': {
        const pr = this.progress.get(m.from);
        if (!pr) return;
        pr.probeSent = false;
        // A full pipeline whose messages were lost would wait forever: let one append through.
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
        // The follower's log ends below what it acknowledged to us: it lost entries (a
        // wiped disk); probe it again, or an idle group would never re-send them. (From a
        // stale answer too: 0 is always a safe match.)
        if (m.logEnd !== undefined && m.logEnd < pr.match && pr.state !== 'snapshot')
          pr.lostEntries(m.logEnd);
        if (!this.noteRepairing(pr, m.repairing, 'heartbeat')) return;
        pr.recentActive = true;
        // During a repair an answer without the token may come from a member that finished
        // and whose acknowledgement of the bound was lost: an append draws a new one.
        if (pr.match < this.log.lastIndex() || pr.repairToken !== 0) pr.forceAppend = true;
        // A round we have not started yet cannot be answered: ignore such a claim. Nor does
        // a repairing member's answer confirm one, even once its repair is done.
        if (m.repairing === undefined && m.readSeq > pr.readSeqAcked && m.readSeq <= this.readSeq) {
          pr.readSeqAcked = m.readSeq;
          if (!pr.isLearner) this.confirmReads();
        }
        return;
      }
      case 'snapshotAck':
        this.handleSnapshotAck(m);
        return;
      default:
        // Votes of our term are answered in step(); appends from another leader of our term
        // cannot happen (one leader per term); everything else is for other roles.
        return;
    }
  }

  /**
   * Every answer of a follower repairing lost entries (DESIGN §6) carries the token it drew
   * at the loss. At a new token, what we took it to have acknowledged may be gone (a wiped
   * or damaged disk): its match is forgotten, and a no-op appended now becomes its repair
   * bound, sent with every append and heartbeat. Until that no-op commits without it, it
   * counts for no commit, read or quorum check (maybeCommit, confirmReads,
   * quorumRecentlyActive): it may have forgotten the term it acknowledged in, so a deposed
   * leader of an older term could otherwise repair it and count it. It votes again once it
   * holds our log through the bound and knows it committed (checkRepair); its answers
   * during the repair confirm no read round even after it (readSeqAcked starts again from
   * 0). An answer without the token during the repair is from before the loss, or from a
   * member that finished — or lost its marker with its disk, and so never asks again: it
   * is acted on (only counting could make it harm, and that waits), and one that
   * acknowledges the bound or past it, which only a member holding the bound sends, ends
   * the repair once the bound is committed. Returns whether to act on the answer
   * (`answer`: its kind, or the index an append acknowledges): not on one carrying a
   * finished repair's token, which is stale, except to move `next` on a rejection.
   */
  private noteRepairing(
    pr: Progress,
    repairing: number | undefined,
    answer: 'heartbeat' | 'reject' | number,
  ): boolean {
    if (repairing === undefined) {
      if (
        pr.repairToken === 0 ||
        typeof answer !== 'number' ||
        answer < pr.repairBound ||
        this.log.committed < pr.repairBound
      )
        return true;
      pr.repairDone = pr.repairToken;
      pr.repairToken = 0;
      pr.repairBound = 0;
      if (!pr.isLearner) this.maybeCommit();
      return true;
    }
    if (repairing === pr.repairToken) return true;
    if (repairing === pr.repairDone) return answer === 'reject';
    pr.repairToken = repairing;
    pr.readSeqAcked = 0;
    if (pr.state === 'snapshot') pr.match = 0;
    else if (pr.match > 0) pr.lostEntries(Math.min(pr.match, this.log.committed));
    const bound = this.log.lastIndex() + 1;
    this.appendAsLeader([{ index: bound, term: this.term, type: 'noop', data: new Uint8Array(0) }], 0);
    pr.repairBound = bound;
    pr.forceAppend = true;
    return true;
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from);
    // No correct follower acknowledges past our log in our term: ignore rather than trust it.
    if (!pr || (!m.reject && m.index > this.log.lastIndex())) return;
    if (!this.noteRepairing(pr, m.repairing, m.reject ? 'reject' : m.index)) return;
    pr.recentActive = true;
    if (m.reject) {
      if (pr.state === 'snapshot') return;
      // The follower's hint (hintIndex, hintTerm): skip our entries of terms it cannot have.
      const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
      if (pr.maybeDecrTo(m.index, hint + 1) && pr.state === 'replicate') pr.becomeProbe();
      return;
    }
    const advanced = pr.maybeUpdate(m.index);
    switch (pr.state) {
      case 'probe':
        // The probe's answer: the follower matches through m.index; pipeline from there.
        if (m.index >= pr.next - 1 || advanced) pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeReplicate();
        } else if (pr.snapshot && pr.match >= pr.snapshot.meta.index) {
          // This snapshot is in, but the log was compacted past it meanwhile: probe, which
          // starts a new transfer with the newest snapshot.
          pr.snapshot = undefined;
          pr.becomeProbe();
        }
        break;
      case 'replicate':
        pr.inflights.freeLE(m.index);
        break;
    }
    // Only a voter's match rising past the commit index can move it.
    if (advanced && !pr.isLearner && pr.match > this.log.committed) this.maybeCommit();
    if (this.role === 'leader' && m.from === this.transferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private handleSnapshotAck(m: SnapshotAckMessage): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    const s = pr.snapshot;
    if (pr.state !== 'snapshot' || !s || s.meta.index !== m.index || s.meta.term !== m.snapshotTerm) return;
    if (m.rewind) {
      // The follower holds [0, m.offset) and nothing after: resend from there.
      s.ackedOffset = Math.min(m.offset, s.meta.size);
      s.sentOffset = s.ackedOffset;
      s.finished = false;
      s.idleTicks = 0;
    } else if (m.offset > s.ackedOffset) {
      s.ackedOffset = Math.min(m.offset, s.meta.size);
      // A follower ahead of what we sent (a resumed transfer) lets us skip forward.
      if (s.sentOffset < s.ackedOffset) s.sentOffset = s.ackedOffset;
      s.idleTicks = 0;
    }
  }

  /**
   * Commit rule (§5.3, §5.4.2, Figure 8): the largest index held by a quorum of voters,
   * only if its entry is of the current term. The leader's own match counts only after its
   * write is durable (persisted()).
   */
  private maybeCommit(): void {
    const voters = this.voterProgress;
    const n = voters.length;
    if (n === 0) return;
    for (let i = 0; i < n; i++) this.quorumValues[i] = voters[i]!.repairToken === 0 ? voters[i]!.match : 0;
    const q = quorumValue(this.quorumValues, n, quorumSize(n), this.quorumScratch);
    if (q <= this.log.committed || this.log.term(q) !== this.term) return;
    this.commitTo(q);
  }

  private commitTo(index: number): void {
    if (!this.log.commitTo(index)) return;
    this.conf.compact(index);
    if (this.role !== 'leader') return;
    // Release the overload budget of committed proposals.
    const marks = this.uncommittedMarks;
    while (this.uncommittedHead < marks.length && marks[this.uncommittedHead]! <= index) {
      this.uncommittedBytes -= marks[this.uncommittedHead + 1]!;
      this.uncommittedHead += 2;
    }
    if (this.uncommittedHead === marks.length) {
      this.uncommittedMarks = [];
      this.uncommittedHead = 0;
    }
    if (this.readsAwaitingCommit.length > 0 && index >= this.termStartIndex) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const r of waiting) this.handleReadIndexRequest(r.context, r.from);
    }
    // Thesis §4.2.2: a leader removed (or demoted) by a committed config steps down; it hands
    // off to the most caught-up voter so the cluster need not wait for an election timeout.
    if (!isVoter(this.conf.current, this.id) && index >= this.conf.currentIndex) {
      let best: Progress | undefined;
      for (const pr of this.peers) {
        if (!pr.isLearner && pr.match === this.log.lastIndex() && (!best || pr.match > best.match)) best = pr;
      }
      if (best) this.sendTimeoutNow(best.id);
      this.becomeFollower(this.term, 0);
    }
  }

  private refuseProposal(bytes: number): ProposeResult | undefined {
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.leader };
    if (this.transferee !== 0) return { ok: false, reason: 'transferring', leader: this.leader };
    if (this.log.persisted < this.termDurableAt)
      return { ok: false, reason: 'leaderNotReady', leader: this.leader };
    // An empty pipeline always takes one proposal, however large, so none waits forever.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.opts.maxUncommittedBytes) {
      return { ok: false, reason: 'overloaded', leader: this.leader };
    }
    return undefined;
  }

  /** Appends entries of the current term to the leader's log (they go out at the next flush). */
  private appendAsLeader(entries: Entry[], bytes: number): void {
    this.log.append(entries);
    const last = entries[entries.length - 1]!.index;
    if (bytes > 0) {
      this.uncommittedBytes += bytes;
      this.uncommittedMarks.push(last, bytes);
    }
    let confChanged = false;
    for (const e of entries) {
      if (e.type === 'config') {
        this.conf.push(e.index, decodeConfState(e.data));
        confChanged = true;
      }
    }
    const self = this.progress.get(this.id);
    if (self) self.next = last + 1;
    if (confChanged) this.syncProgress();
  }

  private appendAsFollower(entries: readonly Entry[]): void {
    // Decode first: a bad config entry leaves the log untouched.
    let confs: ConfState[] | undefined;
    for (const e of entries) if (e.type === 'config') (confs ??= []).push(decodeConfState(e.data));
    const cut = this.log.truncateAndAppend(entries);
    if (cut !== undefined) {
      this.conf.truncateFrom(cut);
      if (this.leaderMatched >= cut) this.leaderMatched = cut - 1;
    }
    if (confs) {
      let k = 0;
      for (const e of entries) if (e.type === 'config') this.conf.push(e.index, confs[k++]!);
    }
  }

  /** Makes the progress table match the current configuration (leader). */
  private syncProgress(): void {
    const conf = this.conf.current;
    for (const id of this.progress.keys()) {
      if (id !== this.id && !isMember(conf, id)) {
        this.progress.delete(id);
        if (this.transferee === id) this.transferee = 0;
      }
    }
    const members = [...conf.voters, ...conf.learners];
    if (!members.includes(this.id)) members.push(this.id);
    for (const id of members) {
      let pr = this.progress.get(id);
      if (!pr) {
        pr = new Progress(
          id,
          this.log.lastIndex() + 1,
          false,
          this.opts.maxInflightMsgs,
          this.opts.maxInflightBytes,
        );
        if (id === this.id) pr.match = this.log.persisted;
        this.progress.set(id, pr);
      }
      pr.isLearner = isLearner(conf, id) || !isVoter(conf, id);
    }
    this.peers = [];
    this.voterProgress = [];
    for (const pr of this.progress.values()) {
      if (pr.id !== this.id) this.peers.push(pr);
      if (isVoter(conf, pr.id)) this.voterProgress.push(pr);
    }
    if (this.voterProgress.length > this.quorumValues.length) {
      this.quorumValues = new Float64Array(this.voterProgress.length);
      this.quorumScratch = new Float64Array(this.voterProgress.length);
    }
    // The quorums changed: a removed laggard may let commit and reads advance.
    if (this.voterProgress.length > 0) {
      this.maybeCommit();
      if (this.role === 'leader') this.confirmReads();
    }
  }

  /** Sends what each follower's progress allows (called when output is taken: one message per batch). */
  private flush(): void {
    if (this.role !== 'leader') return;
    if (this.readRoundRequested) {
      this.readRoundRequested = false;
      this.readSeq++;
      const self = this.progress.get(this.id);
      if (self) self.readSeqAcked = this.readSeq;
      this.broadcastHeartbeat();
      this.confirmReads();
    }
    const last = this.log.lastIndex();
    for (const pr of this.peers) {
      if (pr.state === 'snapshot') {
        this.sendSnapshotChunks(pr);
        continue;
      }
      while (!pr.isPaused() && (pr.next <= last || pr.forceAppend || pr.sentCommit < this.log.committed)) {
        if (!this.sendAppend(pr) || pr.state !== 'replicate') break;
      }
    }
  }

  /** One append to `pr` from pr.next (or a snapshot transfer if pr.next is compacted away). */
  private sendAppend(pr: Progress): boolean {
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.startSnapshot(pr);
    const last = this.log.lastIndex();
    const entries =
      pr.next <= last ? this.log.entries(pr.next, last + 1, this.opts.maxSizePerMsgBytes) : EMPTY_ENTRIES;
    const msg: AppendMessage = {
      type: 'append',
      term: this.term,
      from: this.id,
      to: pr.id,
      prevIndex,
      prevTerm,
      entries,
      commit: this.log.committed,
    };
    withRepairBound(msg, pr);
    pr.sentCommit = this.log.committed;
    pr.forceAppend = false;
    if (pr.state === 'replicate') {
      if (entries.length > 0) {
        let bytes = 0;
        for (const e of entries) bytes += e.data.byteLength;
        const lastSent = entries[entries.length - 1]!.index;
        pr.next = lastSent + 1;
        pr.inflights.add(lastSent, bytes);
      }
    } else {
      pr.probeSent = true;
    }
    this.msgsNow.push(msg);
    return true;
  }

  private startSnapshot(pr: Progress): boolean {
    const meta = this.snapshotMeta;
    if (!meta || meta.index < this.log.firstIndex() - 1) {
      // The driver compacted without telling us of a snapshot: wait for the next heartbeat answer.
      pr.probeSent = true;
      return false;
    }
    pr.becomeSnapshot(meta, 0);
    this.sendSnapshotChunks(pr);
    return true;
  }

  private sendSnapshotChunks(pr: Progress): void {
    const s = pr.snapshot!;
    const size = s.meta.size;
    const window = this.opts.snapshotChunkBytes * this.opts.maxInflightSnapshotChunks;
    while (!s.finished && s.sentOffset - s.ackedOffset < window) {
      const length = Math.min(this.opts.snapshotChunkBytes, size - s.sentOffset);
      const done = s.sentOffset + length === size;
      this.msgsNow.push({
        type: 'snapshotChunk',
        term: this.term,
        from: this.id,
        to: pr.id,
        meta: s.meta,
        offset: s.sentOffset,
        length,
        done,
        data: new Uint8Array(0),
      });
      s.sentOffset += length;
      if (done) s.finished = true;
    }
  }

  private broadcastHeartbeat(): void {
    for (const pr of this.peers) {
      const msg: HeartbeatMessage = {
        type: 'heartbeat',
        term: this.term,
        from: this.id,
        to: pr.id,
        commit: Math.min(pr.match, this.log.committed),
        readSeq: this.readSeq,
      };
      withRepairBound(msg, pr);
      this.msgsNow.push(msg);
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.msgsNow.push({ type: 'timeoutNow', term: this.term, from: this.id, to });
  }

  // ---- ReadIndex (thesis §6.4) ----

  private pendingReadCount(): number {
    return this.pendingReads.length + this.readsAwaitingCommit.length;
  }

  private handleReadIndexRequest(context: number, from: NodeId): void {
    if (from !== this.id && this.pendingReadCount() >= this.opts.maxPendingReads) {
      this.send(this.readIndexResponse(from, context, 0, true));
      return;
    }
    if (this.log.committed < this.termStartIndex) {
      // Step 1: until an entry of this term commits, the leader's commit index may be stale.
      this.readsAwaitingCommit.push({ context, from });
      return;
    }
    // Steps 2-3: remember the commit index; confirm leadership with the next heartbeat round.
    this.pendingReads.push({ context, from, index: this.log.committed, seq: this.readSeq + 1 });
    this.readRoundRequested = true;
  }

  private confirmReads(): void {
    if (this.pendingReads.length === 0) return;
    const voters = this.voterProgress;
    const n = voters.length;
    if (n === 0) return;
    for (let i = 0; i < n; i++)
      this.quorumValues[i] = voters[i]!.repairToken === 0 ? voters[i]!.readSeqAcked : 0;
    const confirmed = quorumValue(this.quorumValues, n, quorumSize(n), this.quorumScratch);
    for (const r of this.pendingReads.popConfirmed(confirmed)) {
      if (r.from === this.id) this.readResults.push({ type: 'ready', context: r.context, index: r.index });
      else this.send(this.readIndexResponse(r.from, r.context, r.index, false));
    }
  }

  private failRead(context: number, from: NodeId): void {
    if (from === this.id) this.readResults.push({ type: 'failed', context, reason: 'leaderChanged' });
    else this.send(this.readIndexResponse(from, context, 0, true));
  }

  // =====================================================================================
  // Helpers
  // =====================================================================================

  private canApply(): boolean {
    return (
      !this.installing &&
      this.log.applyLimit() > this.log.applying &&
      this.applyOutstandingBytes < this.opts.maxApplyBytes
    );
  }

  /** A new repair token (> 0) for a loss of entries (see repairToken). */
  private drawRepairToken(): number {
    return 1 + Math.floor(this.random() * 0x7fff_ffff);
  }

  /**
   * The repair is done once we hold, durably and matching, the current leader's log
   * through the bound it gave us, and know that entry committed. The bound is an entry the
   * leader appended after it learned of this loss, and it commits it without counting us
   * (stepLeader's noteRepairing): a quorum of members that kept their state accepted its
   * term after our loss, so no leader of a newer term was elected before it (an election
   * needs a quorum, which meets that one in a member that kept its term), and so every
   * entry committed with an acknowledgement we no longer back — by this leader or an older
   * one, whose committed entries it holds — lies below the bound. A wiped disk forgot our
   * term, so without that commit a deposed leader of an older term could repair us and
   * count us. Our own last index before the loss (recoveringUntil) is no bound either: a
   * wiped disk does not know it.
   */
  private checkRepair(): void {
    const x = this.recoveringUntil;
    const b = this.repairBound;
    if (x !== 0 && b !== 0 && this.leaderMatched >= b && this.log.persisted >= b && this.log.committed >= b) {
      this.recoveringUntil = 0;
      this.repairBound = 0;
      this.repairedPast = b;
    }
  }

  private send(m: Message): void {
    if (needsPersist(m)) this.msgsAfterPersist.push(m);
    else this.msgsNow.push(m);
  }

  private appendResponse(
    to: NodeId,
    index: number,
    reject: boolean,
    hintIndex: number,
    hintTerm: number,
  ): AppendResponse {
    const m: AppendResponse = {
      type: 'appendResponse',
      term: this.term,
      from: this.id,
      to,
      index,
      reject,
      hintIndex,
      hintTerm,
    };
    if (this.recoveringUntil !== 0) m.repairing = this.repairToken;
    return m;
  }

  private voteResponse(to: NodeId, term: number, pre: boolean, granted: boolean): VoteResponse {
    return { type: 'voteResponse', term, from: this.id, to, pre, granted };
  }

  private snapshotAck(to: NodeId, meta: SnapshotMeta, offset: number, rewind: boolean): SnapshotAckMessage {
    return {
      type: 'snapshotAck',
      term: this.term,
      from: this.id,
      to,
      index: meta.index,
      snapshotTerm: meta.term,
      offset,
      rewind,
    };
  }

  private readIndexResponse(to: NodeId, context: number, index: number, reject: boolean): ReadIndexResponse {
    return { type: 'readIndexResponse', term: this.term, from: this.id, to, context, index, reject };
  }
}

// =======================================================================================
// Validation of untrusted input
// =======================================================================================

export function snapshotMetaProblem(meta: SnapshotMeta): string {
  if (!meta || typeof meta !== 'object') return 'meta must be an object';
  if (!isCount(meta.index) || !isCount(meta.term) || !isCount(meta.size))
    return 'index, term, size must be integers ≥ 0';
  if (meta.index > 0 && meta.term === 0) return 'a snapshot past index 0 has a term';
  return confStateProblem(meta.conf);
}

const ENTRY_TYPES = new Set(['normal', 'noop', 'config']);

/** Throws RaftError('invalidMessage') unless `m` is a well-formed message for node `self`. */
function validateMessage(m: Message, self: NodeId): void {
  const bad = (why: string): never => {
    throw new RaftError('invalidMessage', `${(m as { type?: unknown })?.type ?? 'message'}: ${why}`);
  };
  if (!m || typeof m !== 'object') bad('not an object');
  if (!isCount(m.term)) bad('term must be an integer ≥ 0');
  if (!isCount(m.from) || m.from === 0 || m.from === self) bad(`bad sender ${String(m.from)}`);
  if (m.to !== self) bad(`addressed to ${String(m.to)}, not ${self}`);
  switch (m.type) {
    case 'append': {
      if (!isCount(m.prevIndex) || !isCount(m.prevTerm) || !isCount(m.commit)) bad('bad indexes');
      if (!Array.isArray(m.entries)) bad('entries must be an array');
      let expect = m.prevIndex + 1;
      let prevTerm = m.prevTerm;
      for (const e of m.entries) {
        if (!e || e.index !== expect) bad(`entry index ${e?.index} where ${expect} expected`);
        if (!isCount(e.term) || e.term < prevTerm || e.term > m.term)
          bad(`entry ${e.index} has bad term ${e.term}`);
        if (!ENTRY_TYPES.has(e.type) || !(e.data instanceof Uint8Array)) bad(`entry ${e.index} malformed`);
        if (e.type === 'config') decodeConfState(e.data);
        prevTerm = e.term;
        expect++;
      }
      return;
    }
    case 'appendResponse':
      if (
        !isCount(m.index) ||
        !isCount(m.hintIndex) ||
        !isCount(m.hintTerm) ||
        typeof m.reject !== 'boolean'
      ) {
        bad('bad fields');
      }
      return;
    case 'heartbeat':
      if (!isCount(m.commit) || !isCount(m.readSeq)) bad('bad fields');
      return;
    case 'heartbeatResponse':
      if (!isCount(m.readSeq) || (m.logEnd !== undefined && !isCount(m.logEnd))) bad('bad fields');
      return;
    case 'vote':
      if (
        !isCount(m.lastIndex) ||
        !isCount(m.lastTerm) ||
        typeof m.pre !== 'boolean' ||
        typeof m.transfer !== 'boolean'
      ) {
        bad('bad fields');
      }
      return;
    case 'voteResponse':
      if (typeof m.pre !== 'boolean' || typeof m.granted !== 'boolean') bad('bad fields');
      return;
    case 'snapshotChunk': {
      const problem = snapshotMetaProblem(m.meta);
      if (problem) bad(problem);
      if (!isCount(m.offset) || !isCount(m.length) || m.offset + m.length > m.meta.size)
        bad('chunk outside snapshot');
      if (m.done !== (m.offset + m.length === m.meta.size)) bad('done flag disagrees with offset + length');
      if (!(m.data instanceof Uint8Array) || m.data.byteLength !== m.length) bad('data length ≠ length');
      if (m.meta.term > m.term) bad('snapshot term beyond sender term');
      return;
    }
    case 'snapshotAck':
      if (
        !isCount(m.index) ||
        !isCount(m.snapshotTerm) ||
        !isCount(m.offset) ||
        typeof m.rewind !== 'boolean'
      ) {
        bad('bad fields');
      }
      return;
    case 'timeoutNow':
      return;
    case 'readIndex':
      if (typeof m.context !== 'number') bad('bad context');
      return;
    case 'readIndexResponse':
      if (typeof m.context !== 'number' || !isCount(m.index) || typeof m.reject !== 'boolean')
        bad('bad fields');
      return;
    default:
      bad('unknown message type');
  }
}
