// A small driver for RaftCore in tests: nodes with an in-memory "disk" (what survives a
// crash) and "view" (what the LogReader shows, including writes not yet synced), a
// network of in-flight messages, and the driver duties of ready.ts done by the book.
// Not a test file itself (no .test. in the name).

import {
  type ConfState,
  decodeConfState,
  type Entry,
  type HardState,
  MemoryLog,
  type Message,
  type NodeId,
  type Prng,
  RaftCore,
  type RaftOptions,
  type ReadResult,
  type Ready,
  type SnapshotMeta,
} from '../src/index.js';
import { createPrng } from '../src/prng.js';

interface PersistJob {
  hardState: HardState | undefined;
  truncateFrom: number | undefined;
  entries: Entry[];
  install: SnapshotMeta | undefined;
  messages: readonly Message[];
}

/** Bytes of the snapshot at (index, term): deterministic filler, so any copy can be checked. */
/** A follower's acceptance of the leader's entries up to `index`: what a leader steps on to count a replica. */
export function appendOk(from: NodeId, to: NodeId, term: number, index: number): Message {
  return { type: 'appendResponse', term, from, to, index, reject: false, hintIndex: 0, hintTerm: 0 };
}

export function snapshotBytes(index: number, term: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  // The size is in the filler too: two streams of one snapshot differ (a splice of them shows).
  for (let i = 0; i < size; i++) b[i] = (index * 31 + term * 17 + size * 7 + i) & 0xff;
  return b;
}

export class TestNode {
  core!: RaftCore;
  /** The LogReader the core reads: includes writes not yet durable. */
  view!: MemoryLog;
  /** What survives a crash. */
  disk: MemoryLog;
  diskHard: HardState = { term: 0, vote: 0, commit: 0 };
  diskSnapshot: SnapshotMeta | undefined;
  /** Writes handed over but not yet durable, oldest first. */
  jobs: PersistJob[] = [];
  /** The state machine: entries applied, by index (a snapshot install fills a prefix with undefined). */
  applied: Map<number, Entry> = new Map();
  appliedIndex = 0;
  /** Configuration as of appliedIndex (what a restart starts from). */
  appliedConf: ConfState;
  /** Snapshot bytes this node holds, by "index/term". */
  snapshots = new Map<string, Uint8Array>();
  /** Partial incoming snapshot. */
  partial: { meta: SnapshotMeta; bytes: number[] } | undefined;
  reads: ReadResult[] = [];
  readies: Ready[] = [];
  alive = true;
  /** Count of restarts, for tests. */
  restarts = 0;

  constructor(
    readonly id: NodeId,
    readonly cluster: Cluster,
    readonly initialConf: ConfState,
  ) {
    this.disk = new MemoryLog();
    this.appliedConf = initialConf;
    this.start(undefined);
  }

  /** (Re)creates the core from durable state only. */
  start(lostEntries: number | undefined): void {
    const snap = this.diskSnapshot;
    this.view = new MemoryLog(snap ? { index: snap.index, term: snap.term } : undefined);
    this.view.append(this.disk.all());
    this.jobs = [];
    this.partial = undefined;
    this.appliedIndex = snap?.index ?? 0;
    this.appliedConf = snap?.conf ?? this.initialConf;
    for (const k of [...this.applied.keys()]) if (k > this.appliedIndex) this.applied.delete(k);
    this.core = new RaftCore({
      id: this.id,
      log: this.view,
      conf: this.appliedConf,
      hardState: { ...this.diskHard },
      applied: this.appliedIndex,
      snapshot: snap,
      random: this.cluster.prng.next,
      options: this.cluster.options,
      lostEntries: lostEntries === undefined ? undefined : { lastIndexBeforeRepair: lostEntries },
    });
    this.alive = true;
  }

  crash(): void {
    this.alive = false;
    this.jobs = [];
  }

  restart(lostEntries?: number): void {
    this.restarts++;
    this.start(lostEntries);
  }

  /**
   * Storage loses the log from `from` on, acknowledged or not: the node restarts repairing,
   * its last index before the loss as the driver's record of it. Returns that index.
   */
  loseTail(from: number): number {
    const last = this.disk.lastIndex();
    this.crash();
    this.disk.truncate(from);
    this.restart(last);
    return last;
  }

  /**
   * The disk is replaced by an empty one: the node restarts repairing, by default with the
   * marker's 1, as a rejoining node does (nothing says how far its log was).
   */
  wipe(lastIndexBeforeRepair = 1): void {
    this.crash();
    this.disk = new MemoryLog();
    this.diskHard = { term: 0, vote: 0, commit: 0 };
    this.diskSnapshot = undefined;
    this.snapshots.clear();
    this.applied.clear();
    this.restart(lastIndexBeforeRepair);
  }

  /** Takes and carries out one Ready, as ready.ts says. */
  processReady(): Ready | undefined {
    if (!this.alive || !this.core.hasReady()) return undefined;
    const rd = this.core.takeReady();
    if (this.cluster.keepReadies) this.readies.push(rd);
    let install: SnapshotMeta | undefined;
    for (const w of rd.snapshot) {
      switch (w.type) {
        case 'writeChunk':
          if (
            !this.partial ||
            this.partial.meta.index !== w.meta.index ||
            this.partial.meta.term !== w.meta.term ||
            this.partial.meta.size !== w.meta.size
          ) {
            this.partial = { meta: w.meta, bytes: [] };
          }
          if (this.partial.bytes.length !== w.offset)
            throw new Error(`chunk at ${w.offset}, have ${this.partial.bytes.length}`);
          for (const b of w.data) this.partial.bytes.push(b);
          break;
        case 'discardPartial':
          this.partial = undefined;
          break;
        case 'install': {
          const bytes = Uint8Array.from(this.partial?.bytes ?? []);
          const expect = snapshotBytes(w.meta.index, w.meta.term, w.meta.size);
          if (bytes.length !== expect.length || bytes.some((b, i) => b !== expect[i])) {
            throw new Error(`snapshot ${w.meta.index} bytes corrupted in transfer`);
          }
          this.snapshots.set(`${w.meta.index}/${w.meta.term}`, bytes);
          this.partial = undefined;
          this.view.installSnapshot(w.meta.index, w.meta.term);
          install = w.meta;
          break;
        }
      }
    }
    if (rd.logWrite) this.view.write(rd.logWrite);
    for (const m of rd.messagesNow) this.cluster.send(this.fill(m));
    this.jobs.push({
      hardState: rd.hardState,
      truncateFrom: rd.logWrite?.truncateFrom,
      entries: rd.logWrite?.entries ?? [],
      install,
      messages: rd.messagesAfterPersist,
    });
    for (const e of rd.committed) {
      if (e.index !== this.appliedIndex + 1)
        throw new Error(`node ${this.id} applies ${e.index} after ${this.appliedIndex}`);
      this.applied.set(e.index, e);
      this.appliedIndex = e.index;
      if (e.type === 'config') this.appliedConf = decodeConfState(e.data);
    }
    if (rd.committed.length > 0) this.core.applied(this.appliedIndex);
    for (const r of rd.reads) this.reads.push(r);
    if (this.cluster.autoPersist) this.persistAll();
    return rd;
  }

  /** Leader-side: fill a snapshot chunk's data from our snapshot store (ready.ts duty). */
  private fill(m: Message): Message {
    if (m.type !== 'snapshotChunk') return m;
    const bytes = this.snapshots.get(`${m.meta.index}/${m.meta.term}`);
    if (!bytes) throw new Error(`node ${this.id} lacks snapshot ${m.meta.index}`);
    return { ...m, data: bytes.subarray(m.offset, m.offset + m.length) };
  }

  /** Completes the oldest `n` persist jobs (all by default): the fsync returns. */
  persistAll(n = Number.POSITIVE_INFINITY): void {
    while (this.alive && n-- > 0 && this.jobs.length > 0) {
      const job = this.jobs.shift()!;
      if (job.install) {
        this.disk.installSnapshot(job.install.index, job.install.term);
        this.diskSnapshot = job.install;
      }
      if (job.truncateFrom !== undefined) this.disk.truncate(job.truncateFrom);
      if (job.entries.length > 0) this.disk.append(job.entries);
      if (job.hardState) this.diskHard = { ...job.hardState };
      for (const m of job.messages) this.cluster.send(m);
      const last = job.entries[job.entries.length - 1];
      if (last) this.core.persisted(last.index, last.term);
      if (job.install) {
        this.core.snapshotInstalled(job.install);
        for (const k of [...this.applied.keys()]) if (k <= job.install.index) this.applied.delete(k);
        this.appliedIndex = job.install.index;
        this.appliedConf = job.install.conf;
      }
    }
  }

  /** Takes a snapshot at the applied index of `size` bytes and compacts the log through it. */
  takeSnapshot(size: number): SnapshotMeta {
    const index = this.appliedIndex;
    const term = this.view.term(index)!;
    const meta: SnapshotMeta = { index, term, conf: this.appliedConf, size };
    this.snapshots.set(`${index}/${term}`, snapshotBytes(index, term, size));
    this.core.snapshotTaken(meta);
    this.diskSnapshot = meta;
    this.view.compact(index);
    this.disk.compact(index);
    return meta;
  }
}

export interface ClusterOptions {
  ids: NodeId[];
  /** Members of the initial configuration (default: all ids as voters). */
  conf?: ConfState;
  options?: Partial<RaftOptions>;
  seed?: number;
  /** Complete every persist job as soon as its Ready is handled (default true). */
  autoPersist?: boolean;
}

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly prng: Prng;
  readonly options: Partial<RaftOptions>;
  network: Message[] = [];
  autoPersist: boolean;
  keepReadies = false;
  /** Return false to drop a message as it is sent. */
  filter: (m: Message) => boolean = () => true;
  /** Observed leaders by term, across the whole run (election safety). */
  leadersByTerm = new Map<number, NodeId>();
  delivered = 0;

  constructor(o: ClusterOptions) {
    this.prng = createPrng(o.seed ?? 1);
    this.options = o.options ?? {};
    this.autoPersist = o.autoPersist ?? true;
    const conf = o.conf ?? { voters: [...o.ids], learners: [] };
    for (const id of o.ids) this.nodes.set(id, new TestNode(id, this, conf));
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** Replaces node `id`'s durable state by a log of the given terms and restarts it. */
  load(id: NodeId, terms: number[], term: number): void {
    const n = this.node(id);
    n.disk = new MemoryLog();
    n.disk.append(entriesOf(terms));
    n.diskHard = { term, vote: 0, commit: 0 };
    n.diskSnapshot = undefined;
    n.applied.clear();
    n.restart();
  }

  /** Adds a fresh node that knows no configuration (it joins when the leader adds it). */
  addNode(id: NodeId): TestNode {
    const n = new TestNode(id, this, { voters: [], learners: [] });
    this.nodes.set(id, n);
    return n;
  }

  send(m: Message): void {
    if (this.filter(m)) this.network.push(m);
  }

  /** Isolates groups from each other: messages between different groups are dropped. */
  partition(...groups: NodeId[][]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const id of g) groupOf.set(id, i);
    });
    this.filter = (m) => groupOf.get(m.from) === groupOf.get(m.to);
    this.network = this.network.filter(this.filter);
  }

  heal(): void {
    this.filter = () => true;
  }

  /** Handles every node's Ready once. */
  processReadies(): number {
    let n = 0;
    for (const node of this.nodes.values()) if (node.processReady()) n++;
    this.observe();
    return n;
  }

  /** Delivers every message now in flight (in order); returns how many. */
  deliverAll(): number {
    const batch = this.network;
    this.network = [];
    for (const m of batch) this.deliver(m);
    return batch.length;
  }

  deliver(m: Message): void {
    const to = this.nodes.get(m.to);
    if (!to?.alive) return;
    this.delivered++;
    to.core.step(m);
  }

  /** Runs Readies and deliveries until nothing is left to do (bounded). */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      const readies = this.processReadies();
      const msgs = this.deliverAll();
      if (readies === 0 && msgs === 0) return;
    }
    throw new Error('cluster did not stabilize');
  }

  /** `n` rounds of a tick (of `ids`, or every node) and a stabilize. */
  ticks(n: number, ids?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      this.tick(ids);
      this.stabilize();
    }
  }

  tick(ids?: NodeId[]): void {
    for (const id of ids ?? [...this.nodes.keys()]) {
      const n = this.node(id);
      if (n.alive) n.core.tick();
    }
  }

  /** Ticks (and stabilizes) until some node is leader, bounded; returns it. */
  electLeader(maxTicks = 500): NodeId {
    for (let t = 0; t < maxTicks; t++) {
      this.stabilize();
      const l = this.leader();
      if (l !== 0) return l;
      this.tick();
    }
    throw new Error('no leader elected');
  }

  /** Campaigns on `id` until it is leader (ticks only it, then stabilizes). */
  elect(id: NodeId): void {
    const core = this.core(id);
    for (let t = 0; t < 100 && core.currentRole !== 'leader'; t++) {
      core.tick();
      this.stabilize();
    }
    if (core.currentRole !== 'leader') throw new Error(`node ${id} did not become leader`);
  }

  /** The live leader with the highest term, or 0. */
  leader(): NodeId {
    let best = 0;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      if (n.alive && n.core.currentRole === 'leader' && n.core.currentTerm > bestTerm) {
        best = n.id;
        bestTerm = n.core.currentTerm;
      }
    }
    return best;
  }

  /** Records leaders by term; throws on two leaders in one term (§5.2 Election Safety). */
  observe(): void {
    for (const n of this.nodes.values()) {
      if (!n.alive || n.core.currentRole !== 'leader') continue;
      const t = n.core.currentTerm;
      const prev = this.leadersByTerm.get(t);
      if (prev !== undefined && prev !== n.id)
        throw new Error(`two leaders in term ${t}: ${prev} and ${n.id}`);
      this.leadersByTerm.set(t, n.id);
    }
  }

  /** Proposes one entry per string on `id`; returns the result. */
  propose(id: NodeId, ...data: string[]) {
    return this.core(id).propose(data.map((s) => new TextEncoder().encode(s)));
  }
}

export const text = (e: Entry | undefined): string => (e ? new TextDecoder().decode(e.data) : '<none>');

/** Entries of a node's view log with their terms, "index:term" each, from firstIndex. */
export function termsOf(n: TestNode): string {
  const out: string[] = [];
  for (let i = n.view.firstIndex(); i <= n.view.lastIndex(); i++) out.push(`${i}:${n.view.term(i)}`);
  return out.join(' ');
}

/** A lone core over a MemoryLog, for tests that craft messages by hand. */
export class Solo {
  readonly core: RaftCore;
  readonly log: MemoryLog;
  constructor(
    readonly id: NodeId,
    voters: NodeId[],
    options: Partial<RaftOptions> = {},
    init: { log?: MemoryLog; hardState?: HardState; learners?: NodeId[]; seed?: number } = {},
  ) {
    this.log = init.log ?? new MemoryLog();
    this.core = new RaftCore({
      id,
      log: this.log,
      conf: { voters, learners: init.learners ?? [] },
      hardState: init.hardState,
      random: createPrng(init.seed ?? id).next,
      options: { preVote: false, ...options },
    });
  }

  /** Takes a Ready, hands its write to the log; persists (calls persisted) unless told not to. */
  take(persist = true): Ready {
    const rd = this.core.takeReady();
    for (const w of rd.snapshot)
      if (w.type === 'install') this.log.installSnapshot(w.meta.index, w.meta.term);
    if (rd.logWrite) this.log.write(rd.logWrite);
    if (persist) {
      const last = rd.logWrite?.entries[rd.logWrite.entries.length - 1];
      if (last) this.core.persisted(last.index, last.term);
    }
    if (rd.committed.length > 0) this.core.applied(rd.committed[rd.committed.length - 1]!.index);
    return rd;
  }

  /** All messages of a Ready (now and after persist). */
  msgs(rd: Ready): Message[] {
    return [...rd.messagesNow, ...rd.messagesAfterPersist];
  }

  tick(n: number): void {
    for (let i = 0; i < n; i++) this.core.tick();
  }

  /** Makes this core leader of `term` by hand (votes from every other voter). */
  becomeLeader(): Ready {
    const st = this.core.status();
    for (let i = 0; i < 100 && this.core.currentRole === 'follower'; i++) this.core.tick();
    const term = this.core.currentTerm;
    for (const v of st.conf.voters) {
      if (v === this.id) continue;
      if (this.core.currentRole !== 'candidate') break;
      this.core.step({ type: 'voteResponse', term, from: v, to: this.id, pre: false, granted: true });
    }
    if (this.core.currentRole !== 'leader') throw new Error('did not become leader');
    return this.take();
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Entries for a log, from [term, term, ...], indexes from `first`. */
export function entriesOf(terms: number[], first = 1): Entry[] {
  return terms.map((term, k) => ({
    index: first + k,
    term,
    type: 'normal' as const,
    data: bytes(`${first + k}/${term}`),
  }));
}
