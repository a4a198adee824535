// etcd as a peer: three Debian `etcd` members on 127.0.0.1 with their own temp data
// directories, driven through the `etcd3` npm client. etcd acknowledges a put once it is
// committed by its Raft group, and every member fsyncs its WAL before acknowledging
// entries (one fsync per batch of entries): the same guarantee as Cairn's.
//
// A log in etcd: one key per record under a prefix, `<prefix>/<16-digit sequence>`, so a
// range read in key order is the log in order. Many records in one call go as one
// transaction of puts (etcd caps a transaction at --max-txn-ops, 128 by default).
import { join } from 'node:path';
import { Etcd3, type IRequestOp } from 'etcd3';
import type { Owned, Processes } from './procs.js';
import type { LogSystem } from './systems.js';
import { promValue, type SyncCount } from './systems.js';

/**
 * Keys per range request when reading a log back: 2,000 records of 1 KiB stay well under
 * the etcd3 client's 4 MiB gRPC receive limit (10,000 did not).
 */
const RANGE_LIMIT_KEYS = 2_000;

/** etcd's default --max-txn-ops. */
export const ETCD_MAX_TXN_OPS = 128;

export class EtcdCluster {
  readonly ports: { client: number; peer: number }[] = [];
  private readonly owned: Owned[] = [];

  constructor(
    private readonly procs: Processes,
    readonly binary = 'etcd',
  ) {}

  get endpoints(): string[] {
    return this.ports.map((p) => `http://127.0.0.1:${p.client}`);
  }

  async start(): Promise<void> {
    const dir = this.procs.tempDir('etcd-bench');
    for (let i = 0; i < 3; i++)
      this.ports.push({ client: await this.procs.freePort(), peer: await this.procs.freePort() });
    const initial = this.ports.map((p, i) => `e${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
    await Promise.all(
      this.ports.map(async (p, i) => {
        const name = `e${i + 1}`;
        const args = [
          '--name',
          name,
          '--data-dir',
          join(dir, name),
          '--listen-client-urls',
          `http://127.0.0.1:${p.client}`,
          '--advertise-client-urls',
          `http://127.0.0.1:${p.client}`,
          '--listen-peer-urls',
          `http://127.0.0.1:${p.peer}`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${p.peer}`,
          '--initial-cluster',
          initial,
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          `bench-${process.pid}`,
          '--log-level',
          'warn',
          '--logger',
          'zap',
        ];
        this.owned.push(
          await this.procs.start(`etcd ${name}`, this.binary, args, {
            logFile: join(dir, `${name}.log`),
            // Members answer only once the cluster has a leader; starting them in parallel lets them find each other.
            ready: async () => {
              const res = await fetch(`http://127.0.0.1:${p.client}/health`, {
                signal: AbortSignal.timeout(1000),
              });
              return res.ok && ((await res.json()) as { health?: string }).health === 'true';
            },
          }),
        );
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.owned.map((p) => this.procs.stop(p)));
  }

  /** WAL fsyncs of all members so far, and the seconds they took (etcd's own /metrics). */
  async walFsyncs(): Promise<SyncCount> {
    const all = await Promise.all(
      this.endpoints.map(async (e) => {
        const text = await (await fetch(`${e}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
        return {
          count: promValue(text, 'etcd_disk_wal_fsync_duration_seconds_count'),
          seconds: promValue(text, 'etcd_disk_wal_fsync_duration_seconds_sum'),
        };
      }),
    );
    return { count: all.reduce((n, x) => n + x.count, 0), seconds: all.reduce((n, x) => n + x.seconds, 0) };
  }
}

const key = (prefix: string, seq: number) => Buffer.from(`${prefix}/${String(seq).padStart(16, '0')}`);

export class EtcdSystem implements LogSystem {
  readonly name = 'etcd';
  readonly durability = 'acknowledged after the Raft entry is committed: WAL fsynced on a majority';
  private readonly client: Etcd3;
  private prefix = '';
  private seq = 0;
  private n = 0;

  constructor(readonly endpoints: string[]) {
    this.client = new Etcd3({ hosts: endpoints });
  }

  async reset(label: string): Promise<void> {
    if (this.prefix !== '') await this.client.delete().prefix(`${this.prefix}/`);
    this.prefix = `${label.replace(/[^A-Za-z0-9_-]/g, '_')}-${++this.n}`;
    this.seq = 0;
    await this.append(new Uint8Array(1)); // warm up: connections, leader
  }

  async append(value: Uint8Array): Promise<void> {
    await this.client.kv.put({ key: key(this.prefix, this.seq++), value: asBuffer(value) });
  }

  async appendMany(values: Uint8Array[]): Promise<void> {
    const txns: Promise<unknown>[] = [];
    for (let i = 0; i < values.length; i += ETCD_MAX_TXN_OPS) {
      const success: IRequestOp[] = values
        .slice(i, i + ETCD_MAX_TXN_OPS)
        .map((v) => ({ request_put: { key: key(this.prefix, this.seq++), value: asBuffer(v) } }));
      txns.push(this.client.kv.txn({ success }));
    }
    await Promise.all(txns);
  }

  async subscribe(onRecord: (value: Uint8Array) => void): Promise<() => Promise<void>> {
    const watcher = await this.client.watch().prefix(`${this.prefix}/`).create();
    watcher.on('put', (kv) => onRecord(kv.value));
    return async () => {
      await watcher.cancel();
    };
  }

  async consume(): Promise<{ records: number; bytes: number }> {
    let n = 0;
    let bytes = 0;
    let from = key(this.prefix, 0);
    const end = Buffer.from(`${this.prefix}0`); // '/' + 1: every key under the prefix
    for (;;) {
      const res = await this.client.kv.range({ key: from, range_end: end, limit: RANGE_LIMIT_KEYS });
      for (const kv of res.kvs) {
        n++;
        bytes += kv.value.length;
      }
      if (!res.more || res.kvs.length === 0) break;
      from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return { records: n, bytes };
  }

  async close(): Promise<void> {
    if (this.prefix !== '') await this.client.delete().prefix(`${this.prefix}/`);
    this.client.close();
  }
}

function asBuffer(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
