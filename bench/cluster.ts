// `npm run bench -- cluster`: a 3-node Cairn cluster of real processes on 127.0.0.1
// (fsync on), driven through the client library. Every append is acknowledged only after
// it is fsynced on a majority.
//
//   closed loop    concurrency 1 and 64, one record per append, 100 B and 1 KiB
//   saturating     `--sat-window` append calls in flight, each of `--sat-batch` records
//   consume        the saturating run's log read back from offset 0
//   end to end     append → seen by a subscriber, concurrency `--e2e-concurrency`
//   recovery       restart of a follower on a `--recovery-bytes` log; a wiped follower
//                  re-synced from the leader (lib/recovery.ts)
//
// Flags (--name=value): seconds (per measurement, 3), warmup-seconds (1), payloads
// (100,1024), concurrency (1,64), sat-batch (1000), sat-window (8), e2e-concurrency (1),
// recovery-bytes (1GiB, as the issue asks; e.g. 256MiB for a quicker run; 0 skips recovery), shapes (closed,saturating,consume,e2e),
// profile (CPU profiles of the three nodes and of this process: summaries in the notes,
// files kept in a temp directory named there).
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnCluster, CairnSystem, type NodeCounters } from './lib/cairn.js';
import { formatSummary, startProfile, summarize } from './lib/cpuprofile.js';
import { DISK_PROBE, type DiskProbe, probeDisk } from './lib/disk.js';
import { Flags } from './lib/flags.js';
import { Processes } from './lib/procs.js';
import { type RecoveryResult, recovery } from './lib/recovery.js';
import { diskTable, shapeChart, shapeLabel, shapeTable } from './lib/report.js';
import type { Ratio, Row, SuiteResult, Table } from './lib/results.js';
import { closedLoop, consume, endToEnd, type ShapeResult, saturating } from './lib/shapes.js';
import { cairnVersions, logShape } from './lib/versions.js';

/** Targets of issue 8 for Cairn alone. */
export const SATURATING_TARGET_RECORDS_PER_SEC = 1_000_000;
export const RESYNC_TARGET_MB_PER_SEC = 200;
/** Log size of the recovery figures (issue 8's 1 GiB: about 70 s of writing and re-sync here). */
export const RECOVERY_DEFAULT_BYTES = 2 ** 30;

export async function run(args: string[]): Promise<SuiteResult> {
  const f = new Flags(args);
  const seconds = f.number('seconds', 3);
  const warmupSeconds = f.number('warmup-seconds', 1);
  const payloads = f.numbers('payloads', [100, 1024]);
  const concurrencies = f.numbers('concurrency', [1, 64]);
  const satBatch = f.number('sat-batch', 1000);
  const satWindow = f.number('sat-window', 8);
  const e2eConcurrency = f.number('e2e-concurrency', 1);
  const recoveryBytes = f.bytes('recovery-bytes', RECOVERY_DEFAULT_BYTES);
  const only = f.string('shapes', 'closed,saturating,consume,e2e').split(',');
  const profile = f.bool('profile');

  const procs = new Processes();
  const shapes: ShapeResult[] = [];
  const inside: NodeActivity[] = [];
  const notes: string[] = [];
  let rec: RecoveryResult | undefined;
  let disk: DiskProbe[] = [];
  /** Node id of each node process that ran (profile files are named by PID). */
  const pids = new Map<number, number>();
  try {
    const profileDir = profile ? mkdtempSync(join(tmpdir(), 'cairn-bench-profiles-')) : '';
    disk = probeDisk(procs, DISK_PROBE);
    const cluster = new CairnCluster(procs, {
      nodeArgs: profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
    });
    await cluster.start();
    const stopClientProfile = profile ? await startProfile() : undefined;
    const cairn = new CairnSystem(cluster.servers);
    /** Runs a shape, with the nodes' write+fsync and append counters read around it. */
    const measure = async (run: () => Promise<ShapeResult>) => {
      const before = await cluster.scrape();
      const t0 = performance.now();
      const res = await run();
      const seconds = (performance.now() - t0) / 1000;
      const after = await cluster.scrape();
      const info = await cairn.api.describeStream(cairn.currentStream);
      shapes.push(res);
      logShape(res);
      inside.push(nodeActivity(shapeLabel(res), info.partitions[0]!.leader, before, after, seconds));
    };
    try {
      for (const bytes of payloads) {
        for (const concurrency of only.includes('closed') ? concurrencies : []) {
          await cairn.reset(`c${concurrency}-${bytes}`);
          await measure(() =>
            closedLoop(cairn, { payloadBytes: bytes, concurrency, seconds, warmupSeconds }),
          );
        }
        if (!only.includes('saturating')) continue;
        await cairn.reset(`sat-${bytes}`);
        await measure(() =>
          saturating(cairn, {
            payloadBytes: bytes,
            batchRecords: satBatch,
            window: satWindow,
            seconds,
            warmupSeconds,
          }),
        );
        // Everything the stream holds: the reset's record, the warm-up's and the measured ones.
        if (only.includes('consume')) await measure(() => consume(cairn, bytes));
      }
      if (only.includes('e2e')) {
        await cairn.reset('e2e');
        await measure(() =>
          endToEnd(cairn, {
            payloadBytes: payloads[0]!,
            concurrency: e2eConcurrency,
            seconds,
            warmupSeconds,
          }),
        );
      }
      if (recoveryBytes > 0) rec = await recovery(cluster, cairn, recoveryBytes);
    } finally {
      for (const [pid, id] of cluster.nodeOfPid) pids.set(pid, id);
      await cairn.close();
      // SIGTERM: a graceful stop, so that profiling nodes write their profiles.
      await cluster.stop();
      if (stopClientProfile) await stopClientProfile(join(profileDir, 'client.cpuprofile'));
    }
    if (profile) {
      notes.push(`CPU profiles (node --cpu-prof; the client via the inspector) in ${profileDir}:`);
      const led = new Map<number, number>();
      for (const a of inside) led.set(a.leader, (led.get(a.leader) ?? 0) + 1);
      for (const file of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile'))) {
        // node --cpu-prof names a file CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
        const pid = Number(file.split('.')[3]);
        const id = pids.get(pid);
        const who =
          file === 'client.cpuprofile'
            ? 'the benchmark process (client library)'
            : id === undefined
              ? `an unknown process (pid ${pid})`
              : `node ${id} (pid ${pid}${[...pids.values()].filter((x) => x === id).length > 1 ? '; this node was restarted by the recovery figures, each process has its own profile' : ''}), leader in ${led.get(id) ?? 0} of ${inside.length} shapes`;
        notes.push(`${who}:\n\`\`\`\n${formatSummary(summarize(join(profileDir, file)))}\n\`\`\``);
      }
    }
  } finally {
    await procs.cleanup();
  }

  const rows: Row[] = [];
  const ratios: Ratio[] = [];
  const sat100 = shapes.find((s) => s.shape === 'saturating' && s.payloadBytes === 100);
  if (sat100 !== undefined) {
    ratios.push({
      name: 'saturating producer, 100 B: records/s durable / 1,000,000',
      value: sat100.recordsPerSec / SATURATING_TARGET_RECORDS_PER_SEC,
      target: 1,
    });
  }
  if (rec !== undefined) {
    const mb = rec.logBytes / 1e6;
    const resyncMBps = rec.resyncBytes / 1e6 / (rec.resyncMs / 1000);
    rows.push(
      {
        name: 'recovery: log written',
        subject: 'cairn',
        value: mb,
        unit: 'MB',
        notes: `in ${rec.writeSeconds.toFixed(1)} s through the client (16 KiB records)`,
      },
      {
        name: 'recovery: restart, empty log',
        subject: 'cairn',
        value: rec.restartEmptyMs,
        unit: 'ms',
        notes: 'SIGKILL, spawn → ready',
      },
      {
        name: `recovery: restart, ${mb.toFixed(0)} MB log`,
        subject: 'cairn',
        value: rec.restartFullMs,
        unit: 'ms',
        notes: 'SIGKILL, spawn → ready (recovery "tail")',
      },
      {
        name: 'recovery: opening the log (restart full − empty)',
        subject: 'cairn',
        value: rec.restartFullMs - rec.restartEmptyMs,
        unit: 'ms',
      },
      {
        name: `re-sync of a wiped follower, ${mb.toFixed(0)} MB`,
        subject: 'cairn',
        value: rec.resyncMs / 1000,
        unit: 's',
        notes: `spawn (--join) → applied the leader's last index; follower then holds ${(rec.followerBytesAfter / 1e6).toFixed(0)} MB`,
      },
      { name: 're-sync rate (spawn → caught up)', subject: 'cairn', value: resyncMBps, unit: 'MB/s' },
      {
        name: 're-sync rate, process start excluded',
        subject: 'cairn',
        value: rec.resyncBytes / 1e6 / ((rec.resyncMs - rec.restartEmptyMs) / 1000),
        unit: 'MB/s',
        notes: 'the empty-log restart time taken off: what the copy itself runs at',
      },
      {
        name: 're-sync: CPU of the leader',
        subject: 'cairn',
        value: (100 * rec.resyncCpuSeconds.leader) / (rec.resyncMs / 1000),
        unit: '% of a core',
        notes: `${rec.resyncCpuSeconds.leader.toFixed(1)} s of CPU (user + system, /proc) over the re-sync`,
      },
      {
        name: 're-sync: CPU of the wiped follower',
        subject: 'cairn',
        value: (100 * rec.resyncCpuSeconds.follower) / (rec.resyncMs / 1000),
        unit: '% of a core',
        notes: `${rec.resyncCpuSeconds.follower.toFixed(1)} s of CPU, its start-up included`,
      },
    );
    ratios.push({ name: 're-sync MB/s / 200 MB/s', value: resyncMBps / RESYNC_TARGET_MB_PER_SEC, target: 1 });
  }
  notes.push(
    'The machine has 2 cores for 3 Cairn nodes, the client and whatever else runs (other builds and tests may share it): every process competes for the same two cores, so absolute numbers are far below what 3 machines would do; compare ratios measured in the same run.',
    'Latency of a saturating run is per append call (a call of sat-batch records), not per record.',
  );
  const versions = cairnVersions();
  return {
    rows,
    ratios,
    settings: {
      ...f.used,
      nodes: 3,
      partitions: 1,
      fsync: 'on (O_DSYNC segment writes, acknowledged after a majority fsync)',
    },
    versions,
    notes,
    tables: [
      ...(shapes.length > 0
        ? [shapeTable('Cairn, 3 nodes on 127.0.0.1', shapes), activityTable(inside)]
        : []),
      diskTable(disk),
    ],
    svg:
      shapes.length > 0
        ? shapeChart({
            title: 'Cairn, 3-node cluster on one 2-core machine (127.0.0.1, fsync on)',
            subtitle: [
              `${new Date().toISOString().slice(0, 10)}, ${seconds} s per measurement; every append acknowledged after fsync on 2 of 3 nodes`,
            ],
            shapes,
            systems: ['cairn'],
            payloadBytes: payloads[0]!,
          })
        : undefined,
    data: { shapes, inside, recovery: rec, disk },
  };
}

/** What the nodes did during one shape (warm-up included), from their /metrics. */
export interface NodeActivity {
  shape: string;
  leader: number;
  /** Write+fsync rounds (group commits) per second on the leader, and their mean duration. */
  leaderFsyncsPerSec: number;
  leaderFsyncMs: number;
  /** The same on the followers, averaged. */
  followerFsyncsPerSec: number;
  followerFsyncMs: number;
  /** Append requests the leader answered per second, and per write+fsync round. */
  appendsPerSec: number;
  appendsPerFsync: number;
  /** Batch bytes appended per leader write+fsync round. */
  kibPerFsync: number;
  /** Mean append latency inside the leader (arrival → acknowledgement), ms. */
  leaderAppendMs: number;
}

export function nodeActivity(
  shape: string,
  leader: number,
  before: Map<number, NodeCounters>,
  after: Map<number, NodeCounters>,
  seconds: number,
): NodeActivity {
  const delta = (id: number) => {
    const a = after.get(id);
    const b = before.get(id);
    if (a === undefined || b === undefined) return undefined;
    return {
      persistCount: a.persistCount - b.persistCount,
      persistSeconds: a.persistSeconds - b.persistSeconds,
      appendCount: a.appendCount - b.appendCount,
      appendSeconds: a.appendSeconds - b.appendSeconds,
      apiBytesIn: a.apiBytesIn - b.apiBytesIn,
    };
  };
  const l = delta(leader);
  const followers = [...after.keys()].filter((id) => id !== leader).map(delta);
  const f = followers.filter((x) => x !== undefined);
  const fCount = f.reduce((n, x) => n + x.persistCount, 0);
  const fSeconds = f.reduce((n, x) => n + x.persistSeconds, 0);
  const div = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
  return {
    shape,
    leader,
    leaderFsyncsPerSec: div(l?.persistCount ?? 0, seconds),
    leaderFsyncMs: div(1000 * (l?.persistSeconds ?? 0), l?.persistCount ?? 0),
    followerFsyncsPerSec: div(fCount, seconds * Math.max(1, f.length)),
    followerFsyncMs: div(1000 * fSeconds, fCount),
    appendsPerSec: div(l?.appendCount ?? 0, seconds),
    appendsPerFsync: div(l?.appendCount ?? 0, l?.persistCount ?? 0),
    kibPerFsync: div((l?.apiBytesIn ?? 0) / 1024, l?.persistCount ?? 0),
    leaderAppendMs: div(1000 * (l?.appendSeconds ?? 0), l?.appendCount ?? 0),
  };
}

function activityTable(rows: NodeActivity[]): Table {
  const n = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  const header = [
    'shape',
    'leader',
    'leader fsyncs/s',
    'leader write+fsync ms',
    'follower fsyncs/s',
    'follower write+fsync ms',
    'appends/s at leader',
    'appends per fsync',
    'KiB per fsync',
    'append ms in leader',
  ];
  return {
    title: 'Inside the nodes during each shape (from their /metrics, warm-up included)',
    header,
    // Every column after the shape and the leader's id is a number.
    numeric: header.slice(2),
    rows: rows.map((r) => [
      r.shape,
      String(r.leader),
      n(r.leaderFsyncsPerSec, 0),
      n(r.leaderFsyncMs, 2),
      n(r.followerFsyncsPerSec, 0),
      n(r.followerFsyncMs, 2),
      n(r.appendsPerSec, 0),
      n(r.appendsPerFsync, 1),
      n(r.kibPerFsync, 1),
      n(r.leaderAppendMs, 2),
    ]),
  };
}
