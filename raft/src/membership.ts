// Cluster membership: single-server changes (thesis §4.1) with learners.
//
// Why single-server changes and not joint consensus: every change Cairn needs (add a
// replica, move one, remove one) is one server at a time; adding a server first as a
// learner and promoting it once caught up (thesis §4.2.1) keeps availability; and a
// single-server change needs one config entry instead of two, with one simple rule for
// quorums. The cost is that replacing a server takes two changes (add then remove).
//
// Rules kept here and in raft.ts:
// - A config entry holds the *whole* new ConfState, not a delta, so a node that sees only
//   the latest config entry (or a snapshot) knows the full membership.
// - A server uses the latest configuration in its log, committed or not (thesis §4.1),
//   and falls back to the previous one if that entry is truncated away.
// - A leader proposes a change only when no config entry in its log is uncommitted and it
//   has committed an entry of its own term (the fix to the single-server bug, Ongaro,
//   raft-dev 2015): then the old and new configs always share a majority.

import { RaftError } from './errors.js';
import type { ConfState, NodeId } from './types.js';

/** A membership change, as proposed through RaftCore.proposeConfChange. */
export type ConfChange =
  /** Add a non-voting member; it receives the log but neither votes nor counts for commit. */
  | { type: 'addLearner'; node: NodeId }
  /** Make a learner a voter; refused until its log is within promotionMaxLagEntries of the leader's. */
  | { type: 'promote'; node: NodeId }
  /** Make a voter a learner. */
  | { type: 'demote'; node: NodeId }
  /** Remove a voter or learner (possibly the leader itself: it steps down once this commits). */
  | { type: 'remove'; node: NodeId };

export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id);
}

export function isLearner(conf: ConfState, id: NodeId): boolean {
  return conf.learners.includes(id);
}

export function isMember(conf: ConfState, id: NodeId): boolean {
  return isVoter(conf, id) || isLearner(conf, id);
}

/** Votes or acks needed among `voters` voters: a strict majority. */
export function quorumSize(voters: number): number {
  return (voters >> 1) + 1;
}

/** Validates a ConfState: positive distinct ids, no id both voter and learner. Returns an error text or ''. */
export function confStateProblem(conf: ConfState): string {
  if (!conf || !Array.isArray(conf.voters) || !Array.isArray(conf.learners))
    return 'voters and learners must be arrays';
  const seen = new Set<number>();
  for (const id of [...conf.voters, ...conf.learners]) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return `bad node id ${String(id)}`;
    if (seen.has(id)) return `node ${id} listed twice`;
    seen.add(id);
  }
  return '';
}

export function cloneConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}

/**
 * The configuration that `change` makes from `conf`, or an error text saying why the change
 * is not a valid single-server change of `conf`.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  if (!change || typeof change !== 'object') return 'change must be an object';
  const id = change.node;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return `bad node id ${String(id)}`;
  const voters = conf.voters.filter((v) => v !== id);
  const learners = conf.learners.filter((v) => v !== id);
  switch (change.type) {
    case 'addLearner':
      if (isMember(conf, id)) return `node ${id} is already a member`;
      return { voters: [...conf.voters], learners: [...learners, id] };
    case 'promote':
      if (!isLearner(conf, id)) return `node ${id} is not a learner`;
      return { voters: [...voters, id], learners };
    case 'demote':
      if (!isVoter(conf, id)) return `node ${id} is not a voter`;
      if (voters.length === 0) return 'cannot demote the last voter';
      return { voters, learners: [...learners, id] };
    case 'remove':
      if (!isMember(conf, id)) return `node ${id} is not a member`;
      if (isVoter(conf, id) && voters.length === 0) return 'cannot remove the last voter';
      return { voters, learners };
    default:
      return `unknown change type ${String((change as { type: unknown }).type)}`;
  }
}

// Encoding of a config entry's data: a version byte (1), then unsigned LEB128 varints:
// voter count, voter ids, learner count, learner ids. Ids fit in 2^53, varints of ≤ 8 bytes.
const CONF_VERSION = 1;

export function encodeConfState(conf: ConfState): Uint8Array {
  const out: number[] = [CONF_VERSION];
  const varint = (n: number): void => {
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
  };
  varint(conf.voters.length);
  for (const v of conf.voters) varint(v);
  varint(conf.learners.length);
  for (const v of conf.learners) varint(v);
  return Uint8Array.from(out);
}

/** Decodes a config entry's data; throws RaftError('invalidMessage') on malformed bytes. */
export function decodeConfState(data: Uint8Array): ConfState {
  let pos = 0;
  const fail = (why: string): never => {
    throw new RaftError('invalidMessage', `config entry: ${why}`);
  };
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (pos >= data.length) fail('truncated');
      const b = data[pos++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    return fail('varint too long');
  };
  if (!(data instanceof Uint8Array) || data.length === 0 || data[0] !== CONF_VERSION) fail('bad version');
  pos = 1;
  const list = (): number[] => {
    const count = varint();
    if (count > data.length) fail('count exceeds data');
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(varint());
    return ids;
  };
  const conf = { voters: list(), learners: list() };
  if (pos !== data.length) fail('trailing bytes');
  const problem = confStateProblem(conf);
  if (problem) fail(problem);
  return conf;
}

/**
 * The configurations in force along the log: a base (from the snapshot, or the one the
 * driver gave at start, valid at `baseIndex`) and every config entry after it that has not
 * yet been folded into the base. The current configuration is the last one.
 * Invariant: indexes strictly increase; entries[0] is the base.
 */
export class ConfigHistory {
  private readonly entries: { index: number; conf: ConfState }[];

  constructor(base: ConfState, baseIndex: number) {
    this.entries = [{ index: baseIndex, conf: cloneConf(base) }];
  }

  get current(): ConfState {
    return this.entries[this.entries.length - 1]!.conf;
  }

  /** Index of the newest config entry (or of the base). */
  get currentIndex(): number {
    return this.entries[this.entries.length - 1]!.index;
  }

  /** The configuration before the current one, while the current one is not yet folded into the base. */
  get previous(): ConfState | undefined {
    return this.entries.length > 1 ? this.entries[this.entries.length - 2]!.conf : undefined;
  }

  /** A config entry at `index` was appended to the log. */
  push(index: number, conf: ConfState): void {
    if (index <= this.currentIndex)
      throw new RaftError('invariant', `config at ${index} not after ${this.currentIndex}`);
    this.entries.push({ index, conf });
  }

  /** Entries at `from` and beyond were removed from the log; returns whether the current config changed. */
  truncateFrom(from: number): boolean {
    let changed = false;
    while (this.entries.length > 1 && this.entries[this.entries.length - 1]!.index >= from) {
      this.entries.pop();
      changed = true;
    }
    return changed;
  }

  /** Configs at or below `commit` are final: keep only the newest of them as the base. */
  compact(commit: number): void {
    let k = 0;
    while (k + 1 < this.entries.length && this.entries[k + 1]!.index <= commit) k++;
    if (k > 0) this.entries.splice(0, k);
  }

  /** Replace everything by the snapshot's configuration. */
  reset(conf: ConfState, index: number): void {
    this.entries.length = 0;
    this.entries.push({ index, conf: cloneConf(conf) });
  }
}
