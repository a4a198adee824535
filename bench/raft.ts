// `npm run bench -- raft [--seconds=N]`: throughput of the Raft core alone. Three (or five)
// RaftCores in one process, an in-memory network (arrays of messages), MemoryLogs and
// instant "persist" (persisted() right after each Ready), so what is measured is the core's
// own work per committed entry: proposing, building and stepping messages, flow control,
// commit counting and handing out committed entries.
//
// One "turn" = propose on the leader, then every node handles its Ready, then every message
// in flight is delivered. Modes:
//   batch64      64 entries per propose, one propose per turn (pipelined)
//   single       1 entry per propose, one propose per turn (pipelined)
//   single-sync  1 entry per propose, then turns until it is committed (lock-step latency)
// Baseline (same run): appending the same entries to one MemoryLog, no consensus at all.

import { performance } from 'node:perf_hooks';
import {
  type ConfState,
  createPrng,
  type Entry,
  MemoryLog,
  type Message,
  RaftCore,
  type RaftOptions,
} from '../raft/src/index.js';
import { machine, type Row, type SuiteResult } from './lib/results.js';

const PAYLOAD_BYTES = 100;

interface BenchNode {
  id: number;
  core: RaftCore;
  log: MemoryLog;
  applied: number;
}

class BenchCluster {
  readonly nodes: BenchNode[] = [];
  private network: Message[] = [];
  private readonly byId = new Map<number, BenchNode>();
  private readonly conf: ConfState;

  constructor(size: number, options: Partial<RaftOptions>) {
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    this.conf = { voters, learners: [] };
    const prng = createPrng(42);
    for (const id of voters) {
      const log = new MemoryLog();
      const core = new RaftCore({ id, log, conf: { voters, learners: [] }, random: prng.next, options });
      const n = { id, core, log, applied: 0 };
      this.nodes.push(n);
      this.byId.set(id, n);
    }
    // Elect node 1.
    const leader = this.nodes[0]!.core;
    for (let i = 0; i < 1000 && leader.currentRole !== 'leader'; i++) {
      leader.tick();
      this.turn();
    }
    if (leader.currentRole !== 'leader') throw new Error('bench: no leader');
    for (let i = 0; i < 10; i++) this.turn();
  }

  get leader(): RaftCore {
    return this.nodes[0]!.core;
  }

  /** Every node handles its Ready (instant persist), then every message is delivered. */
  turn(): void {
    for (const n of this.nodes) {
      const core = n.core;
      if (!core.hasReady()) continue;
      const rd = core.takeReady();
      const w = rd.logWrite;
      if (w) n.log.write(w);
      for (const m of rd.messagesNow) this.network.push(m);
      for (const m of rd.messagesAfterPersist) this.network.push(m);
      if (w && w.entries.length > 0) {
        const last = w.entries[w.entries.length - 1]!;
        core.persisted(last.index, last.term);
      }
      if (rd.snapshot.length > 0) throw new Error('bench: unexpected snapshot transfer');
      const c = rd.committed;
      if (c.length > 0) {
        const last = c[c.length - 1]!.index;
        core.applied(last);
        n.applied = last;
      }
    }
    // Keep memory flat: every node snapshots and compacts its log well behind what all have applied.
    const leader = this.nodes[0]!;
    if (leader.applied - leader.log.firstIndex() > 20_000) {
      let minApplied = leader.applied;
      for (const n of this.nodes) minApplied = Math.min(minApplied, n.applied);
      const index = minApplied - 10_000;
      if (index > leader.log.firstIndex()) {
        for (const n of this.nodes) {
          n.core.snapshotTaken({ index, term: n.log.term(index)!, conf: this.conf, size: 0 });
          n.log.compact(index);
        }
      }
    }
    const batch = this.network;
    this.network = [];
    for (const m of batch) this.byId.get(m.to)!.core.step(m);
  }
}

function payloads(count: number): Uint8Array[] {
  const p = new Uint8Array(PAYLOAD_BYTES);
  return Array.from({ length: count }, () => p);
}

/** Runs `mode` for about `seconds`; returns committed entries per second on the leader. */
function measure(size: number, mode: 'batch64' | 'single' | 'single-sync', seconds: number): number {
  const c = new BenchCluster(size, { maxInflightMsgs: 4096, maxUncommittedBytes: 1 << 30 });
  const leader = c.leader;
  const data = payloads(mode === 'batch64' ? 64 : 1);
  const run = (ms: number): { entries: number; elapsedMs: number } => {
    const startCommit = leader.commitIndex;
    const start = performance.now();
    let now = start;
    let turns = 0;
    while (now - start < ms) {
      if (mode === 'single-sync') {
        const r = leader.propose(data);
        if (!r.ok) throw new Error(`bench: proposal refused: ${r.reason}`);
        while (leader.commitIndex < r.lastIndex) c.turn();
      } else {
        const r = leader.propose(data);
        if (!r.ok) throw new Error(`bench: proposal refused: ${r.reason}`);
        c.turn();
      }
      if ((++turns & 63) === 0) now = performance.now();
    }
    for (let i = 0; i < 10; i++) c.turn();
    return { entries: leader.commitIndex - startCommit, elapsedMs: performance.now() - start };
  };
  run(Math.min(300, seconds * 250)); // warm up the JIT
  const r = run(seconds * 1000);
  if (c.nodes[0]!.applied < leader.commitIndex - 1000)
    throw new Error('bench: the leader did not apply what it committed');
  return (r.entries / r.elapsedMs) * 1000;
}

/** The floor: the same entries appended to one MemoryLog, nothing else. */
function baselineAppend(seconds: number): number {
  const log = new MemoryLog();
  const p = new Uint8Array(PAYLOAD_BYTES);
  const start = performance.now();
  let n = 0;
  let now = start;
  while (now - start < seconds * 1000) {
    const batch: Entry[] = new Array(64);
    for (let k = 0; k < 64; k++) batch[k] = { index: n + k + 1, term: 1, type: 'normal', data: p };
    log.append(batch);
    n += 64;
    if (log.lastIndex() - log.firstIndex() > 20_000) log.compact(log.lastIndex() - 10_000);
    if ((n & 4095) === 0) now = performance.now();
  }
  return (n / (performance.now() - start)) * 1000;
}

export async function run(flags: string[]): Promise<SuiteResult> {
  const secondsFlag = flags.find((f) => f.startsWith('--seconds='));
  const seconds = secondsFlag ? Number(secondsFlag.slice('--seconds='.length)) : 2;
  if (!(seconds > 0)) throw new Error(`bench raft: bad --seconds in ${secondsFlag}`);

  const base = baselineAppend(seconds);
  const batch3 = measure(3, 'batch64', seconds);
  const single3 = measure(3, 'single', seconds);
  const sync3 = measure(3, 'single-sync', seconds);
  const batch5 = measure(5, 'batch64', seconds);

  const rows: Row[] = [
    {
      name: 'append only (baseline)',
      subject: 'MemoryLog',
      value: base,
      unit: 'entries/s',
      notes: '64 per call',
    },
    { name: 'committed, batches of 64', subject: 'raft 3 cores', value: batch3, unit: 'entries/s' },
    {
      name: 'committed, single proposals',
      subject: 'raft 3 cores',
      value: single3,
      unit: 'entries/s',
      notes: 'pipelined',
    },
    {
      name: 'committed, single, lock-step',
      subject: 'raft 3 cores',
      value: sync3,
      unit: 'entries/s',
      notes: 'next proposal after commit',
    },
    { name: 'committed, batches of 64', subject: 'raft 5 cores', value: batch5, unit: 'entries/s' },
  ];
  for (const r of rows)
    console.log(
      `${r.subject.padEnd(14)} ${r.name.padEnd(32)} ${Math.round(r.value).toLocaleString()} ${r.unit}`,
    );
  return {
    rows,
    ratios: [
      { name: 'batches of 64, 3 cores / 1,000,000 entries/s (target)', value: batch3 / 1e6, target: 1 },
      { name: 'single proposals, 3 cores / 100,000 commits/s (target)', value: single3 / 1e5, target: 1 },
      { name: 'batches of 64, 3 cores / MemoryLog append (same run)', value: batch3 / base },
      { name: 'single proposals / batches of 64 (same run)', value: single3 / batch3 },
    ],
    settings: {
      seconds,
      payloadBytes: PAYLOAD_BYTES,
      persist: 'instant',
      network: 'in-memory arrays',
      ...machine(),
    },
    notes: [
      'One turn = one propose on the leader, then every core handles its Ready, then every message is delivered. ' +
        '"single, lock-step" proposes the next entry only after the previous one committed.',
    ],
  };
}
