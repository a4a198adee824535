// NATS JetStream as a peer: three Debian `nats-server` processes clustered on 127.0.0.1,
// each with its own temp store directory, and an R3 file-backed stream driven through
// the `nats` npm client.
//
// Durability. JetStream acknowledges a publish once the stream's Raft group has stored it
// on a quorum, but by default its file store fsyncs only every 2 minutes
// (`sync_interval`, default "2m"): an acknowledged message may be in no disk's stable
// storage yet. The "sync" variant makes every write durable before it returns:
//
//   config  `jetstream { sync_interval: always }`, from nats-server 2.10 on;
//   mount   for older servers (Debian bookworm ships 2.9.10, which refuses the field:
//           "unknown field"), each store directory lives on an ext4 filesystem mounted
//           with `-o sync` (Processes.syncDir): every write(2) of the server is then
//           synchronous, the same durability by another route, at the cost of the
//           filesystem's own journal commits.
//
// The cluster probes the binary for the option and picks the route; the results say which.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AckPolicy,
  type Consumer,
  connect,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  nanos,
  StorageType,
} from 'nats';
import { type Owned, type Processes, sleep } from './procs.js';
import type { LogSystem } from './systems.js';

/**
 * How long a publish waits for its ack (the client's default is 5 s). With every write
 * synchronous, a saturating producer's thousands of pipelined publishes queue for many
 * seconds; they are slow, not lost, and the benchmark measures how slow.
 */
const PUBLISH_TIMEOUT_MS = 120_000;

/** How long an idle ephemeral consumer lives on the server before it removes it. */
const CONSUMER_INACTIVE_MS = 30_000;

/** Size of each node's `-o sync` filesystem (sparse; the streams of one run stay far below it). */
const SYNC_FS_MIB = 2048;

/** How a cluster's file store makes writes durable. */
export type NatsSync = 'default' | 'config' | 'mount';

export interface NatsClusterOptions {
  /** The nats-server binary. */
  binary: string;
  sync: NatsSync;
}

/** Whether this nats-server accepts `jetstream { sync_interval: always }` (checked with -t, a config test). */
export function natsSupportsSyncAlways(procs: Processes, binary: string): boolean {
  const dir = procs.tempDir('nats-probe');
  const conf = join(dir, 'probe.conf');
  writeFileSync(conf, `listen: 127.0.0.1:-1\njetstream { store_dir: "${dir}", sync_interval: always }\n`);
  const r = spawnSync(binary, ['-c', conf, '-t'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && !/unknown field/.test(`${r.stdout}${r.stderr}`);
}

export class NatsCluster {
  readonly ports: { client: number; cluster: number }[] = [];
  private readonly owned: Owned[] = [];

  constructor(
    private readonly procs: Processes,
    readonly o: NatsClusterOptions,
  ) {}

  get servers(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p.client}`);
  }

  async start(): Promise<void> {
    const dir = this.procs.tempDir(`nats-bench${this.o.sync === 'default' ? '' : '-sync'}`);
    for (let i = 0; i < 3; i++)
      this.ports.push({ client: await this.procs.freePort(), cluster: await this.procs.freePort() });
    const routes = this.ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(', ');
    await Promise.all(
      this.ports.map(async (p, i) => {
        const conf = join(dir, `n${i + 1}.conf`);
        const store =
          this.o.sync === 'mount'
            ? join(this.procs.syncDir(`nats-sync-n${i + 1}`, SYNC_FS_MIB), 'store')
            : join(dir, `n${i + 1}`);
        writeFileSync(
          conf,
          [
            `server_name: n${i + 1}`,
            `listen: 127.0.0.1:${p.client}`,
            `jetstream {`,
            `  store_dir: "${store}"`,
            ...(this.o.sync === 'config' ? ['  sync_interval: always'] : []),
            `}`,
            `cluster {`,
            `  name: bench`,
            `  listen: 127.0.0.1:${p.cluster}`,
            `  routes: [${routes}]`,
            `}`,
            '',
          ].join('\n'),
        );
        const logFile = join(dir, `n${i + 1}.log`);
        this.owned.push(
          await this.procs.start(`nats-server n${i + 1}`, this.o.binary, ['-c', conf], {
            logFile,
            ready: async () => {
              const nc = await connect({ servers: `127.0.0.1:${p.client}`, timeout: 500 });
              await nc.close();
              return true;
            },
          }),
        );
      }),
    );
    // JetStream serves once its meta group has a leader: wait for account info to answer.
    const nc = await connect({ servers: this.servers });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          const jsm = await nc.jetstreamManager();
          await jsm.getAccountInfo();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(200);
        }
      }
    } finally {
      await nc.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.owned.map((p) => this.procs.stop(p)));
  }
}

/** One R3 file stream per measurement; records are published to its one subject. */
export class NatsSystem implements LogSystem {
  readonly name: string;
  readonly durability: string;
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private stream = '';
  private n = 0;

  constructor(
    readonly servers: string[],
    sync: NatsSync,
  ) {
    this.name = sync === 'default' ? 'nats' : 'nats (sync always)';
    this.durability = {
      default:
        'acknowledged after the R3 stream stored it on a quorum; fsync every 2 min (default sync_interval)',
      config:
        'acknowledged after the R3 stream stored it on a quorum, each write fsynced (sync_interval: always)',
      mount:
        'acknowledged after the R3 stream stored it on a quorum, each write synchronous: every store directory on an ext4 filesystem mounted `-o sync` (this nats-server has no sync_interval: always)',
    }[sync];
  }

  async open(): Promise<void> {
    this.nc = await connect({ servers: this.servers, maxReconnectAttempts: 10 });
    this.jsm = await this.nc.jetstreamManager();
    this.js = this.nc.jetstream({ timeout: PUBLISH_TIMEOUT_MS });
  }

  async reset(label: string): Promise<void> {
    if (this.stream !== '') await this.jsm.streams.delete(this.stream).catch(() => false);
    this.stream = `${label.replace(/[^A-Za-z0-9_-]/g, '_')}_${++this.n}`;
    await this.jsm.streams.add({
      name: this.stream,
      subjects: [this.stream],
      storage: StorageType.File,
      num_replicas: 3,
    });
    await this.js.publish(this.stream, new Uint8Array(1)); // warm up: the stream's leader is known
  }

  async append(value: Uint8Array): Promise<void> {
    await this.js.publish(this.stream, value);
  }

  async appendMany(values: Uint8Array[]): Promise<void> {
    // The client has no batch publish (atomic batches came with 2.12): it pipelines the
    // publishes on one connection, each awaiting its own ack.
    await Promise.all(values.map((v) => this.js.publish(this.stream, v)));
  }

  /**
   * An ephemeral pull consumer without acks. Not the client's "ordered consumer"
   * (`consumers.get(stream, opts)`): against nats-server 2.9 its `consume()` never
   * resolves. Its `close()` never resolves either, so readers end with `stop()`.
   */
  private async pullConsumer(deliver: DeliverPolicy): Promise<Consumer> {
    const ci = await this.jsm.consumers.add(this.stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: deliver,
      inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
    });
    return this.js.consumers.get(this.stream, ci.name);
  }

  async subscribe(onRecord: (value: Uint8Array) => void): Promise<() => Promise<void>> {
    const consumer = await this.pullConsumer(DeliverPolicy.New);
    const messages = await consumer.consume({ max_messages: 1000 });
    const done = (async () => {
      for await (const m of messages) onRecord(m.data);
    })();
    return async () => {
      messages.stop();
      await done;
    };
  }

  async consume(): Promise<{ records: number; bytes: number }> {
    const records = (await this.jsm.streams.info(this.stream)).state.messages;
    const consumer = await this.pullConsumer(DeliverPolicy.All);
    const messages = await consumer.consume({ max_messages: 10_000 });
    let n = 0;
    let bytes = 0;
    for await (const m of messages) {
      n++;
      bytes += m.data.length;
      if (n >= records) break;
    }
    messages.stop();
    return { records: n, bytes };
  }

  async close(): Promise<void> {
    if (this.stream !== '') await this.jsm.streams.delete(this.stream).catch(() => false);
    await this.nc.close();
  }
}
