// NATS JetStream as a peer: three Debian `nats-server` processes clustered on 127.0.0.1,
// each with its own temp store directory, and an R3 file-backed stream driven through
// the `nats` npm client.
//
// Durability. JetStream acknowledges a publish once the stream's Raft group has stored it
// on a quorum, but by default its file store fsyncs only every 2 minutes
// (`sync_interval`, default "2m"): an acknowledged message may be in no disk's stable
// storage yet. `sync_interval: always` (fsync every write) exists from nats-server 2.10;
// Debian bookworm ships 2.9.10, which refuses the field ("unknown field"). The cluster
// probes for it: with a server that has it, the "sync always" variant runs; without, the
// results say it could not be measured.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  connect,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  StorageType,
} from 'nats';
import { type Owned, type Processes, sleep } from './procs.js';
import type { LogSystem } from './systems.js';

export interface NatsClusterOptions {
  /** The nats-server binary. */
  binary: string;
  /** fsync every write (`sync_interval: always`); needs nats-server ≥ 2.10. */
  syncAlways: boolean;
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
    const dir = this.procs.tempDir(`nats-bench${this.o.syncAlways ? '-sync' : ''}`);
    for (let i = 0; i < 3; i++)
      this.ports.push({ client: await this.procs.freePort(), cluster: await this.procs.freePort() });
    const routes = this.ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(', ');
    await Promise.all(
      this.ports.map(async (p, i) => {
        const conf = join(dir, `n${i + 1}.conf`);
        writeFileSync(
          conf,
          [
            `server_name: n${i + 1}`,
            `listen: 127.0.0.1:${p.client}`,
            `jetstream {`,
            `  store_dir: "${join(dir, `n${i + 1}`)}"`,
            ...(this.o.syncAlways ? ['  sync_interval: always'] : []),
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
    syncAlways: boolean,
  ) {
    this.name = syncAlways ? 'nats (sync always)' : 'nats';
    this.durability = syncAlways
      ? 'acknowledged after the R3 stream stored it on a quorum, each write fsynced (sync_interval: always)'
      : 'acknowledged after the R3 stream stored it on a quorum; fsync every 2 min (default sync_interval)';
  }

  async open(): Promise<void> {
    this.nc = await connect({ servers: this.servers, maxReconnectAttempts: 10 });
    this.jsm = await this.nc.jetstreamManager();
    this.js = this.nc.jetstream();
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

  async subscribe(onRecord: (value: Uint8Array) => void): Promise<() => Promise<void>> {
    const consumer = await this.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.New });
    const messages = await consumer.consume({ max_messages: 1000 });
    const done = (async () => {
      for await (const m of messages) onRecord(m.data);
    })();
    return async () => {
      await messages.close();
      await done;
    };
  }

  async consume(): Promise<{ records: number; bytes: number }> {
    const records = (await this.jsm.streams.info(this.stream)).state.messages;
    const consumer = await this.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: 10_000 });
    let n = 0;
    let bytes = 0;
    for await (const m of messages) {
      n++;
      bytes += m.data.length;
      if (n >= records) break;
    }
    await messages.close();
    return { records: n, bytes };
  }

  async close(): Promise<void> {
    if (this.stream !== '') await this.jsm.streams.delete(this.stream).catch(() => false);
    await this.nc.close();
  }
}
