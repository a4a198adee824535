// Raft's safety properties (paper §5.2, Figure 3), checked incrementally as the run goes:
//
//   election safety        at most one leader per term, per group (roles sampled after
//                          every event of the node concerned); beneath it, vote safety:
//                          a node grants its vote to at most one candidate per term
//                          (every vote sent is seen on the network)
//   log matching           two logs holding an entry with the same index and term hold the
//                          same entry there and agree on the term before it (checked on
//                          every log write: by induction, identical prefixes)
//   state-machine safety   no two nodes apply different entries at an index (every applied
//                          entry, through the node's ApplyObserver)
//   leader completeness    a leader of term T holds every entry known committed in a term
//                          below T (checked when a leader is first seen, and when an entry
//                          becomes known committed while a higher-term leader leads)
//   commit bound           a node's commit index lies on the log of the newest leader: the
//                          node's entry there is the leader's (AppendEntries rule 5: commit
//                          = min(leaderCommit, last new entry), never the end of a log that
//                          still holds an old term's suffix; sampled after each event)
//   commit rule            a leader moves its commit index only onto an entry of its own
//                          term (§5.4.2: entries of earlier terms are never committed by
//                          counting replicas; they commit with the leader's first entry)
//   storage durability     what storage reported durable (sync resolved: entries through
//                          index i of term t, hard state term and vote) is there after a
//                          restart, unless storage itself reports damage (DESIGN §6)
//   repair completeness    a node that lost entries votes again only holding every entry
//                          known committed when its repair began (checked as it ends)
//
// "Committed entries are never lost" follows from the last three; at the end of a run the
// final check adds that every replica's committed log holds the committed entries.
// Entries are compared by (index, term, type, xxHash32 of the data).
import type { Core } from '../../../core-wasm/src/index.js';
import type { Entry, HardState, LogReader, LogWrite, SnapshotMeta } from '../../../raft/src/index.js';

export type Fail = (property: string, message: string) => void;

const NO_GROUPS: readonly number[] = Object.freeze([]);

interface Known {
  term: number;
  hash: number;
}

interface Written extends Known {
  /** Term of the entry before it in the log that wrote it. */
  prevTerm: number;
  node: number;
}

interface Committed extends Known {
  /** The lowest term of a node when it applied the entry: the entry was committed in this term or before. */
  knownTerm: number;
  node: number;
}

interface GroupOracle {
  /** index → term → the entry first written there with that term. */
  written: Map<number, Map<number, Written>>;
  /** index → the entry applied there (committed). */
  committed: Map<number, Committed>;
  highestCommitted: number;
  /** term → the leader seen in it. */
  leaders: Map<number, number>;
  /** leader node → [term, commit index when first seen leading it]. */
  leaderCommits: Map<number, [number, number]>;
  /** voter × 2^32 + term → the candidate it voted for. */
  votes: Map<number, number>;
  /** The highest-term leader seen, with its log and its voters as last seen. */
  leader: { node: number; term: number; log: LogReader; voters: number[] } | undefined;
  /** The committed index the electability check last looked at. */
  electabilityCheckedAt: number;
}

/** What storage promised durable for one group on one node. */
export interface DurableMark {
  index: number;
  term: number;
  hsTerm: number;
  hsVote: number;
}

export class RaftSafetyChecker {
  private readonly groups = new Map<number, GroupOracle>();
  /** node → group → last applied index (restarts and snapshot restores reset it). */
  private readonly appliedBy = new Map<number, Map<number, number>>();
  /** node → group → durable mark. */
  private readonly durable = new Map<number, Map<number, DurableMark>>();
  leadersSeen = 0;
  entriesApplied = 0;
  /** node × 10^6 + group → the commit index last sampled. */
  private readonly commitSeen = new Map<number, number>();
  /** Some group's committed index advanced since the last electability check. */
  private commitAdvanced = false;
  /** Called when a leader of a new term is first seen (the nemesis may strike it). */
  onNewLeader: ((node: number, group: number, term: number) => void) | undefined;

  constructor(
    private readonly core: Core,
    private readonly fail: Fail,
  ) {}

  private group(g: number): GroupOracle {
    let o = this.groups.get(g);
    if (o === undefined) {
      o = {
        written: new Map(),
        committed: new Map(),
        highestCommitted: 0,
        leaders: new Map(),
        votes: new Map(),
        leaderCommits: new Map(),
        leader: undefined,
        electabilityCheckedAt: 0,
      };
      this.groups.set(g, o);
    }
    return o;
  }

  hash(e: Entry): number {
    const type = e.type === 'normal' ? 0 : e.type === 'noop' ? 1 : 2;
    return (this.core.xxhash32(e.data, type) ^ type) >>> 0;
  }

  // --- log matching ---------------------------------------------------------------------

  /**
   * A node handed storage a log write; `prevTerm` is the term of the entry before the
   * first written one. Called after storage took the entries, which stamps each batch's
   * offset and epoch into it (the same on every replica, by log matching itself).
   */
  onWrite(node: number, g: number, w: LogWrite, prevTerm: number): void {
    if (w.entries.length === 0) return;
    const o = this.group(g);
    for (const e of w.entries) {
      const h = this.hash(e);
      let byTerm = o.written.get(e.index);
      if (byTerm === undefined) o.written.set(e.index, (byTerm = new Map()));
      const seen = byTerm.get(e.term);
      if (seen === undefined) {
        byTerm.set(e.term, { term: e.term, hash: h, prevTerm, node });
      } else if (seen.hash !== h) {
        this.fail(
          'log-matching',
          `group ${g}: entry ${e.index} of term ${e.term} differs between node ${seen.node} and node ${node}`,
        );
      } else if (seen.prevTerm !== prevTerm && prevTerm !== -1 && seen.prevTerm !== -1) {
        this.fail(
          'log-matching',
          `group ${g}: entry ${e.index} of term ${e.term} follows term ${seen.prevTerm} on node ${seen.node} but term ${prevTerm} on node ${node}`,
        );
      }
      prevTerm = e.term;
    }
  }

  // --- state-machine safety and the committed oracle ----------------------------------

  /** A node applied `e` (its ApplyObserver); `term` is the node's current term. */
  onApplied(node: number, g: number, e: Entry, term: number): void {
    this.entriesApplied++;
    let byGroup = this.appliedBy.get(node);
    if (byGroup === undefined) this.appliedBy.set(node, (byGroup = new Map()));
    const last = byGroup.get(g);
    if (last !== undefined && e.index !== last + 1) {
      this.fail('state-machine-safety', `group ${g}: node ${node} applied entry ${e.index} after ${last}`);
    }
    byGroup.set(g, e.index);
    const o = this.group(g);
    const h = this.hash(e);
    const seen = o.committed.get(e.index);
    if (seen === undefined) {
      o.committed.set(e.index, { term: e.term, hash: h, knownTerm: term, node });
      if (e.index > o.highestCommitted) {
        o.highestCommitted = e.index;
        this.commitAdvanced = true;
      }
      // A leader of a higher term already leading must hold it (leader completeness).
      const l = o.leader;
      if (l !== undefined && l.term > term) this.checkHolds(g, l.node, l.term, l.log, e.index, e.term);
    } else if (seen.term !== e.term || seen.hash !== h) {
      this.fail(
        'state-machine-safety',
        `group ${g}: node ${node} applied entry ${e.index} (term ${e.term}) but node ${seen.node} applied a different one (term ${seen.term})`,
      );
    } else if (term < seen.knownTerm) {
      seen.knownTerm = term;
    }
  }

  /** A node's group restored snapshot `meta` (its applied index jumps there). */
  onRestored(node: number, g: number, meta: SnapshotMeta): void {
    let byGroup = this.appliedBy.get(node);
    if (byGroup === undefined) this.appliedBy.set(node, (byGroup = new Map()));
    byGroup.set(g, meta.index);
    const seen = this.group(g).committed.get(meta.index);
    if (seen !== undefined && seen.term !== meta.term) {
      this.fail(
        'state-machine-safety',
        `group ${g}: node ${node} restored a snapshot at ${meta.index} of term ${meta.term}, but the entry committed there has term ${seen.term}`,
      );
    }
  }

  /** A node (re)started: its groups will apply from their recovered state again. */
  onProcessStart(node: number): void {
    this.appliedBy.delete(node);
  }

  /** What has been applied at `index` in group `g`, if known. */
  committedAt(g: number, index: number): { term: number } | undefined {
    return this.groups.get(g)?.committed.get(index);
  }

  highestCommitted(g: number): number {
    return this.groups.get(g)?.highestCommitted ?? 0;
  }

  groupIds(): number[] {
    return [...this.groups.keys()].sort((a, b) => a - b);
  }

  /** A node sent a granted (real, not pre-) vote for `candidate` in `term`. */
  onVoteGranted(g: number, voter: number, term: number, candidate: number): void {
    const votes = this.group(g).votes;
    const key = voter * 0x1_0000_0000 + term;
    const before = votes.get(key);
    if (before === undefined) votes.set(key, candidate);
    else if (before !== candidate)
      this.fail(
        'vote-safety',
        `group ${g}: node ${voter} voted for both ${before} and ${candidate} in term ${term}`,
      );
  }

  // --- election safety and leader completeness -----------------------------------------

  /** A node's group is leader after an event; `voters` is its configuration. */
  sampleLeader(node: number, g: number, term: number, log: LogReader, voters: number[]): void {
    const o = this.group(g);
    const seen = o.leaders.get(term);
    if (seen === undefined) {
      this.onNewLeader?.(node, g, term);
      o.leaders.set(term, node);
      this.leadersSeen++;
      if (o.leader === undefined || term > o.leader.term) o.leader = { node, term, log, voters };
      // Leader completeness: every entry known committed before this term is in its log.
      for (const [index, c] of o.committed) {
        if (c.knownTerm < term) this.checkHolds(g, node, term, log, index, c.term);
      }
    } else if (seen !== node) {
      this.fail('election-safety', `group ${g}: nodes ${seen} and ${node} both led term ${term}`);
    } else if (o.leader !== undefined && o.leader.node === node && o.leader.term === term) {
      o.leader.log = log; // the same leader after a restart reads a new log object
      o.leader.voters = voters;
    }
  }

  /** A leader's commit index after an event (`termAt` is the term of the entry there). */
  sampleLeaderCommit(
    node: number,
    g: number,
    term: number,
    commit: number,
    termAt: number | undefined,
  ): void {
    const o = this.group(g);
    const seen = o.leaderCommits.get(node);
    if (seen === undefined || seen[0] !== term) {
      o.leaderCommits.set(node, [term, commit]); // what it knew when it became leader
      return;
    }
    if (commit > seen[1]) {
      seen[1] = commit;
      if (termAt !== term)
        this.fail(
          'commit-rule',
          `group ${g}: node ${node}, leading term ${term}, committed up to ${commit}, an entry of term ${termAt} (an earlier term's entry committed by counting replicas, Raft §5.4.2)`,
        );
    }
  }

  /**
   * A node's commit index after an event. Once committed, an entry is in the log of every
   * later leader (leader completeness), so the node's entry at its commit index must be
   * the newest leader's there, and the one applied there if any node applied it. Checked
   * when the commit index moved. `view` is the node's core, whose log includes the entries
   * not yet handed to storage; an index compacted away is skipped.
   */
  sampleCommit(
    node: number,
    g: number,
    commit: number,
    view: { termAt(index: number): number | undefined },
  ): void {
    const key = node * 1_000_000 + g;
    if (this.commitSeen.get(key) === commit) return;
    this.commitSeen.set(key, commit);
    if (commit === 0) return;
    const term = view.termAt(commit);
    if (term === undefined) return;
    const o = this.group(g);
    const applied = o.committed.get(commit);
    if (applied !== undefined && applied.term !== term) {
      this.fail(
        'commit-bound',
        `group ${g}: node ${node} commits through ${commit}, its entry of term ${term}, but the entry committed there has term ${applied.term} (Raft Figure 2, AppendEntries rule 5)`,
      );
      return;
    }
    const l = o.leader;
    if (l === undefined || l.node === node) return;
    let leaderTerm: number | undefined;
    try {
      leaderTerm = l.log.term(commit);
    } catch {
      return; // the leader's store was closed since (a restart): it is checked when seen again
    }
    if (leaderTerm !== undefined && leaderTerm !== term) {
      this.fail(
        'commit-bound',
        `group ${g}: node ${node} commits through ${commit}, its entry of term ${term}, but leader ${l.node} of term ${l.term} has term ${leaderTerm} there (Raft Figure 2, AppendEntries rule 5)`,
      );
    }
  }

  /**
   * Groups whose committed index advanced since their last electability check. Asked after
   * every event, and mostly nothing advanced: then no allocation at all.
   */
  groupsToCheckElectability(): readonly number[] {
    if (!this.commitAdvanced) return NO_GROUPS;
    this.commitAdvanced = false;
    const out: number[] = [];
    for (const [g, o] of this.groups) {
      if (o.highestCommitted > o.electabilityCheckedAt) {
        o.electabilityCheckedAt = o.highestCommitted;
        out.push(g);
      }
    }
    return out;
  }

  leaderConf(g: number): number[] | undefined {
    return this.groups.get(g)?.leader?.voters;
  }

  /** See SimCluster.checkElectability. */
  checkElectable(g: number, voters: number[], logs: Map<number, { log: LogReader; canVote: boolean }>): void {
    const o = this.groups.get(g);
    if (o === undefined) return;
    const i = o.highestCommitted;
    const e = o.committed.get(i);
    if (e === undefined) return;
    const majority = Math.floor(voters.length / 2) + 1;
    for (const [n, { log }] of logs) {
      if (i < log.firstIndex() - 1 || log.term(i) === e.term) continue; // holds it (or its snapshot does)
      const nLast = log.lastIndex();
      const nTerm = log.term(nLast) ?? 0;
      let votes = 1;
      for (const [v, other] of logs) {
        if (v === n || !other.canVote) continue;
        const vLast = other.log.lastIndex();
        const vTerm = other.log.term(vLast) ?? 0;
        if (nTerm > vTerm || (nTerm === vTerm && nLast >= vLast)) votes++;
      }
      if (votes >= majority) {
        this.fail(
          'leader-completeness',
          `group ${g}: entry ${i} (term ${e.term}) is committed, yet node ${n}, whose log ends at ${nLast} (term ${nTerm}) without it, could win an election (${votes} of ${voters.length} voters would grant it their vote)`,
        );
        return;
      }
    }
  }

  private checkHolds(
    g: number,
    node: number,
    term: number,
    log: LogReader,
    index: number,
    entryTerm: number,
  ): void {
    const first = log.firstIndex();
    if (index < first - 1) return; // inside its snapshot: covered
    const t = log.term(index);
    if (t !== entryTerm) {
      this.fail(
        'leader-completeness',
        `group ${g}: node ${node} leads term ${term} but holds ${t === undefined ? 'no entry' : `an entry of term ${t}`} at committed index ${index} (term ${entryTerm})`,
      );
    }
  }

  /**
   * A node finished repairing lost entries and votes again: its log (or the snapshot it
   * holds) must have the entry at `floor`, the highest index known committed when the
   * repair began — what the leader's repair bound stands for. Checked when the repair ends,
   * not when the node next votes: a repair that ends early is a fault even if no election
   * happens to use it.
   */
  checkRepaired(node: number, g: number, log: LogReader, floor: number): void {
    const c = this.group(g).committed.get(floor);
    if (c === undefined || floor < log.firstIndex() - 1) return; // nothing yet, or under its snapshot
    const t = log.term(floor);
    if (t !== c.term)
      this.fail(
        'repair-completeness',
        `group ${g}: node ${node} finished repairing lost entries holding ${t === undefined ? 'no entry' : `an entry of term ${t}`} at index ${floor}, committed (term ${c.term}) before its repair began (its log ends at ${log.lastIndex()})`,
      );
  }

  /**
   * End of a run: a replica's log, through its commit index, holds what was committed
   * (entries inside its snapshot are covered by it).
   */
  checkFinal(node: number, g: number, log: LogReader, commit: number): void {
    const o = this.groups.get(g);
    if (o === undefined) return;
    const last = Math.min(commit, log.lastIndex());
    for (let i = Math.max(1, log.firstIndex()); i <= last; i++) {
      const c = o.committed.get(i);
      if (c === undefined) continue;
      const t = log.term(i);
      if (t !== c.term)
        this.fail(
          'committed-lost',
          `group ${g}: node ${node} has ${t === undefined ? 'no entry' : `term ${t}`} at committed index ${i} (term ${c.term})`,
        );
    }
  }

  // --- storage durability ---------------------------------------------------------------

  durableMark(node: number, g: number): DurableMark | undefined {
    return this.durable.get(node)?.get(g);
  }

  setDurable(node: number, g: number, mark: DurableMark | undefined): void {
    let byGroup = this.durable.get(node);
    if (byGroup === undefined) this.durable.set(node, (byGroup = new Map()));
    if (mark === undefined) byGroup.delete(g);
    else byGroup.set(g, mark);
  }

  /** The node's disk was replaced: nothing on it was promised any more. */
  forgetDisk(node: number): void {
    this.durable.delete(node);
  }

  /**
   * A group's storage was opened after a restart: what it promised must still be there,
   * unless it reports that it may have lost entries (and so waits for repair).
   */
  checkRecovered(node: number, g: number, hs: HardState | undefined, log: LogReader, damaged: boolean): void {
    const m = this.durableMark(node, g);
    if (m === undefined) return;
    const term = hs?.term ?? 0;
    const vote = hs?.vote ?? 0;
    if (damaged) return;
    if (term < m.hsTerm) {
      this.fail(
        'storage-durability',
        `node ${node} group ${g}: term ${m.hsTerm} was durable, ${term} came back`,
      );
    } else if (term === m.hsTerm && m.hsVote !== 0 && vote !== m.hsVote) {
      this.fail(
        'storage-durability',
        `node ${node} group ${g}: the vote for ${m.hsVote} in term ${term} was durable, ${vote === 0 ? 'no vote' : `a vote for ${vote}`} came back`,
      );
    }
    if (m.index > 0 && m.index >= log.firstIndex() - 1) {
      const t = log.term(m.index);
      if (t !== m.term) {
        this.fail(
          'storage-durability',
          `node ${node} group ${g}: entry ${m.index} of term ${m.term} was durable; after the restart the log ${t === undefined ? `ends at ${log.lastIndex()}` : `has term ${t} there`}`,
        );
      }
    }
  }
}
