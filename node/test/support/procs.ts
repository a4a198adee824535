// A harness for multi-process tests: real `cairn serve` processes on 127.0.0.1 with free
// ports, a data directory each under a temp directory, and a small gRPC client that
// follows NOT_LEADER redirects. Every process it starts is stopped by PID — in `stopAll()`
// (call it in `finally`) and, should a test crash, when this process exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  AddNodeRequestSchema,
  AdminService,
  AppendRequestSchema,
  type AppendResponse,
  ClusterStatusRequestSchema,
  type ClusterStatusResponse,
  CreateStreamRequestSchema,
  NodeStatusRequestSchema,
  type NodeStatusResponse,
  ReadRequestSchema,
  type ReadResponse,
  RemoveNodeRequestSchema,
  StreamService,
  TransferLeaderRequestSchema,
} from '../../../proto/gen/cairn/v1/cairn_pb.js';
import { fromServiceError } from '../../src/api/grpc-errors.js';
import { callUnary } from '../../src/api/grpc-service.js';
import { CairnError } from '../../src/errors.js';
import { eventually, sleep } from './wait.js';

const CAIRN = fileURLToPath(new URL('../../../../bin/cairn.js', import.meta.url));

/** Every child started by any harness in this process, killed if we exit first. */
const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of everyChild) {
    try {
      if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
    } catch {}
  }
});

/**
 * A port that is free now, from 10000-19999: below the kernel's ephemeral range (so no
 * outgoing connection takes it between our check and the node's bind) and away from the
 * range the CLI test uses.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    // Each test process draws from its own slice of the range (by PID), so that a port a
    // killed node will take back on restart is unlikely to be picked meanwhile by a test
    // running beside this one.
    const port = 10_000 + (process.pid % 20) * 500 + Math.floor(Math.random() * 500);
    // A port handed out is not bound until its node starts: never hand it out twice (two
    // nodes of one cluster on one port). The oldest are forgotten once most of the slice is used.
    if (handedOut.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) {
      handedOut.add(port);
      if (handedOut.size > 400) for (const p of [...handedOut].slice(0, 200)) handedOut.delete(p);
      return port;
    }
  }
}

/** Ports freePort returned, oldest first. */
const handedOut = new Set<number>();

export interface NodePorts {
  api: number;
  peer: number;
  metrics: number;
  /** With the cluster's `kafka` option: the node's Kafka listener. */
  kafka?: number;
}

/** Settings every test node gets: short Raft timings so that failover takes well under a second. */
export const FAST = [
  '--tick-ms',
  '20',
  '--election-ticks',
  '10',
  '--heartbeat-ticks',
  '2',
  '--log-level',
  'info',
];

export class ProcessCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'cairn-test-'));
  readonly ports = new Map<number, NodePorts>();
  readonly procs = new Map<number, ChildProcess>();
  /** Nodes stopped with SIGSTOP: alive, but nothing is routed to them until resumed. */
  readonly paused = new Set<number>();
  private readonly clients = new Map<string, grpc.Client>();

  constructor(
    readonly initial: number[],
    readonly extra: string[] = [],
    /** `kafka`: every node also runs a Kafka listener (`kafka(id)` is its address). */
    readonly options: { kafka?: boolean } = {},
  ) {}

  async allocate(id: number): Promise<NodePorts> {
    let p = this.ports.get(id);
    if (p === undefined) {
      p = { api: await freePort(), peer: await freePort(), metrics: await freePort() };
      if (this.options.kafka) p.kafka = await freePort();
      this.ports.set(id, p);
    }
    return p;
  }

  members(ids: number[]): string {
    return ids
      .map((id) => {
        const p = this.ports.get(id)!;
        return `${id}=127.0.0.1:${p.api}/127.0.0.1:${p.peer}${p.kafka ? `/127.0.0.1:${p.kafka}` : ''}`;
      })
      .join(',');
  }

  /** Node `id`'s Kafka listener (the cluster's `kafka` option). */
  kafka(id: number): string {
    return `127.0.0.1:${this.ports.get(id)!.kafka}`;
  }

  api(id: number): string {
    return `127.0.0.1:${this.ports.get(id)!.api}`;
  }

  dataDir(id: number): string {
    return join(this.dir, `node-${id}`);
  }

  logFile(id: number): string {
    return join(this.dir, `node-${id}.log`);
  }

  /** Starts node `id`; with `join`, it joins the cluster formed by `members` instead of bootstrapping. */
  async start(id: number, opts: { join?: number[]; extra?: string[] } = {}): Promise<ChildProcess> {
    for (const i of [...this.initial, ...(opts.join ?? []), id]) await this.allocate(i);
    const p = this.ports.get(id)!;
    const members = opts.join ? this.members([...opts.join, id]) : this.members(this.initial);
    const args = [
      CAIRN,
      'serve',
      '--node-id',
      String(id),
      '--data-dir',
      this.dataDir(id),
      '--api-address',
      `127.0.0.1:${p.api}`,
      '--peer-address',
      `127.0.0.1:${p.peer}`,
      '--metrics-address',
      `127.0.0.1:${p.metrics}`,
      ...(p.kafka ? ['--kafka-address', `127.0.0.1:${p.kafka}`] : []),
      '--members',
      members,
      ...(opts.join ? ['--join'] : []),
      ...FAST,
      ...this.extra,
      ...(opts.extra ?? []),
    ];
    const { openSync } = await import('node:fs');
    const log = openSync(this.logFile(id), 'a');
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] });
    everyChild.add(child);
    this.procs.set(id, child);
    child.once('exit', () => everyChild.delete(child));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`node ${id} not ready in 20 s; see ${this.logFile(id)}`)),
        20_000,
      );
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(' ready ')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `node ${id} exited (${code ?? signal}) before ready; its log ends:\n${this.logTail(id, 3000)}`,
          ),
        );
      });
    });
    return child;
  }

  /**
   * Starts the initial members. Ports are checked free before the nodes bind them, so a test
   * running beside this one can take one in between: a start that fails with EADDRINUSE
   * starts over on new ports (bounded). Other failures are printed here, because uvu does
   * not report an error thrown by a `before` hook.
   */
  async startAll(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      for (const id of this.initial) await this.allocate(id);
      const results = await Promise.allSettled(this.initial.map((id) => this.start(id)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed === undefined) return;
      const inUse = this.initial.some((id) => this.logTail(id).includes('EADDRINUSE'));
      await Promise.all(this.initial.map((id) => this.kill(id)));
      if (!inUse || attempt === 3) {
        console.error(`cluster start failed: ${String(failed.reason)}`);
        for (const id of this.initial) console.error(`--- node ${id} log ---\n${this.logTail(id)}`);
        throw failed.reason;
      }
      for (const id of this.initial) {
        this.ports.delete(id);
        rmSync(this.dataDir(id), { recursive: true, force: true });
        rmSync(this.logFile(id), { force: true });
      }
    }
  }

  /** The last lines of a node's log (empty if it has none yet). */
  logTail(id: number, bytes = 4000): string {
    try {
      const text = readFileSync(this.logFile(id), 'utf8');
      return text.slice(-bytes);
    } catch {
      return '';
    }
  }

  /** SIGKILL: no shutdown at all (what a crash or power loss looks like to the process). */
  async kill(id: number): Promise<void> {
    const c = this.procs.get(id);
    this.procs.delete(id);
    this.paused.delete(id); // SIGKILL ends a stopped process too
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM, then SIGKILL after 10 s. */
  async stop(id: number): Promise<void> {
    const c = this.procs.get(id);
    this.procs.delete(id);
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  /**
   * SIGSTOP: the process stops at once, its sockets stay open and the kernel keeps taking
   * bytes for it (a leader stalled by a long GC pause or a frozen VM, as its peers see it).
   */
  pause(id: number): void {
    const c = this.procs.get(id);
    if (c === undefined || c.pid === undefined) throw new Error(`node ${id} is not running`);
    process.kill(c.pid, 'SIGSTOP');
    this.paused.add(id);
  }

  /** SIGCONT: a paused node goes on where it stopped, with whatever arrived meanwhile. */
  resume(id: number): void {
    const c = this.procs.get(id);
    if (c === undefined || c.pid === undefined || !this.paused.has(id))
      throw new Error(`node ${id} is not paused`);
    process.kill(c.pid, 'SIGCONT');
    this.paused.delete(id);
  }

  wipe(id: number): void {
    rmSync(this.dataDir(id), { recursive: true, force: true });
  }

  /** Stops every process this harness started, by PID, and removes the temp directory. */
  async stopAll(keepDir = process.env['CAIRN_TEST_KEEP'] === '1'): Promise<void> {
    await Promise.all([...this.procs.keys()].map((id) => this.kill(id)));
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
    else console.error(`kept ${this.dir}`);
  }

  client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (c === undefined) {
      c = new grpc.Client(address, grpc.credentials.createInsecure());
      this.clients.set(address, c);
    }
    return c;
  }

  /** Live node ids (paused ones too). */
  live(): number[] {
    return [...this.procs.keys()];
  }

  /** Live node ids that are not paused: the ones a routed call tries. */
  serving(): number[] {
    return this.live().filter((id) => !this.paused.has(id));
  }

  // --- calls ----------------------------------------------------------------------------

  /** One call to one node, failing with a CairnError. */
  async call<R>(
    address: string,
    fn: (c: grpc.Client, deadline: number) => Promise<R>,
    timeoutMs = 5000,
  ): Promise<R> {
    try {
      return await fn(this.client(address), Date.now() + timeoutMs);
    } catch (err) {
      if (err instanceof CairnError) throw err;
      throw fromServiceError(err as grpc.ServiceError);
    }
  }

  /**
   * Calls until it succeeds: follows NOT_LEADER to the leader's address, and on
   * UNAVAILABLE / TIMEOUT / a dead node tries the live nodes in turn, for up to `ms`.
   * Errors not about routing (e.g. EXPECTED_OFFSET_MISMATCH) are thrown at once.
   */
  async routed<R>(
    fn: (c: grpc.Client, deadline: number) => Promise<R>,
    ms = 15_000,
    first?: string,
    callMs = 3000,
  ): Promise<R> {
    const deadline = Date.now() + ms;
    if (this.serving().length === 0) throw new CairnError('UNAVAILABLE', 'no node is serving');
    let address = first ?? this.api(this.serving()[0]!);
    let k = 0;
    for (;;) {
      try {
        return await this.call(address, fn, callMs);
      } catch (err) {
        const e = err as CairnError;
        if (!['NOT_LEADER', 'UNAVAILABLE', 'TIMEOUT', 'STREAM_NOT_FOUND', 'INTERNAL'].includes(e.code))
          throw e;
        if (Date.now() > deadline) throw e;
        const live = this.serving().map((id) => this.api(id));
        if (live.length === 0) throw e;
        if (e.code === 'NOT_LEADER' && e.facts.leaderAddress && live.includes(e.facts.leaderAddress)) {
          address = e.facts.leaderAddress;
        } else {
          address = live[k++ % live.length]!;
          await sleep(50);
        }
      }
    }
  }

  appendRequest(init: MessageInitShape<typeof AppendRequestSchema>) {
    return create(AppendRequestSchema, init);
  }

  append(init: MessageInitShape<typeof AppendRequestSchema>, first?: string): Promise<AppendResponse> {
    const req = create(AppendRequestSchema, init);
    return this.routed((c, d) => callUnary(c, StreamService, 'append', req, { deadline: d }), 15_000, first);
  }

  read(address: string, init: MessageInitShape<typeof ReadRequestSchema>): Promise<ReadResponse> {
    const req = create(ReadRequestSchema, init);
    return this.call(address, (c, d) => callUnary(c, StreamService, 'read', req, { deadline: d }));
  }

  /** CreateStream waits (up to the node's request timeout) for its partitions' leaders: a long call. */
  createStream(name: string, partitions: number, replicationFactor = 0) {
    const req = create(CreateStreamRequestSchema, { name, config: { partitions, replicationFactor } });
    return this.routed(
      (c, d) => callUnary(c, AdminService, 'createStream', req, { deadline: d }),
      30_000,
      undefined,
      15_000,
    );
  }

  nodeStatus(id: number): Promise<NodeStatusResponse> {
    return this.call(this.api(id), (c, d) =>
      callUnary(c, AdminService, 'nodeStatus', create(NodeStatusRequestSchema), { deadline: d }),
    );
  }

  clusterStatus(id: number): Promise<ClusterStatusResponse> {
    return this.call(this.api(id), (c, d) =>
      callUnary(c, AdminService, 'clusterStatus', create(ClusterStatusRequestSchema), { deadline: d }),
    );
  }

  /** Admin calls that may take long (membership converging): one generous call, routed. */
  addNode(id: number, ms = 60_000) {
    const req = create(AddNodeRequestSchema, {
      id,
      apiAddress: this.api(id),
      peerAddress: `127.0.0.1:${this.ports.get(id)!.peer}`,
    });
    return this.routed(
      (c, d) => callUnary(c, AdminService, 'addNode', req, { deadline: d }),
      ms,
      undefined,
      ms,
    );
  }

  removeNode(id: number, ms = 60_000) {
    const req = create(RemoveNodeRequestSchema, { id });
    return this.routed(
      (c, d) => callUnary(c, AdminService, 'removeNode', req, { deadline: d }),
      ms,
      undefined,
      ms,
    );
  }

  transferLeader(stream: string, partition: number, toNode: number, ms = 15_000) {
    const req = create(TransferLeaderRequestSchema, { stream, partition, toNode });
    return this.routed(
      (c, d) => callUnary(c, AdminService, 'transferLeader', req, { deadline: d }),
      ms,
      undefined,
      5000,
    );
  }
}

export { eventually, sleep };
