// A 3-node Cairn cluster of real `cairn serve` processes on 127.0.0.1 (fsync on: the
// nodes' storage always syncs before acknowledging), and the LogSystem adapter that
// drives it through the client library.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CairnClient, type ClientOptions } from '../../client/src/index.js';
import type { Owned, Processes } from './procs.js';
import { type LogSystem, promValue, type SyncCount } from './systems.js';

const EMPTY = new Uint8Array(0);
const CAIRN = fileURLToPath(new URL('../../../bin/cairn.js', import.meta.url));

interface NodeSlot {
  id: number;
  api: number;
  peer: number;
  /** Prometheus /metrics port: write+fsync (persist) and append counters for the benchmark's diagnostics. */
  metrics: number;
  dataDir: string;
  logFile: string;
  proc: Owned | undefined;
}

export class CairnCluster {
  readonly nodes: NodeSlot[] = [];
  /** PID → node id of every node process started (a restarted node has several). */
  readonly nodeOfPid = new Map<number, number>();
  /** Extra `cairn serve` flags every node gets. */
  readonly serveFlags: string[];
  /** Node arguments (e.g. --cpu-prof) for every node process. */
  readonly nodeArgs: string[];
  private dir = '';

  constructor(
    private readonly procs: Processes,
    o: { size?: number; serveFlags?: string[]; nodeArgs?: string[] } = {},
  ) {
    this.serveFlags = o.serveFlags ?? [];
    this.nodeArgs = o.nodeArgs ?? [];
    for (let id = 1; id <= (o.size ?? 3); id++)
      this.nodes.push({ id, api: 0, peer: 0, metrics: 0, dataDir: '', logFile: '', proc: undefined });
  }

  get servers(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.api}`);
  }

  apiOf(id: number): string {
    return `127.0.0.1:${this.slot(id).api}`;
  }

  private slot(id: number): NodeSlot {
    const s = this.nodes.find((n) => n.id === id);
    if (s === undefined) throw new Error(`no node ${id}`);
    return s;
  }

  private members(ids: number[]): string {
    return ids.map((id) => `${id}=127.0.0.1:${this.slot(id).api}/127.0.0.1:${this.slot(id).peer}`).join(',');
  }

  async start(): Promise<void> {
    this.dir = this.procs.tempDir('cairn-bench');
    for (const n of this.nodes) {
      n.api = await this.procs.freePort();
      n.peer = await this.procs.freePort();
      n.metrics = await this.procs.freePort();
      n.dataDir = join(this.dir, `node-${n.id}`);
      n.logFile = join(this.dir, `node-${n.id}.log`);
    }
    await Promise.all(this.nodes.map((n) => this.startNode(n.id)));
  }

  /** Starts node `id` on its data directory; with `join`, as a node joining the others. Returns ms to ready. */
  async startNode(id: number, o: { join?: boolean } = {}): Promise<number> {
    const n = this.slot(id);
    const others = this.nodes.map((x) => x.id).filter((x) => x !== id);
    const args = [
      ...this.nodeArgs,
      CAIRN,
      'serve',
      '--node-id',
      String(id),
      '--data-dir',
      n.dataDir,
      '--api-address',
      `127.0.0.1:${n.api}`,
      '--peer-address',
      `127.0.0.1:${n.peer}`,
      '--metrics-address',
      `127.0.0.1:${n.metrics}`,
      '--members',
      o.join ? this.members([...others, id]) : this.members(this.nodes.map((x) => x.id)),
      ...(o.join ? ['--join'] : []),
      '--log-level',
      process.env['CAIRN_BENCH_LOG_LEVEL'] ?? 'warn',
      ...this.serveFlags,
    ];
    // The ready line is printed once every group is open (storage recovered) and the API listens.
    const before = logLength(n.logFile);
    const t0 = performance.now();
    n.proc = await this.procs.start(`cairn node ${id}`, process.execPath, args, {
      logFile: n.logFile,
      cwd: this.dir,
      ready: async () => readFileSync(n.logFile, 'utf8').slice(before).includes(` node ${id} ready `),
    });
    this.nodeOfPid.set(n.proc.pid, id);
    return performance.now() - t0;
  }

  async killNode(id: number): Promise<void> {
    const n = this.slot(id);
    if (n.proc !== undefined) await this.procs.kill(n.proc);
    n.proc = undefined;
  }

  async stopNode(id: number): Promise<void> {
    const n = this.slot(id);
    if (n.proc !== undefined) await this.procs.stop(n.proc);
    n.proc = undefined;
  }

  /** SIGTERM to every node (graceful: profiles are written on exit). */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n.id)));
  }

  /**
   * Each running node's counters from its /metrics: write+fsync rounds (one per group
   * commit, every group of the node) and append requests, with their summed seconds, and
   * record bytes appended through its API. Differences of two scrapes describe what the
   * nodes did in between.
   */
  async scrape(): Promise<Map<number, NodeCounters>> {
    const out = new Map<number, NodeCounters>();
    await Promise.all(
      this.nodes
        .filter((n) => n.proc !== undefined)
        .map(async (n) => {
          const res = await fetch(`http://127.0.0.1:${n.metrics}/metrics`, {
            signal: AbortSignal.timeout(5000),
          });
          out.set(n.id, parseCounters(await res.text()));
        }),
    );
    return out;
  }

  /** Write+fsync rounds of all running nodes so far, and their seconds. */
  async persists(): Promise<SyncCount> {
    const all = [...(await this.scrape()).values()];
    return {
      count: all.reduce((n, x) => n + x.persistCount, 0),
      seconds: all.reduce((n, x) => n + x.persistSeconds, 0),
    };
  }

  dataDir(id: number): string {
    return this.slot(id).dataDir;
  }

  pid(id: number): number | undefined {
    return this.slot(id).proc?.pid;
  }
}

export interface NodeCounters {
  persistCount: number;
  persistSeconds: number;
  appendCount: number;
  appendSeconds: number;
  apiBytesIn: number;
}

/** The counters of NodeCounters from Prometheus text (unlabelled series; absent = 0). */
export function parseCounters(text: string): NodeCounters {
  return {
    persistCount: promValue(text, 'cairn_persist_seconds_count'),
    persistSeconds: promValue(text, 'cairn_persist_seconds_sum'),
    appendCount: promValue(text, 'cairn_append_seconds_count'),
    appendSeconds: promValue(text, 'cairn_append_seconds_sum'),
    apiBytesIn: promValue(text, 'cairn_api_bytes_in_total'),
  };
}

function logLength(path: string): number {
  try {
    return readFileSync(path, 'utf8').length;
  } catch {
    return 0;
  }
}

/** Cairn through its client library: one stream of one partition per measurement. */
export class CairnSystem implements LogSystem {
  readonly name = 'cairn';
  readonly durability = 'acknowledged after fsync on a majority (2 of 3), every append';
  private client: CairnClient;
  private stream = '';
  private n = 0;

  constructor(
    readonly servers: string[],
    readonly clientOptions: Partial<ClientOptions> = {},
  ) {
    this.client = new CairnClient({ servers, ...clientOptions });
  }

  get currentStream(): string {
    return this.stream;
  }

  get api(): CairnClient {
    return this.client;
  }

  async reset(label: string): Promise<void> {
    this.stream = `${label.replace(/[^A-Za-z0-9._-]/g, '-')}-${++this.n}`;
    await this.client.createStream(this.stream, { partitions: 1 });
    // Warm up: metadata, the producer id, the channel to the leader.
    await this.client.append(this.stream, { value: new Uint8Array(1) }, { partition: 0 });
  }

  async append(value: Uint8Array): Promise<void> {
    await this.client.append(this.stream, { value }, { partition: 0 });
  }

  async appendMany(values: Uint8Array[]): Promise<void> {
    await this.client.append(
      this.stream,
      values.map((value) => ({ value })),
      { partition: 0 },
    );
  }

  async subscribe(onRecord: (value: Uint8Array) => void): Promise<() => Promise<void>> {
    const ac = new AbortController();
    const { highWatermark } = await this.client.offsets(this.stream, 0);
    const it = this.client.subscribe(this.stream, { partition: 0, from: highWatermark, signal: ac.signal });
    const done = (async () => {
      for await (const r of it) onRecord(r.value ?? EMPTY);
    })().catch((err: unknown) => {
      if (!ac.signal.aborted) throw err;
    });
    return async () => {
      ac.abort();
      await done;
    };
  }

  async consume(): Promise<{ records: number; bytes: number }> {
    const { highWatermark } = await this.client.offsets(this.stream, 0);
    let offset = 0;
    let n = 0;
    let bytes = 0;
    while (offset < highWatermark) {
      const r = await this.client.read(this.stream, 0, { offset, maxBytes: 4 * 1024 * 1024 });
      for (const rec of r.records) {
        n++;
        bytes += rec.value?.length ?? 0;
      }
      offset = r.nextOffset;
    }
    return { records: n, bytes };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
