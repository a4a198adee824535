// A run's options. Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): the seed
// picks not only the run's events but also its configuration — cluster size, which faults
// are on and how often they strike, timeouts, the workload mix, streams, segment sizes —
// so that across seeds the runs differ in kind, not only in detail. Any option given
// explicitly overrides the pick; everything is printed at the start of a run.
import type { DiskProfile } from './disk.js';
import type { NetworkProfile } from './network.js';
import { SimRandom } from './random.js';

export const FAULTS = [
  /** Frames lost at random. */
  'loss',
  /** Frames delivered twice. */
  'duplicate',
  /** Frames held up on congested links. */
  'delay',
  /** Frames overtaking each other on a link (not FIFO). */
  'reorder',
  /** The cluster split in two, both ways. */
  'partition',
  /** Links cut in one direction only. */
  'asymmetric',
  /** The leader of some group cut off from everyone. */
  'isolate-leader',
  /** A link going down and up again and again. */
  'flap',
  /** A process killed (kill -9) and restarted: its disk keeps everything. */
  'crash',
  /** A process stopped for a while (GC pause, SIGSTOP). */
  'pause',
  /** A machine losing power: unsynced writes lost, torn or reordered. */
  'power-loss',
  /** Every machine losing power at once. */
  'power-loss-all',
  /** Bits flipped at rest in a file, on a minority of nodes. */
  'bit-flip',
  /** Reads returning flipped bits, on a minority of nodes. */
  'read-fault',
  /** A disk replaced by an empty one, on a minority of nodes (the node rejoins). */
  'wipe',
  /** Clocks of nodes running at different offsets and rates. */
  'skew',
  /** Nodes added and removed while the cluster runs. */
  'membership',
  /** Leadership handed from node to node. */
  'transfer',
  /** Disks replaced one node after another, each node rejoining (--join) and re-syncing before the next. */
  'rolling-wipe',
  /** Every machine losing power, then again while the nodes are starting up. */
  'power-loss-startup',
  /** A machine losing power between its first start on an empty disk and its first fsync. */
  'power-loss-fresh',
] as const;
export type FaultName = (typeof FAULTS)[number];

/** Names that stand for several faults on the command line. */
export const FAULT_GROUPS: Record<string, readonly FaultName[]> = {
  all: FAULTS,
  none: [],
  net: ['loss', 'duplicate', 'delay', 'reorder', 'partition', 'asymmetric', 'isolate-leader', 'flap'],
  process: ['crash', 'pause', 'power-loss', 'power-loss-all', 'power-loss-startup'],
  disk: [
    'power-loss',
    'power-loss-all',
    'bit-flip',
    'read-fault',
    'wipe',
    'rolling-wipe',
    'power-loss-startup',
    'power-loss-fresh',
  ],
  ops: ['membership', 'transfer'],
};

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

/** Expands a list like "net,crash,-flap" (a leading '-' removes) into fault names. */
export function parseFaults(text: string): FaultName[] {
  const on = new Set<FaultName>();
  for (const raw of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const remove = raw.startsWith('-');
    const name = remove ? raw.slice(1) : raw;
    const names =
      FAULT_GROUPS[name] ?? ((FAULTS as readonly string[]).includes(name) ? [name as FaultName] : null);
    if (names === null) {
      throw new OptionsError(
        `unknown fault '${name}' (faults: ${FAULTS.join(', ')}; groups: ${Object.keys(FAULT_GROUPS).join(', ')})`,
      );
    }
    for (const n of names) {
      if (remove) on.delete(n);
      else on.add(n);
    }
  }
  return FAULTS.filter((f) => on.has(f));
}

export interface StreamSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** Key compaction (records carry keys from a small key space). */
  compacted: boolean;
  /** 0 = no bound. */
  retentionBytes: number;
  /** 0 = the storage default. */
  segmentBytes: number;
}

export interface WorkloadMix {
  /** Plain appends. */
  append: number;
  /** Appends of an idempotent producer (retried with the same sequence until known). */
  idempotent: number;
  /** Appends with an expected offset. */
  conditional: number;
  /** Consumer polls from any replica. */
  poll: number;
  /** Polls through the leader with a linearizable read. */
  linearizablePoll: number;
}

export interface WorkloadOptions {
  clients: number;
  /** Mean time between one client's operations, ms. */
  thinkMs: number;
  mix: WorkloadMix;
  /** Bytes of padding in each value (values are unique strings plus this). */
  valueBytes: number;
  /** Records per append (1..n). */
  maxRecordsPerAppend: number;
  /** Keys of compacted streams are drawn from this many. */
  keySpace: number;
  /** A client gives up on a request after this long (its outcome is then unknown), ms. */
  clientTimeoutMs: number;
}

export interface NemesisOptions {
  /** Mean time between two faults starting, ms. */
  meanIntervalMs: number;
  /** Mean duration of a fault (partition, pause, down time), ms. */
  meanDurationMs: number;
  /** Network loss/duplication while those faults are on. */
  lossP: number;
  dupP: number;
  slowP: number;
  slowUs: number;
  /** Clock skew: largest rate deviation (0.1 = ±10 %) and offset, ms. */
  maxRateSkew: number;
  maxOffsetMs: number;
  /** Nodes whose disks may be corrupted or wiped (a fixed minority). */
  faultyNodes: number[];
}

export interface SimOptions {
  seed: number;
  /** Nodes the cluster starts with (1..7). */
  nodes: number;
  /** More node slots that membership changes may add (nodes + spares ≤ 7). */
  spares: number;
  /** Virtual time of the fault phase, ms. */
  timeMs: number;
  /** The liveness phase's bound: after healing, everything must settle within this, ms. */
  quietMs: number;
  faults: FaultName[];
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotIntervalEntries: number;
  requestTimeoutMs: number;
  network: NetworkProfile;
  disk: DiskProfile;
  storage: {
    segmentBytes: number;
    cacheBytes: number;
    indexIntervalBytes: number;
    recovery: 'tail' | 'full';
  };
  /** Small message and chunk limits make flow control and chunked snapshots happen. */
  maxAppendEntriesBytes: number;
  snapshotChunkBytes: number;
  streams: StreamSpec[];
  workload: WorkloadOptions;
  nemesis: NemesisOptions;
}

/** What a caller may fix; everything else the seed picks. */
export type SimOptionsInput = Partial<
  Omit<SimOptions, 'workload' | 'nemesis' | 'network' | 'disk' | 'storage'>
> & {
  seed: number;
  workload?: Partial<WorkloadOptions>;
  nemesis?: Partial<NemesisOptions>;
  network?: Partial<NetworkProfile>;
  disk?: Partial<DiskProfile>;
  storage?: Partial<SimOptions['storage']>;
  /** Faults never to turn on, whatever the seed picks (e.g. to leave out a known open bug's trigger). */
  withoutFaults?: FaultName[];
};

/** Most nodes in a run (slots, including spares). */
export const MAX_NODES = 7;

/** Picks every option the input leaves open, from the seed. */
export function resolveOptions(input: SimOptionsInput): SimOptions {
  // The options' own streams (the run's draws do not move them): one per section, forked
  // in a fixed order, so that how many draws one section makes (which depends on what the
  // caller fixed) never moves another section's picks.
  const root = new SimRandom(input.seed).fork();
  const [rc, rf, rt, rn, rd, rs, rm, rw, rx] = Array.from({ length: 9 }, () => root.fork()) as [
    SimRandom,
    SimRandom,
    SimRandom,
    SimRandom,
    SimRandom,
    SimRandom,
    SimRandom,
    SimRandom,
    SimRandom,
  ];
  const nodes = or(input.nodes, rc.pick([1, 2, 3, 3, 3, 4, 5, 5, 5, 7]));
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
    throw new OptionsError(`nodes must be in [1, ${MAX_NODES}], got ${nodes}`);
  const faults = or(input.faults, pickFaults(rf)).filter((f) => !(input.withoutFaults ?? []).includes(f));
  const sparePick = rc.int(1, 3);
  const spares = or(input.spares, faults.includes('membership') ? Math.min(MAX_NODES - nodes, sparePick) : 0);
  if (!Number.isInteger(spares) || spares < 0 || nodes + spares > MAX_NODES)
    throw new OptionsError(`nodes + spares must be at most ${MAX_NODES}`);
  const tickMs = or(input.tickMs, rt.pick([10, 20, 50, 50, 100]));
  const electionTicks = or(input.electionTicks, rt.pick([5, 10, 10, 20]));
  const heartbeatTicks = or(
    input.heartbeatTicks,
    Math.max(1, Math.min(electionTicks - 1, rt.pick([1, 2, 2, 3]))),
  );
  const electionMs = tickMs * electionTicks;
  const on = (f: FaultName) => faults.includes(f);

  const network: NetworkProfile = {
    latencyUs: rn.pick([100, 300, 1000, 2000]),
    jitterUs: rn.pick([0, 200, 1000, 5000]),
    lossP: 0,
    dupP: 0,
    slowP: 0,
    slowUs: 0,
    reorder: on('reorder'),
    ...input.network,
  };
  const disk: DiskProfile = {
    syncUs: rd.pick([50, 200, 1000, 3000]),
    syncJitterUs: rd.pick([0, 100, 2000]),
    writeUs: rd.pick([0, 5, 20]),
    stallP: rd.pick([0, 0.001, 0.01]),
    stallUs: rd.pick([20_000, 200_000]),
    ...input.disk,
  };
  const streamCount = rs.pick([1, 1, 2, 3]);
  const maxRf = Math.min(rs.chance(0.2) ? 5 : 3, nodes);
  const streams: StreamSpec[] = or(
    input.streams,
    Array.from({ length: streamCount }, (_, i) => {
      const compacted = rs.chance(0.2);
      return {
        name: `s${i}`,
        partitions: rs.pick([1, 1, 2, 3]),
        replicationFactor: rs.chance(0.8) ? maxRf : rs.int(1, maxRf + 1),
        compacted,
        retentionBytes: !compacted && rs.chance(0.2) ? rs.pick([4096, 16384]) : 0,
        segmentBytes: rs.pick([0, 1024, 4096, 65536]),
      };
    }),
  );
  for (const s of streams) {
    if (s.replicationFactor < 1 || s.replicationFactor > nodes)
      throw new OptionsError(`stream ${s.name}: replication factor must be in [1, ${nodes}]`);
  }

  // Disks may be corrupted or wiped only on a minority of every group's replicas (DESIGN §6):
  // of the cluster, and of the smallest replica set (a service's stream has min(3, nodes)).
  const smallestGroup = Math.min(
    nodes + spares,
    Math.min(3, nodes),
    ...streams.map((s) => s.replicationFactor),
  );
  const maxFaulty = Math.floor((smallestGroup - 1) / 2);
  const faultyCount = Math.min(maxFaulty, rm.int(0, maxFaulty + 1) || (maxFaulty > 0 ? 1 : 0));
  const nemesis: NemesisOptions = {
    meanIntervalMs: rm.pick([200, 500, 1000, 2000]),
    meanDurationMs: Math.max(electionMs * rm.pick([0.5, 1, 2, 5]), 100),
    // Drawn whether the fault is on or not, so that the faults chosen do not move other picks.
    lossP: onlyIf(on('loss'), rm.pick([0.01, 0.05, 0.2])),
    dupP: onlyIf(on('duplicate'), rm.pick([0.01, 0.05, 0.2])),
    slowP: onlyIf(on('delay'), rm.pick([0.01, 0.05, 0.2])),
    slowUs: rm.pick([10_000, 100_000, electionMs * 1000]),
    maxRateSkew: onlyIf(on('skew'), rm.pick([0.01, 0.1, 0.3])),
    maxOffsetMs: onlyIf(on('skew'), rm.pick([10, 1000, 3_600_000])),
    faultyNodes: rm
      .shuffle(Array.from({ length: nodes + spares }, (_, i) => i + 1))
      .slice(0, faultyCount)
      .sort(),
    ...input.nemesis,
  };
  if (nemesis.faultyNodes.length > maxFaulty)
    throw new OptionsError(
      `at most ${maxFaulty} faulty nodes (a minority of the smallest replica set, ${smallestGroup})`,
    );

  const mix: WorkloadMix = {
    append: rw.pick([0, 1, 3]),
    idempotent: rw.pick([0, 1, 2]),
    conditional: rw.pick([0, 1, 2]),
    poll: rw.pick([1, 2, 4]),
    linearizablePoll: rw.pick([0, 1]),
    ...input.workload?.mix,
  };
  if (mix.append + mix.idempotent + mix.conditional === 0) mix.append = 1;
  const requestTimeoutMs = or(input.requestTimeoutMs, Math.max(2000, electionMs * rt.pick([4, 10])));
  const workload: WorkloadOptions = {
    clients: rw.int(1, 6),
    thinkMs: rw.pick([5, 20, 50, 200]),
    valueBytes: rw.pick([0, 16, 200, 2000]),
    maxRecordsPerAppend: rw.pick([1, 1, 3, 10]),
    keySpace: rw.pick([3, 10, 50]),
    clientTimeoutMs: requestTimeoutMs + rw.pick([500, 5000]),
    ...input.workload,
    mix,
  };

  const timeMs = input.timeMs ?? 30_000;
  const snapshotIntervalEntries = or(input.snapshotIntervalEntries, rx.pick([20, 100, 1000, 10_000]));
  const maxAppendEntriesBytes = or(input.maxAppendEntriesBytes, rx.pick([4096, 65536, 4 << 20]));
  const snapshotChunkBytes = or(input.snapshotChunkBytes, rx.pick([512, 8192, 1 << 20]));
  return {
    seed: input.seed,
    nodes,
    spares,
    timeMs,
    quietMs: input.quietMs ?? Math.max(30_000, electionMs * 40, requestTimeoutMs * 3),
    faults,
    tickMs,
    electionTicks,
    heartbeatTicks,
    snapshotIntervalEntries,
    requestTimeoutMs,
    network,
    disk,
    storage: {
      segmentBytes: rx.pick([2048, 8192, 65536, 1 << 20]),
      cacheBytes: rx.pick([4096, 65536, 16 << 20]),
      indexIntervalBytes: rx.pick([256, 4096]),
      recovery: rx.chance(0.3) ? 'full' : 'tail',
      ...input.storage,
    },
    maxAppendEntriesBytes,
    snapshotChunkBytes,
    streams,
    workload,
    nemesis,
  };
}

/** The given value, else the drawn one (drawn either way, so that fixing one option leaves the other picks as they were). */
function or<T>(given: T | undefined, drawn: T): T {
  return given === undefined ? drawn : given;
}

function onlyIf(on: boolean, value: number): number {
  return on ? value : 0;
}

/** Each fault is on with its own probability, so runs range from calm to everything at once. */
function pickFaults(r: SimRandom): FaultName[] {
  const p = r.pick([0.1, 0.3, 0.5, 0.8]);
  return FAULTS.filter(() => r.chance(p));
}

/** The options as lines "name: value", for printing at the start of a run. */
export function describeOptions(o: SimOptions): string[] {
  const streams = o.streams
    .map(
      (s) =>
        `${s.name}(p=${s.partitions} rf=${s.replicationFactor}${s.compacted ? ' compacted' : ''}${s.retentionBytes ? ` retention=${s.retentionBytes}B` : ''}${s.segmentBytes ? ` segment=${s.segmentBytes}B` : ''})`,
    )
    .join(' ');
  const w = o.workload;
  return [
    `seed: ${o.seed}`,
    `nodes: ${o.nodes}${o.spares ? ` (+${o.spares} spare)` : ''}`,
    `time: ${o.timeMs} ms of faults, then at most ${o.quietMs} ms to settle`,
    `faults: ${o.faults.length === 0 ? 'none' : o.faults.join(',')}`,
    `raft: tick ${o.tickMs} ms, election ${o.electionTicks} ticks, heartbeat ${o.heartbeatTicks} ticks, snapshot every ${o.snapshotIntervalEntries} entries, request timeout ${o.requestTimeoutMs} ms`,
    `network: latency ${o.network.latencyUs} µs + ${o.network.jitterUs} µs jitter${o.network.reorder ? ', reordering' : ', FIFO links'}; loss ${o.nemesis.lossP}, dup ${o.nemesis.dupP}, slow ${o.nemesis.slowP} (+${o.nemesis.slowUs} µs)`,
    `disk: fsync ${o.disk.syncUs} µs + ${o.disk.syncJitterUs} µs, write ${o.disk.writeUs} µs, stalls ${o.disk.stallP} × ${o.disk.stallUs} µs; segments ${o.storage.segmentBytes} B, cache ${o.storage.cacheBytes} B, index every ${o.storage.indexIntervalBytes} B, recovery ${o.storage.recovery}`,
    `limits: append-entries ${o.maxAppendEntriesBytes} B, snapshot chunks ${o.snapshotChunkBytes} B`,
    `faulty disks: ${o.nemesis.faultyNodes.length === 0 ? 'none' : `nodes ${o.nemesis.faultyNodes.join(',')}`}; clock skew ±${o.nemesis.maxRateSkew * 100}% rate, ${o.nemesis.maxOffsetMs} ms offset`,
    `nemesis: a fault every ~${o.nemesis.meanIntervalMs} ms lasting ~${Math.round(o.nemesis.meanDurationMs)} ms`,
    `streams: ${streams}`,
    `workload: ${w.clients} clients, think ${w.thinkMs} ms, mix append ${w.mix.append} / idempotent ${w.mix.idempotent} / conditional ${w.mix.conditional} / poll ${w.mix.poll} / linearizable poll ${w.mix.linearizablePoll}, ${w.maxRecordsPerAppend} records per append max, values +${w.valueBytes} B, ${w.keySpace} keys, client timeout ${w.clientTimeoutMs} ms`,
  ];
}
