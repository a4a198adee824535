// What the client knows of the cluster and how it picks a node for a call: the nodes'
// addresses and the partition leaders (AdminService.GetMetadata from any node, cached,
// corrected by NOT_LEADER answers), and the retry loop every routed call runs: follow
// redirects at once, back off on anything transient, stop at the operation's deadline.
import { create } from '@bufbuild/protobuf';
import { AdminService, GetMetadataRequestSchema } from '../../proto/gen/cairn/v1/cairn_pb.js';
import { clusterMetadata } from './convert.js';
import { CairnClientError } from './errors.js';
import { backoffMs, type ResolvedOptions } from './options.js';
import type { Channels } from './rpc.js';
import type { ClusterMetadata, StreamInfo } from './types.js';

/** Who should serve a call. */
export type Target =
  /** A partition's leader ('leader') or any of its replicas ('any'). */
  | { kind: 'partition'; stream: string; partition: number; replica: 'leader' | 'any' }
  /** The metadata group's leader (stream and membership changes). */
  | { kind: 'metadata' }
  /** Any node. */
  | { kind: 'any' };

export interface CallPolicy {
  /**
   * Whether an attempt whose outcome is unknown (deadline passed, connection dropped) may
   * be repeated: true for reads and for calls the server recognises when repeated.
   */
  retryUnknown: boolean;
  /** Absolute time (Date.now()) after which no new attempt starts. */
  deadline: number;
  signal?: AbortSignal | undefined;
  /** Per-attempt deadline, when the call needs more than requestTimeoutMs (long polls). */
  attemptTimeoutMs?: number;
}

/** What to do after a failed attempt. */
export type Verdict = 'redirect' | 'retry' | 'fail';

/** Connection errors that prove the request never reached the server. */
const NEVER_SENT = /ECONNREFUSED|No connection established|ENOTFOUND|EHOSTUNREACH/;

/**
 * Whether a failed attempt may be repeated. NOT_LEADER and a server's UNAVAILABLE are
 * refusals made before anything was done (the server replaces an entry it proposed only
 * by another leader's, and says NOT_LEADER then too), so they are always safe to repeat;
 * TIMEOUT and a dropped connection leave the outcome unknown.
 */
export function verdictOf(err: CairnClientError, retryUnknown: boolean): Verdict {
  switch (err.code) {
    case 'NOT_LEADER':
      return 'redirect';
    case 'UNAVAILABLE':
      if (err.fromServer || retryUnknown || NEVER_SENT.test(err.message)) return 'retry';
      return 'fail';
    case 'TIMEOUT':
      return retryUnknown ? 'retry' : 'fail';
    default:
      return 'fail';
  }
}

/**
 * A NOT_LEADER that named no leader, still so at the deadline, means no leader could be
 * elected (no quorum): the proto's UNAVAILABLE, which is what the caller should see.
 */
export function noLeaderAsUnavailable(err: CairnClientError): CairnClientError {
  if (err.code !== 'NOT_LEADER' || err.facts.leaderAddress !== '') return err;
  return new CairnClientError(
    'UNAVAILABLE',
    `no leader (no quorum?): ${err.message}`,
    err.facts,
    err.grpcCode,
    err.fromServer,
  );
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

const partitionKey = (stream: string, partition: number) => `${stream}\u0000${partition}`;

export class Router {
  private meta: ClusterMetadata | undefined;
  private metaAt = 0;
  private refreshing: Promise<ClusterMetadata> | undefined;
  /** Partition → its leader's API address, from metadata and NOT_LEADER answers. */
  private readonly leaders = new Map<string, string>();
  private metadataLeader: string | undefined;
  /** Addresses that failed recently → when; picked last for a short while. */
  private readonly failedAt = new Map<string, number>();
  private rr = 0;

  constructor(
    private readonly o: ResolvedOptions,
    private readonly channels: Channels,
  ) {}

  /** Every API address known: the configured ones and every member's. */
  addresses(): string[] {
    const all = new Set(this.o.servers);
    for (const n of this.meta?.nodes ?? []) if (n.apiAddress !== '') all.add(n.apiAddress);
    return [...all];
  }

  /** Addresses in the order to try them: round-robin, recently failed ones last. */
  private ordered(candidates: string[]): string[] {
    const start = this.rr++ % Math.max(1, candidates.length);
    const rotated = [...candidates.slice(start), ...candidates.slice(0, start)];
    const now = Date.now();
    const bad = (a: string) => now - (this.failedAt.get(a) ?? -Infinity) < 2 * this.o.retryBackoffMaxMs;
    return [...rotated.filter((a) => !bad(a)), ...rotated.filter(bad)];
  }

  noteFailure(address: string): void {
    this.failedAt.set(address, Date.now());
    for (const [k, a] of this.leaders) if (a === address) this.leaders.delete(k);
    if (this.metadataLeader === address) this.metadataLeader = undefined;
  }

  // --- metadata ---------------------------------------------------------------------------

  /** Fresh metadata from the first node that answers (one request at a time per client). */
  refresh(): Promise<ClusterMetadata> {
    if (this.refreshing === undefined) {
      this.refreshing = this.fetchMetadata().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  private async fetchMetadata(): Promise<ClusterMetadata> {
    let last: CairnClientError | undefined;
    for (const address of this.ordered(this.addresses())) {
      try {
        const res = await this.channels.unary(
          address,
          AdminService,
          'getMetadata',
          create(GetMetadataRequestSchema),
          Math.min(this.o.requestTimeoutMs, 5_000),
        );
        this.install(clusterMetadata(res));
        return this.meta!;
      } catch (err) {
        last = err as CairnClientError;
        this.noteFailure(address);
      }
    }
    throw new CairnClientError(
      'UNAVAILABLE',
      `no node answered for cluster metadata (tried ${this.addresses().join(', ')}): ${last?.message}`,
    );
  }

  private install(m: ClusterMetadata): void {
    this.meta = m;
    this.metaAt = Date.now();
    const addressOf = new Map(m.nodes.map((n) => [n.id, n.apiAddress]));
    this.metadataLeader = addressOf.get(m.metadataLeader) || undefined;
    for (const s of m.streams) {
      for (const p of s.partitions) {
        const a = addressOf.get(p.leader);
        if (a) this.leaders.set(partitionKey(s.name, p.partition), a);
      }
    }
  }

  /** A refresh in the background, at most one per retryBackoffMaxMs. */
  private refreshSoon(): void {
    if (this.refreshing !== undefined || Date.now() - this.metaAt < this.o.retryBackoffMaxMs) return;
    void this.refresh().catch(() => {});
  }

  /** Cached metadata, refreshed when older than metadataMaxAgeMs. */
  async metadata(): Promise<ClusterMetadata> {
    if (this.meta === undefined || Date.now() - this.metaAt > this.o.metadataMaxAgeMs) return this.refresh();
    return this.meta;
  }

  /** The stream as the metadata knows it; refreshes once when it is missing; undefined if still missing. */
  async stream(name: string): Promise<StreamInfo | undefined> {
    let s = (await this.metadata()).streams.find((x) => x.name === name);
    if (s === undefined) s = (await this.refresh()).streams.find((x) => x.name === name);
    return s;
  }

  // --- routing ----------------------------------------------------------------------------

  /** The address for the next attempt at `target`. */
  pick(target: Target): string {
    const any = () => this.ordered(this.addresses())[0]!;
    switch (target.kind) {
      case 'any':
        return any();
      case 'metadata':
        return this.metadataLeader ?? any();
      case 'partition': {
        const leader = this.leaders.get(partitionKey(target.stream, target.partition));
        const replicas = this.replicaAddresses(target.stream, target.partition);
        if (target.replica === 'leader' && leader !== undefined) return leader;
        // The leader is not known (a new stream, an election): ask again soon, meanwhile
        // try a replica (any replica serves reads; others redirect).
        if (target.replica === 'leader') this.refreshSoon();
        if (replicas.length > 0) return this.ordered(replicas)[0]!;
        return leader ?? any();
      }
    }
  }

  private replicaAddresses(stream: string, partition: number): string[] {
    const p = this.meta?.streams.find((s) => s.name === stream)?.partitions[partition];
    if (p === undefined) return [];
    const addressOf = new Map(this.meta!.nodes.map((n) => [n.id, n.apiAddress]));
    return p.replicas.map((id) => addressOf.get(id) ?? '').filter((a) => a !== '');
  }

  /** Records the node that just served a leader-only request for a partition. */
  noteLeaderAddress(stream: string, partition: number, address: string): void {
    this.leaders.set(partitionKey(stream, partition), address);
  }

  /** Records what a NOT_LEADER answer from a partition says about its leader. */
  noteLeader(stream: string, partition: number, err: CairnClientError): void {
    this.redirect({ kind: 'partition', stream, partition, replica: 'leader' }, err);
    if (err.facts.leaderAddress === '') void this.refresh().catch(() => {});
  }

  /** Records what a NOT_LEADER answer says about `target`'s leader. */
  private redirect(target: Target, err: CairnClientError): boolean {
    const to = err.facts.leaderAddress;
    if (target.kind === 'partition') {
      const k = partitionKey(target.stream, target.partition);
      if (to !== '') this.leaders.set(k, to);
      else this.leaders.delete(k);
    } else if (target.kind === 'metadata') {
      this.metadataLeader = to === '' ? undefined : to;
    }
    return to !== '';
  }

  /**
   * Runs `attempt` against the node `target` names until it succeeds, fails for good, or
   * the policy's deadline passes (then the last error is thrown).
   */
  async call<T>(
    target: Target,
    policy: CallPolicy,
    attempt: (address: string, timeoutMs: number) => Promise<T>,
  ): Promise<T> {
    let retries = 0;
    let redirects = 0;
    const started = Date.now();
    /** The last answer a server gave: more telling at the deadline than a refused connection. */
    let lastAnswer: CairnClientError | undefined;
    // Partition leaders come from the metadata; without it every first attempt is a guess.
    if (
      (this.meta === undefined && target.kind !== 'any') ||
      (target.kind === 'partition' &&
        target.replica === 'leader' &&
        !this.leaders.has(partitionKey(target.stream, target.partition)) &&
        Date.now() - this.metaAt >= this.o.retryBackoffMs)
    )
      await this.refresh().catch(() => {});
    for (;;) {
      if (policy.signal?.aborted) throw new CairnClientError('UNAVAILABLE', 'the call was aborted');
      const address = this.pick(target);
      const timeoutMs = Math.max(1, policy.attemptTimeoutMs ?? this.o.requestTimeoutMs);
      try {
        return await attempt(address, timeoutMs);
      } catch (e) {
        const err = e instanceof CairnClientError ? e : new CairnClientError('INTERNAL', String(e));
        if (policy.signal?.aborted) throw new CairnClientError('UNAVAILABLE', 'the call was aborted');
        const verdict = verdictOf(err, policy.retryUnknown);
        if (verdict === 'fail') throw err;
        if (err.fromServer) lastAnswer = err;
        if (verdict === 'redirect') {
          const known = this.redirect(target, err);
          if (known && redirects < this.o.maxImmediateRedirects && Date.now() < policy.deadline) {
            redirects++;
            continue;
          }
          // No leader known (an election is running) or redirects go round: ask again later.
          void this.refresh().catch(() => {});
        } else {
          this.noteFailure(address);
        }
        redirects = 0;
        retries++;
        const pause = backoffMs(this.o, retries);
        if (Date.now() + pause > policy.deadline) {
          const best = noLeaderAsUnavailable(err.fromServer ? err : (lastAnswer ?? err));
          throw new CairnClientError(
            best.code,
            `${best.message} (gave up after ${retries} retries in ${Date.now() - started} ms)`,
            best.facts,
            best.grpcCode,
            best.fromServer,
          );
        }
        await sleep(pause, policy.signal);
      }
    }
  }
}
