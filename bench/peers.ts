// `npm run bench -- peers`: the cluster suite's shapes against Cairn and the systems its
// users would otherwise pick, on the same machine, in the same run:
//
//   cairn               3 `cairn serve` processes, acknowledged after fsync on 2 of 3
//   nats                3 `nats-server` (JetStream, R3 file stream), default fsync every 2 min
//   nats (sync always)  the same with `sync_interval: always`, when the server supports it
//   etcd                3 `etcd` members, WAL fsynced on a majority before the ack
//
// Each system is driven by its own npm client (the Cairn client, `nats`, `etcd3`). The
// systems take turns shape by shape (cairn, nats, …, then the next shape), so slow drifts
// of the shared machine's load hit all of them alike; with --rounds=N each shape runs N
// times per system and the best round counts. The peers are installed with apt-get when
// missing (Debian's nats-server and etcd-server), started on free loopback ports with temp
// data directories, and stopped by PID at the end, also on failure or Ctrl-C.
//
// Flags (--name=value): seconds (3), warmup-seconds (1), rounds (2), payloads (100,1024),
// concurrency (1,64), sat-batch (1000), sat-window (8), e2e-concurrency (1), systems
// (cairn,nats,nats-sync,etcd), nats-server (binary, default nats-server), etcd (binary).
import { CairnCluster, CairnSystem } from './lib/cairn.js';
import { DISK_PROBE, type DiskProbe, probeDisk } from './lib/disk.js';
import { EtcdCluster, EtcdSystem } from './lib/etcd.js';
import { Flags } from './lib/flags.js';
import { NatsCluster, type NatsSync, NatsSystem, natsSupportsSyncAlways } from './lib/nats.js';
import { ensureDebianPackages, Processes, versionOf } from './lib/procs.js';
import { bestOf, diskTable, shapeChart, shapeLabel, shapeTable } from './lib/report.js';
import type { Ratio, SuiteResult, Table } from './lib/results.js';
import { closedLoop, consume, endToEnd, type ShapeResult, saturating } from './lib/shapes.js';
import type { LogSystem, SyncCount } from './lib/systems.js';
import { cairnVersions, logShape, npmVersion } from './lib/versions.js';

/** Targets of issue 8 (ratios in the same run). */
export const TARGETS = {
  /** Concurrency 1, 100 B: Cairn p50 / etcd p50 at most this. */
  latencyVsEtcd: 1,
  /** Concurrency 64, 100 B: Cairn records/s / etcd records/s at least this. */
  throughputVsEtcd: 5,
  /** Concurrency 64, 100 B: Cairn records/s / NATS (default mode) records/s at least this. */
  throughputVsNats: 1,
};

export async function run(args: string[]): Promise<SuiteResult> {
  const f = new Flags(args);
  const seconds = f.number('seconds', 3);
  const warmupSeconds = f.number('warmup-seconds', 1);
  const rounds = Math.max(1, f.number('rounds', 2));
  const payloads = f.numbers('payloads', [100, 1024]);
  const concurrencies = f.numbers('concurrency', [1, 64]);
  const satBatch = f.number('sat-batch', 1000);
  const satWindow = f.number('sat-window', 8);
  const e2eConcurrency = f.number('e2e-concurrency', 1);
  const wanted = f.string('systems', 'cairn,nats,nats-sync,etcd').split(',');
  const natsBinary = f.string('nats-server', 'nats-server');
  const etcdBinary = f.string('etcd', 'etcd');

  const needs = [];
  if (wanted.some((s) => s.startsWith('nats')) && natsBinary === 'nats-server')
    needs.push({ command: 'nats-server', pkg: 'nats-server' });
  if (wanted.includes('etcd') && etcdBinary === 'etcd') needs.push({ command: 'etcd', pkg: 'etcd-server' });
  ensureDebianPackages(needs);

  const procs = new Processes();
  const notes: string[] = [];
  const best: ShapeResult[] = [];
  const consumes = new Map<string, ShapeResult[]>();
  const systems: LogSystem[] = [];
  const durability: Record<string, string> = {};
  const versions: Record<string, string> = { ...cairnVersions() };
  const stops: (() => Promise<void>)[] = [];
  /** Durable-write counters of the systems that expose them (cairn: write+fsync rounds; etcd: WAL fsyncs). */
  const syncCounters = new Map<string, () => Promise<SyncCount>>();
  const syncs: SyncActivity[] = [];
  let disk: DiskProbe[] = [];
  try {
    disk = probeDisk(procs, DISK_PROBE);
    if (wanted.includes('cairn')) {
      const cluster = new CairnCluster(procs);
      await cluster.start();
      stops.push(() => cluster.stop());
      systems.push(new CairnSystem(cluster.servers));
      syncCounters.set('cairn', () => cluster.persists());
    }
    if (wanted.includes('nats') || wanted.includes('nats-sync')) {
      versions['nats-server'] = versionOf(natsBinary, ['--version']);
      versions['nats (npm)'] = npmVersion('nats');
      const variants: NatsSync[] = wanted.includes('nats') ? ['default'] : [];
      if (wanted.includes('nats-sync')) {
        if (natsSupportsSyncAlways(procs, natsBinary)) variants.push('config');
        else {
          variants.push('mount');
          notes.push(
            `nats-server ${versions['nats-server']} refuses \`jetstream { sync_interval: always }\` (the option exists from nats-server 2.10), so "nats (sync always)" runs the same servers with each store directory on an ext4 filesystem mounted \`-o sync\`: every write is synchronous, plus the journal commit of that filesystem.`,
          );
        }
      }
      for (const sync of variants) {
        const cluster = new NatsCluster(procs, { binary: natsBinary, sync });
        await cluster.start();
        stops.push(() => cluster.stop());
        const sys = new NatsSystem(cluster.servers, sync);
        await sys.open();
        systems.push(sys);
      }
    }
    if (wanted.includes('etcd')) {
      versions.etcd = versionOf(etcdBinary, ['--version']);
      versions['etcd3 (npm)'] = npmVersion('etcd3');
      const cluster = new EtcdCluster(procs, etcdBinary);
      await cluster.start();
      stops.push(() => cluster.stop());
      systems.push(new EtcdSystem(cluster.endpoints));
      syncCounters.set('etcd', () => cluster.walFsyncs());
    }
    for (const s of systems) durability[s.name] = s.durability;

    /** Runs one shape on every system in turn, `rounds` times; keeps each system's best. */
    const measure = async (label: string, fn: (sys: LogSystem) => Promise<ShapeResult>) => {
      const results = new Map<string, ShapeResult[]>();
      for (let r = 0; r < rounds; r++) {
        for (const sys of systems) {
          // A system that fails a shape is reported as failing it; the others go on.
          try {
            await sys.reset(label);
            const counters = syncCounters.get(sys.name);
            const before = await counters?.();
            const t0 = performance.now();
            const res = await fn(sys);
            const seconds = (performance.now() - t0) / 1000;
            const after = await counters?.();
            logShape(res);
            if (before !== undefined && after !== undefined)
              syncs.push(
                syncActivity(res, after.count - before.count, after.seconds - before.seconds, seconds),
              );
            results.set(sys.name, [...(results.get(sys.name) ?? []), res]);
          } catch (err) {
            const msg = `${sys.name}, ${label}: failed: ${err instanceof Error ? err.message : String(err)}`;
            console.error(msg);
            notes.push(msg);
          }
        }
      }
      for (const list of results.values()) best.push(bestOf(list));
    };
    for (const bytes of payloads) {
      for (const concurrency of concurrencies) {
        await measure(`c${concurrency}-${bytes}`, (sys) =>
          closedLoop(sys, { payloadBytes: bytes, concurrency, seconds, warmupSeconds }),
        );
      }
      await measure(`sat-${bytes}`, async (sys) => {
        const res = await saturating(sys, {
          payloadBytes: bytes,
          batchRecords: satBatch,
          window: satWindow,
          seconds,
          warmupSeconds,
        });
        // Read back right away, while the log is this system's current one.
        const c = await consume(sys, bytes);
        logShape(c);
        const k = `${c.system}\u0000${bytes}`;
        consumes.set(k, [...(consumes.get(k) ?? []), c]);
        return res;
      });
    }
    await measure('e2e', (sys) =>
      endToEnd(sys, { payloadBytes: payloads[0]!, concurrency: e2eConcurrency, seconds, warmupSeconds }),
    );
  } finally {
    for (const s of systems) await s.close().catch(() => undefined);
    for (const stop of stops) await stop().catch(() => undefined);
    await procs.cleanup();
  }

  const shapes = [...best, ...[...consumes.values()].map(bestOf)];
  const order = (s: ShapeResult) =>
    [
      s.payloadBytes,
      ['concurrency 1', 'concurrency 64', 'saturating', 'consume'].indexOf(s.shape) + 1 || 9,
      systems.findIndex((x) => x.name === s.system),
    ] as const;
  shapes.sort((a, b) => {
    const x = order(a);
    const y = order(b);
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });

  const get = (system: string, shape: string, bytes = 100) =>
    shapes.find((s) => s.system === system && s.shape === shape && s.payloadBytes === bytes);
  const ratios: Ratio[] = [];
  const c1 = { cairn: get('cairn', 'concurrency 1'), etcd: get('etcd', 'concurrency 1') };
  if (c1.cairn && c1.etcd)
    ratios.push({
      name: 'concurrency 1, 100 B: cairn p50 / etcd p50',
      value: c1.cairn.latency.p50 / c1.etcd.latency.p50,
      target: TARGETS.latencyVsEtcd,
      higherIsBetter: false,
    });
  const c64 = {
    cairn: get('cairn', 'concurrency 64'),
    etcd: get('etcd', 'concurrency 64'),
    nats: get('nats', 'concurrency 64'),
    natsSync: get('nats (sync always)', 'concurrency 64'),
  };
  if (c64.cairn && c64.etcd)
    ratios.push({
      name: 'concurrency 64, 100 B: cairn records/s / etcd',
      value: c64.cairn.recordsPerSec / c64.etcd.recordsPerSec,
      target: TARGETS.throughputVsEtcd,
    });
  if (c64.cairn && c64.nats)
    ratios.push({
      name: 'concurrency 64, 100 B: cairn records/s / nats (default fsync)',
      value: c64.cairn.recordsPerSec / c64.nats.recordsPerSec,
      target: TARGETS.throughputVsNats,
    });
  if (c64.cairn && c64.natsSync)
    ratios.push({
      name: 'concurrency 64, 100 B: cairn records/s / nats (sync always)',
      value: c64.cairn.recordsPerSec / c64.natsSync.recordsPerSec,
    });
  for (const peer of ['nats', 'etcd']) {
    const a = get('cairn', 'saturating');
    const b = get(peer, 'saturating');
    if (a && b)
      ratios.push({
        name: `saturating, 100 B: cairn records/s / ${peer}`,
        value: a.recordsPerSec / b.recordsPerSec,
      });
  }

  notes.push(
    ...Object.entries(durability).map(([name, d]) => `**${name}**: ${d}.`),
    'The machine has 2 cores for 3 server processes of the system measured, the idle processes of the other systems, the client and whatever else runs (other builds and tests may share it). Absolute numbers are far below what 3 machines would do; the ratios are what this run measures.',
    `Latency is per append call: one record at concurrency 1 and 64; a call of ${satBatch} records when saturating (etcd: transactions of up to 128 puts; NATS: ${satBatch} pipelined publishes, each acknowledged).`,
  );
  const names = systems.map((s) => s.name);
  return {
    rows: [],
    ratios,
    settings: { ...f.used, nodesPerSystem: 3, partitionsOrStreams: 1 },
    versions,
    notes,
    tables: [
      shapeTable('Side by side, 3 nodes each on 127.0.0.1', shapes),
      syncTable(syncs),
      diskTable(disk),
    ],
    svg: shapeChart({
      title: 'Cairn, NATS JetStream and etcd: 3 nodes each on one 2-core machine (127.0.0.1)',
      subtitle: [
        `${new Date().toISOString().slice(0, 10)}, ${seconds} s per measurement, best of ${rounds} round(s); each system through its own npm client.`,
        'cairn and etcd acknowledge after fsync on a majority; nats (default) acknowledges before any fsync (every 2 min);',
        'nats (sync always): every write synchronous. c1/c64: closed loop at concurrency 1/64; saturating: calls of 1000 records, 8 in flight.',
      ],
      shapes,
      systems: names,
      payloadBytes: payloads[0]!,
    }),
    data: { shapes, durability, syncs, disk },
  };
}

/** Durable writes of one system during one shape (all 3 nodes, warm-up included). */
export interface SyncActivity {
  shape: string;
  system: string;
  fsyncsPerSec: number;
  fsyncMs: number;
  /** Records acknowledged per durable write of one node: records/s over (fsyncs/s ÷ 3). */
  recordsPerFsync: number;
}

function syncActivity(res: ShapeResult, count: number, seconds: number, wall: number): SyncActivity {
  const perSec = count / wall;
  return {
    shape: shapeLabel(res),
    system: res.system,
    fsyncsPerSec: perSec,
    fsyncMs: count > 0 ? (1000 * seconds) / count : Number.NaN,
    recordsPerFsync: perSec > 0 ? res.recordsPerSec / (perSec / 3) : Number.NaN,
  };
}

function syncTable(rows: SyncActivity[]): Table {
  const n = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  return {
    title:
      'Durable writes during each shape, every round, all 3 nodes (cairn: write+fsync rounds; etcd: WAL fsyncs; from their /metrics, warm-up included)',
    header: ['shape', 'system', 'fsyncs/s (3 nodes)', 'mean ms', '≈ records per fsync of a node'],
    numeric: ['fsyncs/s (3 nodes)', 'mean ms', '≈ records per fsync of a node'],
    rows: rows.map((r) => [
      r.shape,
      r.system,
      n(r.fsyncsPerSec, 0),
      n(r.fsyncMs, 2),
      n(r.recordsPerFsync, 1),
    ]),
  };
}
