// The fault schedule. While the fault phase lasts, a fault strikes every so often (an
// exponential wait), chosen among the run's enabled faults, and heals after a while.
// Network weather (loss, duplication, congestion) is on for the whole phase when enabled;
// clock skew is set when the nodes are built (world.ts). At the end, healAll() undoes
// everything, so the liveness phase starts from a whole, connected cluster.
import type { CairnNode } from '../../node/src/cairn-node.js';
import { CRASH_MODES, type CrashMode } from '../../node/src/storage/index.js';
import { apiAddress, peerAddress } from './cluster.js';
import { FAULTS, type FaultName } from './options.js';
import type { FaultSpan } from './timeline.js';
import { EventKind } from './trace.js';
import { hintedNode, outcomeUnknown } from './workload.js';
import type { World } from './world.js';

/** Faults that shape the whole fault phase instead of striking now and then. */
const WEATHER: readonly FaultName[] = ['loss', 'duplicate', 'delay', 'reorder', 'skew'];
/** Faults that strike now and then, in FAULTS order. */
const STRIKES: readonly FaultName[] = FAULTS.filter((f) => !WEATHER.includes(f));
const TOPOLOGY: readonly FaultName[] = ['partition', 'asymmetric', 'isolate-leader', 'flap'];

/** How long a rolling replacement waits for the cluster to be whole before the next disk (ms). */
const ROLL_WAIT_MS = 30_000;

/** Chance that a newly elected leader is struck at once (see Nemesis's constructor). */
const NEW_LEADER_STRIKE_P = 0.1;

/** The operator's id in the trace and history (clients are 1..n). */
export const OPERATOR = 0;

/**
 * The cluster's very first start, with 'power-loss-fresh' on: some of the new nodes lose
 * power before their first fsync can complete, and are started again a moment later (a
 * rack losing power while it is set up). Nothing was acknowledged yet; each must come back
 * on whatever its disk kept and form the cluster as if new.
 */
export function strikeFirstStart(w: World): void {
  const initial = w.cluster.initial;
  const ids = w.rng.shuffle(initial).slice(0, w.rng.int(1, initial.length + 1));
  const atUs = w.rng.next() * Math.max(1, w.options.disk.syncUs);
  w.sched.after(
    atUs,
    () => {
      const span = w.timeline.faultStart('power-loss-fresh', `nodes ${ids.join(', ')} at first start`, ids);
      for (const id of ids) w.cluster.powerLoss(id, w.rng.pick(CRASH_MODES));
      w.sched.after(
        w.rng.exponential(w.options.tickMs) * 1000,
        () => {
          w.timeline.faultEnd(span);
          for (const id of ids) if (w.cluster.get(id).state === 'down') w.cluster.start(id);
        },
        null,
        EventKind.fault,
      );
    },
    null,
    EventKind.fault,
  );
}

export class Nemesis {
  /** A partition-like fault is on (they do not overlap: each heals by clearing every cut). */
  private topology: FaultSpan | null = null;
  private readonly down = new Map<number, FaultSpan>();
  private readonly paused = new Map<number, FaultSpan>();
  private readonly readFaults = new Map<number, FaultSpan>();
  private membershipBusy = false;
  /** Nodes an operator asked to remove (whatever the answer). */
  private readonly removing = new Set<number>();
  private flapping = false;
  /** A rolling replacement, or a start-up power-loss storm, is under way (one of each at a time). */
  private rolling = false;
  private storming = false;
  strikes = 0;

  constructor(private readonly w: World) {
    // Jepsen's "kill new primaries": now and then a leader is struck right after it is
    // elected, before its first entries spread. Raft's subtle cases (Figure 8: an entry of
    // an old term committed by counting, then overwritten) need such quick successions.
    w.checker.onNewLeader = (node) => {
      if (w.phase !== 'faults' || !w.rng.chance(NEW_LEADER_STRIKE_P)) return;
      const kinds = (['isolate-leader', 'crash', 'pause'] as const).filter((f) =>
        w.options.faults.includes(f),
      );
      if (kinds.length === 0) return;
      const kind = w.rng.pick(kinds);
      const delayUs = w.rng.next() * 2 * (w.net.profile.latencyUs + w.net.profile.jitterUs);
      w.sched.after(delayUs, () => this.strikeNode(kind, node), null, EventKind.fault, node);
    };
  }

  /** Strikes `node` with `kind` (a new leader, see the constructor). */
  private strikeNode(kind: 'isolate-leader' | 'crash' | 'pause', node: number): void {
    const w = this.w;
    if (w.phase !== 'faults' || !w.cluster.get(node).up || this.paused.has(node)) return;
    this.strikes++;
    const d = this.duration();
    switch (kind) {
      case 'isolate-leader':
        if (this.topology !== null) return;
        w.net.partition(
          [node],
          w.memberList().filter((id) => id !== node),
        );
        this.topologyFor(d, 'isolate-leader', `new leader ${node} cut off`, [node]);
        return;
      case 'crash':
        w.cluster.crash(node);
        this.downFor(node, d, 'crash (new leader)');
        return;
      case 'pause': {
        w.cluster.pause(node);
        const span = w.timeline.faultStart('pause', `new leader ${node}`, [node]);
        this.paused.set(node, span);
        void w.sleep(d).then(() => {
          if (this.paused.get(node) !== span) return;
          this.paused.delete(node);
          w.cluster.resume(node);
          w.timeline.faultEnd(span);
        });
        return;
      }
    }
  }

  private get enabled(): FaultName[] {
    return STRIKES.filter((f) => this.w.options.faults.includes(f));
  }

  /** Runs the schedule until the fault phase ends. */
  async run(): Promise<void> {
    const w = this.w;
    const o = w.options.nemesis;
    const p = w.net.profile;
    p.lossP = o.lossP;
    p.dupP = o.dupP;
    p.slowP = o.slowP;
    p.slowUs = o.slowUs;
    const kinds = this.enabled;
    if (kinds.length === 0) return;
    while (w.phase === 'faults') {
      await w.sleep(w.rng.exponential(o.meanIntervalMs));
      if (w.phase !== 'faults') break;
      this.strike(w.rng.pick(kinds));
    }
  }

  private duration(): number {
    return Math.max(1, this.w.rng.exponential(this.w.options.nemesis.meanDurationMs));
  }

  /** Faulty-disk nodes that are members (a fixed minority, options.nemesis.faultyNodes). */
  private faultyMembers(): number[] {
    return this.w.options.nemesis.faultyNodes.filter((id) => this.w.members.has(id));
  }

  private strike(kind: FaultName): void {
    const w = this.w;
    if (TOPOLOGY.includes(kind) && this.topology !== null) return;
    this.strikes++;
    const members = w.memberList();
    const d = this.duration();
    switch (kind) {
      case 'partition': {
        const shape = this.partition(members);
        if (shape === '') return;
        this.topologyFor(d, 'partition', shape, members);
        return;
      }
      case 'asymmetric': {
        const cuts: string[] = [];
        for (const a of members)
          for (const b of members)
            if (a !== b && w.rng.chance(0.3)) {
              w.net.cutLink(a, b);
              cuts.push(`${a}→${b}`);
            }
        if (cuts.length === 0) return;
        this.topologyFor(d, 'asymmetric', cuts.join(' '), members);
        return;
      }
      case 'isolate-leader': {
        const leader = this.someLeader();
        if (leader === 0) return;
        w.net.partition(
          [leader],
          members.filter((id) => id !== leader),
        );
        this.topologyFor(d, 'isolate-leader', `leader ${leader} cut off`, [leader]);
        return;
      }
      case 'flap': {
        if (members.length < 2) return;
        const [a, b] = w.rng.shuffle(members);
        const span = w.timeline.faultStart('flap', `${a}↔${b}`, [a!, b!]);
        this.topology = span;
        this.flapping = true;
        const period = Math.max(1, w.options.tickMs * w.rng.pick([1, 3, 10]));
        const end = w.sched.nowUs + d * 1000;
        void (async () => {
          let cut = false;
          while (this.flapping && w.sched.nowUs < end && w.phase === 'faults') {
            cut = !cut;
            if (cut) w.net.partition([a!], [b!]);
            else w.net.heal();
            await w.sleep(period);
          }
          if (this.topology === span) this.endTopology();
        })();
        return;
      }
      case 'crash':
      case 'power-loss': {
        const id = this.pickUp(members);
        if (id === 0) return;
        const mode: CrashMode = w.rng.pick(CRASH_MODES);
        if (kind === 'crash') w.cluster.crash(id);
        else w.cluster.powerLoss(id, mode);
        this.downFor(id, d, kind === 'crash' ? 'crash' : `power loss (${mode})`);
        return;
      }
      case 'power-loss-all': {
        const mode: CrashMode = w.rng.pick(CRASH_MODES);
        const span = w.timeline.faultStart('power-loss-all', mode, members);
        for (const id of members) w.cluster.powerLoss(id, mode);
        for (const id of members) this.claimDown(id, span);
        const restartAll = async () => {
          await w.sleep(d);
          for (const id of members) {
            if (this.down.get(id) !== span) continue;
            this.down.delete(id);
            if (w.cluster.get(id).state === 'down' && !w.removed.has(id)) w.cluster.start(id);
            await w.sleep(w.rng.exponential(w.options.tickMs));
          }
          w.timeline.faultEnd(span);
        };
        void restartAll();
        return;
      }
      case 'pause': {
        const id = this.pickUp(members);
        if (id === 0 || this.paused.has(id)) return;
        w.cluster.pause(id);
        const span = w.timeline.faultStart('pause', `node ${id}`, [id]);
        this.paused.set(id, span);
        void w.sleep(d).then(() => {
          if (this.paused.get(id) !== span) return;
          this.paused.delete(id);
          w.cluster.resume(id);
          w.timeline.faultEnd(span);
        });
        return;
      }
      case 'bit-flip': {
        const faulty = this.faultyMembers();
        if (faulty.length === 0) return;
        const id = w.rng.pick(faulty);
        const what = this.flipBit(id);
        if (what !== '') {
          w.corrupted.add(id);
          const span = w.timeline.faultStart('bit-flip', `node ${id}: ${what}`, [id]);
          w.timeline.faultEnd(span);
          w.sched.trace.note(`bit flip on node ${id}: ${what}`);
        }
        return;
      }
      case 'read-fault': {
        const faulty = this.faultyMembers().filter((id) => !this.readFaults.has(id));
        if (faulty.length === 0) return;
        const id = w.rng.pick(faulty);
        const disk = w.cluster.get(id).disk;
        w.corrupted.add(id);
        disk.fs.setReadFaults({ bitFlipProbability: w.rng.pick([0.001, 0.01, 0.1]) });
        const span = w.timeline.faultStart('read-fault', `node ${id}`, [id]);
        this.readFaults.set(id, span);
        void w.sleep(d).then(() => this.endReadFault(id, span));
        return;
      }
      case 'wipe': {
        const faulty = this.faultyMembers().filter((id) => !this.down.has(id));
        if (faulty.length === 0 || !this.wipeIsSafe()) return;
        const id = w.rng.pick(faulty);
        w.cluster.wipe(id);
        this.downFor(id, d, 'wiped disk');
        return;
      }
      case 'rolling-wipe':
        if (!this.rolling) void this.rollingWipe();
        return;
      case 'power-loss-startup':
        if (!this.storming) void this.powerLossAtStartup(members);
        return;
      case 'power-loss-fresh':
        this.powerLossFresh();
        return;
      case 'membership':
        if (!this.membershipBusy) void this.changeMembership();
        return;
      case 'transfer':
        void this.transfer();
        return;
      default:
        return;
    }
  }

  /**
   * Cuts the network in one of Jepsen's shapes: two halves; a bridge (two halves and one
   * node that reaches both); or a majorities ring (each node reaches its nearest neighbours,
   * a majority, but no two nodes the same majority: leaders come and go, and entries reach
   * some majorities and not others). Returns a description ('' if nothing was cut).
   */
  private partition(members: number[]): string {
    const w = this.w;
    const nodes = w.rng.shuffle(members);
    const n = nodes.length;
    if (n < 2) return '';
    const shape = n >= 3 ? w.rng.pick(['halves', 'bridge', 'ring']) : 'halves';
    if (shape === 'halves') {
      const side = nodes.slice(0, w.rng.int(1, n));
      const other = nodes.filter((id) => !side.includes(id));
      w.net.partition(side, other);
      return `${side.join(',')} | ${other.join(',')}`;
    }
    if (shape === 'bridge') {
      const [bridge, ...rest] = nodes;
      const half = Math.floor(rest.length / 2);
      const a = rest.slice(0, half);
      const b = rest.slice(half);
      w.net.partition(a, b);
      return `${a.join(',')} | ${b.join(',')}, bridged by ${bridge}`;
    }
    // Ring: node k reaches the floor(n/2) nodes on either side of it (with itself, a majority).
    const reach = Math.floor(n / 2);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const dist = Math.min((i - j + n) % n, (j - i + n) % n);
        if (i !== j && dist > Math.ceil(reach / 2)) w.net.cutLink(nodes[i]!, nodes[j]!);
      }
    }
    return `majorities ring ${nodes.join('-')}`;
  }

  private topologyFor(ms: number, kind: string, detail: string, nodes: number[]): void {
    const span = this.w.timeline.faultStart(kind, detail, nodes);
    this.topology = span;
    this.w.sched.trace.note(`${kind}: ${detail}`);
    void this.w.sleep(ms).then(() => {
      if (this.topology === span) this.endTopology();
    });
  }

  private endTopology(): void {
    this.flapping = false;
    this.w.net.heal();
    if (this.topology !== null) this.w.timeline.faultEnd(this.topology);
    this.topology = null;
  }

  /** Node `id` is down under `span` now: an earlier fault that had it down ends here (only `span` restarts it). */
  private claimDown(id: number, span: FaultSpan): void {
    const prev = this.down.get(id);
    if (prev !== undefined) this.w.timeline.faultEnd(prev);
    this.down.set(id, span);
  }

  private downFor(id: number, ms: number, why: string): void {
    const w = this.w;
    const span = w.timeline.faultStart('down', `node ${id}: ${why}`, [id]);
    this.claimDown(id, span);
    void w.sleep(ms).then(() => {
      if (this.down.get(id) !== span) return;
      this.down.delete(id);
      w.timeline.faultEnd(span);
      if (w.cluster.get(id).state === 'down' && !w.removed.has(id)) w.cluster.start(id);
    });
  }

  /**
   * Whether a disk may be replaced now without putting what the cluster acknowledged at
   * risk: every replica set has at least three members, every member is up and running,
   * and every voter of every group runs it with nothing left to repair. A second disk
   * replaced while the first node still re-syncs could take the only other copy of an
   * entry, or leave a group without a majority allowed to vote (an operator replaces one
   * machine at a time and waits for it to catch up).
   *
   * The groups judged are every group a member's disk holds (lastStores: opened by its
   * latest process, kept across restarts until the disk goes), not only the ones open now:
   * a node just restarted opens its partitions only once group 0 has re-applied the
   * catalog, and a group open nowhere yet must not pass for a group with nothing to repair
   * (simulator seed 20006: a second disk replaced while the first still re-synced).
   */
  private wipeIsSafe(): boolean {
    const w = this.w;
    const members = w.memberList();
    if (Math.min(members.length, ...w.options.streams.map((s) => s.replicationFactor)) < 3) return false;
    if (this.paused.size > 0 || members.some((id) => !w.cluster.get(id).up)) return false;
    const up = w.cluster.upNodes();
    const groups = new Set<number>();
    for (const id of members) for (const g of w.cluster.get(id).lastStores.keys()) groups.add(g);
    for (const n of up) for (const g of n.stores.keys()) groups.add(g);
    for (const g of groups) {
      let leader: { term: number; voters: number[] } | undefined;
      for (const n of up) {
        const rg = n.node?.groupForTest(g);
        if (rg === undefined || rg.isStopped || !rg.isLeader) continue;
        if (leader === undefined || rg.core.currentTerm > leader.term)
          leader = { term: rg.core.currentTerm, voters: rg.conf().voters };
      }
      if (leader === undefined) return false;
      for (const id of leader.voters) {
        const rg = w.cluster.nodes.get(id)?.node?.groupForTest(g);
        if (rg === undefined || rg.isStopped || rg.core.status().recoveringUntil !== 0) return false;
      }
    }
    return true;
  }

  /**
   * Members whose disk a replacement may take: any, in a run whose disks do not rot; else
   * only the faulty ones (a rotten copy and a replaced disk, or damage found while another
   * node re-syncs, are two failures of one group: no majority left that may vote).
   */
  private replaceable(): number[] {
    const w = this.w;
    const members = w.memberList().filter((id) => !this.down.has(id) && !this.removing.has(id));
    const rots = w.options.faults.includes('bit-flip') || w.options.faults.includes('read-fault');
    return rots ? members.filter((id) => this.faultyMembers().includes(id)) : members;
  }

  /** Resolves when `ok()` holds (checked every tick), or false after `ms` or at the end of the fault phase. */
  private async waitFor(ok: () => boolean, ms: number): Promise<boolean> {
    const w = this.w;
    const end = w.sched.nowUs + ms * 1000;
    while (w.phase === 'faults' && w.sched.nowUs < end) {
      if (ok()) return true;
      await w.sleep(w.options.tickMs);
    }
    return false;
  }

  /**
   * Rolling replacement: the disks of two or more members are replaced one after another,
   * as an operator replaces machines. Each node comes back on its empty disk with --join,
   * and the next disk goes only once the cluster is whole again (wipeIsSafe).
   */
  private async rollingWipe(): Promise<void> {
    const w = this.w;
    const order = w.rng.shuffle(this.replaceable());
    if (order.length < 2) return;
    const chosen = order.slice(0, w.rng.int(2, order.length + 1));
    this.rolling = true;
    const span = w.timeline.faultStart('rolling-wipe', `nodes ${chosen.join(', ')} in turn`, chosen);
    try {
      for (const id of chosen) {
        if (!(await this.waitFor(() => this.wipeIsSafe(), ROLL_WAIT_MS))) break;
        if (!this.replaceable().includes(id)) continue;
        w.cluster.wipe(id);
        this.downFor(id, w.rng.exponential(w.options.tickMs * 4), 'disk replaced (rolling)');
        // Wait for it to be back before judging the cluster whole.
        await this.waitFor(() => w.cluster.get(id).up, ROLL_WAIT_MS);
      }
    } finally {
      w.timeline.faultEnd(span);
      this.rolling = false;
    }
  }

  /**
   * Every member loses power; then, one to three times, they are all started and lose
   * power again a moment later — while reading their logs, writing a new term, opening
   * groups — and finally come back for good.
   */
  private async powerLossAtStartup(members: number[]): Promise<void> {
    const w = this.w;
    this.storming = true;
    const span = w.timeline.faultStart('power-loss-startup', `nodes ${members.join(', ')}`, members);
    const lose = () => {
      for (const id of members) w.cluster.powerLoss(id, w.rng.pick(CRASH_MODES));
    };
    const startAll = () => {
      for (const id of members)
        if (this.down.get(id) === span && w.cluster.get(id).state === 'down' && !w.removed.has(id))
          w.cluster.start(id);
    };
    for (const id of members) this.claimDown(id, span);
    try {
      lose();
      const d = w.options.disk;
      const syncMs = (d.syncUs + d.syncJitterUs) / 1000;
      for (let round = w.rng.int(1, 4); round > 0 && w.phase === 'faults'; round--) {
        await w.sleep(w.rng.exponential(w.options.tickMs));
        startAll();
        // Within the first few fsyncs of start-up, or a little later (group 0 open, a vote).
        await w.sleep(w.rng.next() * Math.max(0.05, syncMs * w.rng.pick([1, 5, 25])));
        // The fault phase may have ended meanwhile: healAll() has run and no longer counts
        // these nodes as down, so a power loss now would leave them down for good.
        if (w.phase !== 'faults') break;
        lose();
      }
      await w.sleep(w.rng.exponential(w.options.tickMs));
      startAll();
    } finally {
      for (const id of members) if (this.down.get(id) === span) this.down.delete(id);
      w.timeline.faultEnd(span);
      this.storming = false;
    }
  }

  /**
   * A replaced disk: the node starts on it (--join) and loses power before its first fsync
   * can complete — its identity file and first directories written, none of it durable.
   */
  private powerLossFresh(): void {
    const w = this.w;
    if (!this.wipeIsSafe()) return;
    const candidates = this.replaceable();
    if (candidates.length === 0) return;
    const id = w.rng.pick(candidates);
    const n = w.cluster.get(id);
    w.cluster.wipe(id);
    w.cluster.start(id);
    const syncsBefore = n.disk.syncs;
    // No fsync completes sooner than syncUs after the start: strike before that.
    const atUs = w.rng.next() * Math.max(1, w.options.disk.syncUs);
    w.sched.after(
      atUs,
      () => {
        if (w.phase !== 'faults') return; // healAll() has run: the node stays up
        const mode = w.rng.pick(CRASH_MODES);
        w.cluster.powerLoss(id, mode);
        this.downFor(
          id,
          this.duration(),
          `power loss ${Math.round(atUs)} µs into its first start, ${n.disk.syncs - syncsBefore} fsyncs issued (${mode})`,
        );
      },
      null,
      EventKind.fault,
      id,
    );
  }

  private endReadFault(id: number, span: FaultSpan): void {
    if (this.readFaults.get(id) !== span) return;
    this.readFaults.delete(id);
    this.w.cluster.get(id).disk.fs.setReadFaults(null);
    this.w.timeline.faultEnd(span);
  }

  /**
   * An up member, not already down or paused, or 0. Half the time a leader of some group:
   * faults that strike leaders make the leader changes where Raft's subtle cases live
   * (Figure 8 needs three of them in a row).
   */
  private pickUp(members: number[]): number {
    const up = members.filter((id) => this.w.cluster.get(id).up && !this.paused.has(id));
    if (up.length === 0) return 0;
    if (this.w.rng.chance(0.5)) {
      const leader = this.someLeader();
      if (leader !== 0 && up.includes(leader)) return leader;
    }
    return this.w.rng.pick(up);
  }

  /** A node that leads some group right now (0 if none). */
  private someLeader(): number {
    const leaders: number[] = [];
    for (const n of this.w.cluster.upNodes()) {
      for (const g of n.stores.keys()) {
        if (n.node?.groupForTest(g)?.isLeader) {
          leaders.push(n.id);
          break;
        }
      }
    }
    return leaders.length === 0 ? 0 : this.w.rng.pick(leaders);
  }

  /** Flips one bit of a file at rest on node `id`; returns what it hit ('' if nothing could be). */
  private flipBit(id: number): string {
    const fs = this.w.cluster.get(id).disk.fs;
    const files = fs.walk('data');
    for (let attempt = 0; attempt < 5 && files.length > 0; attempt++) {
      const path = this.w.rng.pick(files);
      const size = fs.fileBytes(path).length;
      if (size === 0) continue;
      const pos = this.w.rng.int(0, size);
      try {
        fs.corruptByte(path, pos, 1 << this.w.rng.int(0, 8));
        return `${path} at ${pos}`;
      } catch {
        // The file has writes not yet synced: bit rot hits what is at rest.
      }
    }
    return '';
  }

  /** Adds a spare node, or removes a member, through the metadata leader (as an operator would). */
  private async changeMembership(): Promise<void> {
    const w = this.w;
    this.membershipBusy = true;
    try {
      const spares = [...w.cluster.nodes.keys()].filter(
        (id) => !w.members.has(id) && !w.removed.has(id) && w.cluster.get(id).generation === 0,
      );
      // Nodes whose removal was asked may be on their way out even if no answer came back.
      const members = w.memberList().filter((id) => !this.removing.has(id));
      const faulty = new Set(w.options.nemesis.faultyNodes);
      // A removal must leave enough members for every partition to move rather than shrink
      // (a shrunk group could have the faulty disk as half of it), and the faulty disks a
      // minority of the members.
      const maxReplicas = Math.max(
        Math.min(3, w.options.nodes),
        ...w.options.streams.map((s) => s.replicationFactor),
      );
      const removable = members.filter((id) => {
        const rest = members.filter((m) => m !== id);
        const faultyLeft = rest.filter((m) => faulty.has(m)).length;
        return rest.length >= Math.max(2, maxReplicas) && faultyLeft <= Math.floor((rest.length - 1) / 2);
      });
      if (spares.length > 0 && (removable.length === 0 || w.rng.chance(0.6))) {
        const id = spares[0]!;
        w.cluster.start(id);
        const span = w.timeline.faultStart('membership', `add node ${id}`, [id]);
        const outcome = await this.adminOutcome(`add node ${id}`, (n) =>
          n.addNode(id, apiAddress(id), peerAddress(id)),
        );
        // Even when the answer never came, the node may have been added: it runs and may vote.
        // When every attempt was refused it was not, and counting it would let a later removal
        // pass for one that leaves every partition a replacement (simulator seed 60033: two
        // such "members" let node 3 go, and every partition shrank to two voters).
        if (outcome === 'fail') w.cluster.crash(id);
        else w.members.add(id);
        w.timeline.faultEnd(span);
      } else if (removable.length > 0 && members.length >= 3) {
        const id = w.rng.pick(removable);
        this.removing.add(id);
        const span = w.timeline.faultStart('membership', `remove node ${id}`, [id]);
        const ok = await this.admin(`remove node ${id}`, (n) => n.removeNode(id));
        if (ok) {
          w.members.delete(id);
          w.removed.add(id);
          w.cluster.crash(id);
          this.down.delete(id);
        }
        w.timeline.faultEnd(span);
      }
    } finally {
      this.membershipBusy = false;
    }
  }

  private async transfer(): Promise<void> {
    const w = this.w;
    const streams = w.options.streams;
    const s = w.rng.chance(0.3) ? undefined : w.rng.pick(streams);
    const partition = s === undefined ? 0 : w.rng.int(0, s.partitions);
    const to = w.rng.chance(0.5) ? 0 : w.randomMember();
    const what = `transfer ${s === undefined ? 'metadata' : `${s.name}/${partition}`} to ${to === 0 ? 'any' : `node ${to}`}`;
    await this.admin(what, (n) => n.transferLeader(s?.name ?? '', partition, to), 2);
  }

  /**
   * Runs an admin call against the cluster, following NOT_LEADER hints, retrying a few
   * times; records it in the history. Resolves whether it succeeded.
   */
  async admin(what: string, fn: (n: CairnNode) => Promise<unknown>, attempts = 5): Promise<boolean> {
    return (await this.adminOutcome(what, fn, attempts)) === 'ok';
  }

  /** As `admin`, telling a call every attempt of which was refused ('fail') from one that may have taken effect ('unknown'). */
  async adminOutcome(
    what: string,
    fn: (n: CairnNode) => Promise<unknown>,
    attempts = 5,
  ): Promise<'ok' | 'unknown' | 'fail'> {
    const w = this.w;
    let unknown = false;
    let node = w.randomMember();
    for (let attempt = 0; attempt < attempts && w.phase === 'faults'; attempt++) {
      const op = w.history.invoke({
        client: OPERATOR,
        kind: 'admin',
        stream: '',
        partition: 0,
        invokeUs: w.sched.nowUs,
        what,
        node,
      });
      const r = await w.rpc.call(OPERATOR, node, fn, w.options.workload.clientTimeoutMs * 4);
      op.completeUs = w.sched.nowUs;
      if (r.kind === 'ok') {
        op.outcome = 'ok';
        w.timeline.op(op);
        return 'ok';
      }
      op.outcome = outcomeUnknown(r) ? 'unknown' : 'fail';
      if (op.outcome === 'unknown') unknown = true;
      op.error = r.kind === 'timeout' ? 'client timeout' : `${r.error.code}: ${r.error.message}`;
      w.timeline.op(op);
      const hint = r.kind === 'error' ? hintedNode(r.error) : 0;
      node = hint !== 0 ? hint : w.randomMember();
      await w.sleep(w.options.tickMs * 5);
    }
    return unknown ? 'unknown' : 'fail';
  }

  /** Ends every fault: links back, processes resumed and restarted, read faults off, calm network. */
  healAll(): void {
    const w = this.w;
    const p = w.net.profile;
    p.lossP = 0;
    p.dupP = 0;
    p.slowP = 0;
    this.endTopology();
    w.net.heal();
    for (const [id, span] of this.paused) {
      w.cluster.resume(id);
      w.timeline.faultEnd(span);
    }
    this.paused.clear();
    for (const [id, span] of this.readFaults) this.endReadFault(id, span);
    for (const span of this.down.values()) w.timeline.faultEnd(span);
    this.down.clear();
    for (const n of w.cluster.nodes.values()) {
      if (n.inc?.paused) w.cluster.resume(n.id);
      if (w.members.has(n.id) && n.state === 'down') w.cluster.start(n.id);
    }
  }
}
