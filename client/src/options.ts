// Every knob and limit of the client, in one place, with its unit in its name.
import type { CompressionName, Core } from '../../core-wasm/src/index.js';

export interface ClientOptions {
  /**
   * API addresses (host:port) of one or more nodes; the client learns the rest of the
   * cluster from whichever answers (AdminService.GetMetadata). A string may list several,
   * separated by commas.
   */
  servers: string | string[];
  /** Deadline of one RPC attempt (a long-poll read adds its wait to it). */
  requestTimeoutMs?: number;
  /** How long one operation (all its attempts, redirects and backoffs) may take in all. */
  retryTimeoutMs?: number;
  /** First pause between attempts; doubles per attempt up to retryBackoffMaxMs, with jitter. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** NOT_LEADER redirects followed at once, without a pause, before backing off. */
  maxImmediateRedirects?: number;

  /** Producer: how long an append may wait for others to join its batch (0 = the current turn only). */
  lingerMs?: number;
  /** Producer: a batch is sealed once its records reach this many bytes. */
  maxBatchBytes?: number;
  /**
   * Producer: a record whose key + value + headers exceed this is refused at once with
   * RECORD_TOO_LARGE (as the server's limits.maxRecordBytes would refuse the whole batch
   * it went in, failing the records batched with it). Default 1 MiB, the server's default.
   */
  maxRecordBytes?: number;
  /** Producer: batches sent to one partition and not yet answered. */
  maxInFlightPerPartition?: number;
  /** Producer: records buffered across all partitions (open, queued, in flight); append waits beyond it. */
  maxBufferedBytes?: number;
  /** Producer: how long a batch may be retried before its append fails (Kafka's delivery.timeout.ms). */
  deliveryTimeoutMs?: number;
  /** Producer: batch compression (core-wasm's LZ4 frames, or gzip via node:zlib). */
  compression?: CompressionName;
  /**
   * Producer: idempotent appends (default true). Each batch carries the producer id,
   * epoch and sequence, so a retry after a lost answer or a leader change is recognised by
   * the partition and never appended twice. When false, an append whose outcome is unknown
   * (deadline passed, connection dropped) fails instead of being retried.
   */
  idempotent?: boolean;

  /**
   * Subscribe: batch bytes per server message (a single larger batch still comes whole).
   * A subscriber that does not pull holds at most 16 messages (the gRPC stream's buffer),
   * so this bounds its memory.
   */
  subscribeMaxBytesPerMessage?: number;

  /** Metadata (nodes, partition leaders) older than this is refreshed before use. */
  metadataMaxAgeMs?: number;
  /** Largest gRPC message the client accepts (a Read or Subscribe answer). */
  maxReceiveMessageBytes?: number;
  /** The byte core to use; by default one is created (createCore()). */
  core?: Core;
}

export type ResolvedOptions = Required<Omit<ClientOptions, 'servers' | 'core'>> & {
  servers: string[];
};

const MiB = 1024 * 1024;

export const defaultClientOptions: Readonly<Omit<ResolvedOptions, 'servers'>> = Object.freeze({
  requestTimeoutMs: 15_000,
  retryTimeoutMs: 30_000,
  retryBackoffMs: 25,
  retryBackoffMaxMs: 1_000,
  maxImmediateRedirects: 3,
  lingerMs: 0,
  maxBatchBytes: 1 * MiB,
  maxRecordBytes: 1 * MiB,
  // Kafka's bound for idempotent producers: the partition remembers the last 5 batches of
  // each producer, so any retry of an in-flight batch is still recognised as a duplicate.
  maxInFlightPerPartition: 5,
  maxBufferedBytes: 64 * MiB,
  deliveryTimeoutMs: 60_000,
  compression: 'none' as CompressionName,
  idempotent: true,
  subscribeMaxBytesPerMessage: 1 * MiB,
  metadataMaxAgeMs: 30_000,
  maxReceiveMessageBytes: 64 * MiB,
});

export function resolveOptions(o: ClientOptions): ResolvedOptions {
  const servers = (Array.isArray(o.servers) ? o.servers : [o.servers])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (servers.length === 0) throw new TypeError('CairnClient needs at least one server address');
  for (const s of servers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(s) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(s)) {
      throw new TypeError(`server address '${s}' is not host:port`);
    }
  }
  const r: ResolvedOptions = { ...defaultClientOptions, servers };
  for (const k of Object.keys(defaultClientOptions) as (keyof typeof defaultClientOptions)[]) {
    const v = o[k];
    if (v !== undefined) (r as Record<string, unknown>)[k] = v;
  }
  for (const k of [
    'requestTimeoutMs',
    'retryTimeoutMs',
    'retryBackoffMs',
    'retryBackoffMaxMs',
    'maxBatchBytes',
    'maxRecordBytes',
    'maxInFlightPerPartition',
    'maxBufferedBytes',
    'deliveryTimeoutMs',
    'metadataMaxAgeMs',
    'maxReceiveMessageBytes',
    'subscribeMaxBytesPerMessage',
  ] as const) {
    if (!Number.isFinite(r[k]) || r[k] <= 0) throw new TypeError(`${k} must be a positive number`);
  }
  if (!Number.isFinite(r.lingerMs) || r.lingerMs < 0) throw new TypeError('lingerMs must be ≥ 0');
  if (!Number.isInteger(r.maxImmediateRedirects) || r.maxImmediateRedirects < 0)
    throw new TypeError('maxImmediateRedirects must be an integer ≥ 0');
  if (!Number.isInteger(r.maxInFlightPerPartition))
    throw new TypeError('maxInFlightPerPartition must be an integer');
  if (!['none', 'gzip', 'lz4'].includes(r.compression))
    throw new TypeError(`compression must be none, gzip or lz4, not '${r.compression}'`);
  return r;
}

/** The pause before attempt `attempt` (1 = the first retry): exponential, capped, jittered. */
export function backoffMs(o: ResolvedOptions, attempt: number): number {
  const base = Math.min(o.retryBackoffMaxMs, o.retryBackoffMs * 2 ** Math.min(attempt - 1, 20));
  // Half fixed, half random: spreads clients that failed together without ever pausing 0.
  return base / 2 + Math.random() * (base / 2);
}
