// The clients. Each runs one operation at a time (as a Jepsen client process does), with
// a random pause between operations, drawn from the run's mix: plain appends, idempotent
// appends (an unknown outcome is retried with the same sequence until it is known),
// conditional appends (expected offset), and consumer polls that follow a partition from
// any replica or linearizably through the leader. Everything is recorded in the History.

import type { CairnError } from '../../node/src/errors.js';
import type { AppendInput, AppendResult, ReadResult } from '../../node/src/node-api.js';
import type { Op } from './history.js';
import type { WorkloadMix } from './options.js';
import type { RpcResult } from './rpc.js';
import type { World } from './world.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Whether an answer leaves the outcome open (the request reached the node, which may have acted). */
export function outcomeUnknown(r: RpcResult<unknown>): boolean {
  return r.kind === 'timeout' || (r.kind === 'error' && r.reached && isUnknown(r.error));
}

/** A NOT_LEADER after proposing says so in its message: the entry may still commit. */
export function isUnknown(e: CairnError): boolean {
  switch (e.code) {
    case 'TIMEOUT':
    case 'UNAVAILABLE':
    case 'INTERNAL':
      return true;
    case 'NOT_LEADER':
      return e.message.includes('outcome unknown');
    default:
      return false;
  }
}

/** The node an error points at: the leader, or (no leader known) another replica. */
export function hintedNode(e: CairnError): number {
  if (e.code !== 'NOT_LEADER') return 0;
  if ((e.facts.leaderId ?? 0) > 0) return e.facts.leaderId!;
  const m = /^10\.0\.0\.(\d+):/.exec(e.facts.leaderAddress ?? '');
  return m === null ? 0 : Number(m[1]);
}

/** Most redirects one operation follows. */
const MAX_HOPS = 3;

interface Producer {
  id: number;
  nextSeq: number;
  /** A batch whose outcome is unknown: it is sent again, same sequence, until it is known. */
  pending: { seq: number; values: string[]; keys: (string | null)[]; maybeWritten: boolean } | undefined;
}

interface PartitionView {
  stream: string;
  partition: number;
  compacted: boolean;
  /** The client's consumer position. */
  pos: number;
  /** Best guess at the partition's next offset (for conditional appends). */
  nextGuess: number;
  leaderHint: number;
  producer: Producer | undefined;
}

export class Client {
  private ops = 0;
  private readonly parts: PartitionView[] = [];
  private producerInit: Promise<number> | undefined;

  constructor(
    readonly id: number,
    private readonly w: World,
  ) {
    for (const s of w.options.streams) {
      for (let p = 0; p < s.partitions; p++) {
        this.parts.push({
          stream: s.name,
          partition: p,
          compacted: s.compacted,
          pos: 0,
          nextGuess: 0,
          leaderHint: 0,
          producer: undefined,
        });
      }
    }
  }

  /** Runs operations until the fault phase ends; a pending idempotent batch is then settled. */
  async run(): Promise<void> {
    const o = this.w.options.workload;
    while (this.w.phase === 'faults') {
      await this.w.sleep(this.w.rng.exponential(o.thinkMs));
      if (this.w.phase !== 'faults') break;
      const kind = this.pickKind(o.mix);
      const part = this.w.rng.pick(this.parts);
      switch (kind) {
        case 'append':
          await this.append(part, 'append');
          break;
        case 'conditional':
          await this.append(part, 'conditional');
          break;
        case 'idempotent':
          await this.idempotent(part);
          break;
        case 'poll':
          await this.poll(part, false);
          break;
        case 'linearizablePoll':
          await this.poll(part, true);
          break;
      }
    }
  }

  /** Liveness phase: every batch of this client's producers whose outcome is unknown gets settled. */
  async settle(deadlineUs: number): Promise<void> {
    for (const part of this.parts) {
      while (part.producer?.pending !== undefined && this.w.sched.nowUs < deadlineUs) {
        await this.idempotent(part);
        if (part.producer.pending !== undefined) await this.w.sleep(this.w.options.tickMs * 5);
      }
    }
  }

  unsettledProducers(): string[] {
    return this.parts
      .filter((p) => p.producer?.pending !== undefined)
      .map(
        (p) =>
          `client ${this.id} producer ${p.producer!.id} on ${p.stream}/${p.partition} (sequence ${p.producer!.pending!.seq})`,
      );
  }

  private pickKind(mix: WorkloadMix): keyof WorkloadMix {
    const entries = Object.entries(mix) as [keyof WorkloadMix, number][];
    let total = 0;
    for (const [, w] of entries) total += w;
    let x = this.w.rng.next() * total;
    for (const [k, w] of entries) {
      if (x < w) return k;
      x -= w;
    }
    return 'append';
  }

  private newValues(part: PartitionView): { values: string[]; keys: (string | null)[] } {
    const o = this.w.options.workload;
    const n = this.w.rng.int(1, this.w.recordsPerAppend + 1);
    const op = ++this.ops;
    const pad = 'x'.repeat(o.valueBytes);
    const values: string[] = [];
    const keys: (string | null)[] = [];
    for (let i = 0; i < n; i++) {
      values.push(`c${this.id}.${op}.${i}${pad}`);
      keys.push(part.compacted ? `k${this.w.rng.int(0, o.keySpace)}` : null);
    }
    return { values, keys };
  }

  private input(part: PartitionView, values: string[], keys: (string | null)[]): AppendInput {
    return {
      stream: part.stream,
      partition: part.partition,
      records: values.map((v, i) => ({
        key: keys[i] === null ? null : enc.encode(keys[i]!),
        value: enc.encode(v),
      })),
    };
  }

  /** Sends `fn` to the partition's leader as best known, following NOT_LEADER redirects. */
  private async routed<T>(
    part: PartitionView,
    fn: (node: number) => Promise<RpcResult<T>>,
  ): Promise<RpcResult<T>> {
    let node = part.leaderHint || this.w.randomMember();
    let r: RpcResult<T> = { kind: 'timeout', node };
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      r = await fn(node);
      if (r.kind !== 'error' || r.error.code !== 'NOT_LEADER' || isUnknown(r.error)) break;
      const next = hintedNode(r.error);
      part.leaderHint = next;
      if (next === 0 || next === node) break;
      node = next;
    }
    // Keep asking a node that answered; after anything else, ask around again.
    if (r.kind === 'ok') part.leaderHint = r.node;
    else if (r.kind === 'timeout' || r.error.code !== 'NOT_LEADER') part.leaderHint = 0;
    return r;
  }

  private async append(part: PartitionView, kind: 'append' | 'conditional'): Promise<void> {
    const { values, keys } = this.newValues(part);
    const input = this.input(part, values, keys);
    if (kind === 'conditional') input.expectedOffset = part.nextGuess;
    const op = this.w.history.invoke({
      client: this.id,
      kind,
      stream: part.stream,
      partition: part.partition,
      invokeUs: this.w.sched.nowUs,
      values,
      keys,
      ...(kind === 'conditional' ? { expectedOffset: part.nextGuess } : {}),
    });
    const r = await this.routed(part, (node) => {
      op.node = node;
      return this.w.rpc.call(this.id, node, (n) => n.append(input), this.w.options.workload.clientTimeoutMs);
    });
    this.complete(op, r, part);
  }

  private complete(op: Op, r: RpcResult<AppendResult>, part: PartitionView): void {
    op.completeUs = this.w.sched.nowUs;
    op.node = r.node;
    if (r.kind === 'ok') {
      op.outcome = 'ok';
      op.offset = r.value.baseOffset;
      part.nextGuess = Math.max(part.nextGuess, r.value.lastOffset + 1);
    } else if (r.kind === 'timeout') {
      op.outcome = 'unknown';
      op.error = 'client timeout';
    } else {
      const e = r.error;
      op.error = `${e.code}: ${e.message}`;
      if (e.code === 'EXPECTED_OFFSET_MISMATCH' && e.facts.actualOffset !== undefined)
        part.nextGuess = e.facts.actualOffset;
      op.outcome = outcomeUnknown(r) ? 'unknown' : 'fail';
      if (e.code === 'INTERNAL') this.w.internalErrors.push(`${op.kind} on node ${r.node}: ${e.message}`);
    }
    this.w.timeline.op(op);
  }

  private async producerId(): Promise<number> {
    this.producerInit ??= (async () => {
      for (let attempt = 0; attempt < 5 && this.w.phase !== 'done'; attempt++) {
        const node = this.w.randomMember();
        const r = await this.w.rpc.call(
          this.id,
          node,
          (n) => n.initProducer(),
          this.w.options.workload.clientTimeoutMs,
        );
        if (r.kind === 'ok') return r.value.producerId;
        if (r.kind === 'error') {
          const hint = hintedNode(r.error);
          if (hint !== 0) {
            const again = await this.w.rpc.call(
              this.id,
              hint,
              (n) => n.initProducer(),
              this.w.options.workload.clientTimeoutMs,
            );
            if (again.kind === 'ok') return again.value.producerId;
          }
        }
        await this.w.sleep(this.w.options.tickMs * 10);
      }
      return -1;
    })().then((id) => {
      if (id < 0) this.producerInit = undefined; // try again later
      return id;
    });
    return this.producerInit;
  }

  private async idempotent(part: PartitionView): Promise<void> {
    if (part.producer === undefined) {
      const id = await this.producerId();
      if (id < 0) return;
      part.producer ??= { id, nextSeq: 0, pending: undefined };
    }
    const p = part.producer;
    let batch = p.pending;
    if (batch === undefined) {
      const { values, keys } = this.newValues(part);
      batch = { seq: p.nextSeq, values, keys, maybeWritten: false };
      p.pending = batch;
    }
    const input = this.input(part, batch.values, batch.keys);
    input.producer = { producerId: p.id, producerEpoch: 0, baseSequence: batch.seq };
    const op = this.w.history.invoke({
      client: this.id,
      kind: 'idempotent',
      stream: part.stream,
      partition: part.partition,
      invokeUs: this.w.sched.nowUs,
      values: batch.values,
      keys: batch.keys,
      producer: { id: p.id, seq: batch.seq },
    });
    const r = await this.routed(part, (node) => {
      op.node = node;
      return this.w.rpc.call(this.id, node, (n) => n.append(input), this.w.options.workload.clientTimeoutMs);
    });
    if (r.kind === 'error' && r.error.code === 'DUPLICATE_SEQUENCE') {
      // A retry of a batch that was appended: it succeeded, at the original's offsets.
      op.completeUs = this.w.sched.nowUs;
      op.node = r.node;
      op.outcome = 'ok';
      op.error = 'DUPLICATE_SEQUENCE';
      const base = r.error.facts.baseOffset ?? -1;
      if (base >= 0) op.offset = base;
      this.w.timeline.op(op);
    } else {
      this.complete(op, r, part);
    }
    if (op.outcome === 'ok') {
      p.pending = undefined;
      p.nextSeq = batch.seq + batch.values.length;
    } else if (op.outcome === 'unknown') {
      batch.maybeWritten = true;
    } else if (!batch.maybeWritten) {
      // Refused outright, and no earlier attempt may have landed: the sequence is free again.
      p.pending = undefined;
    } else if (
      r.kind === 'error' &&
      (r.error.code === 'OUT_OF_ORDER_SEQUENCE' || r.error.code === 'PRODUCER_FENCED')
    ) {
      // An earlier attempt may have landed, and the producer can no longer find out: its
      // next sequence is unknown, so the client starts over with a new producer.
      part.producer = undefined;
    }
    // Otherwise this attempt did nothing, but an earlier one may have: send it again.
  }

  private async poll(part: PartitionView, linearizable: boolean): Promise<void> {
    const from = part.pos;
    const maxRecords = this.w.rng.int(1, 21);
    const op = this.w.history.invoke({
      client: this.id,
      kind: 'poll',
      stream: part.stream,
      partition: part.partition,
      invokeUs: this.w.sched.nowUs,
      from,
      linearizable,
    });
    const call = (node: number) => {
      op.node = node;
      return this.w.rpc.call(
        this.id,
        node,
        (n) =>
          n.read({
            stream: part.stream,
            partition: part.partition,
            offset: from,
            maxBytes: 0,
            maxRecords,
            maxWaitMs: 0,
            linearizable,
            decode: true,
          }),
        this.w.options.workload.clientTimeoutMs,
      );
    };
    let r: RpcResult<ReadResult>;
    if (linearizable) r = await this.routed(part, call);
    else {
      // Any replica: a random member; one that does not hold the partition points at one that does.
      r = await call(this.w.randomMember());
      if (r.kind === 'error' && r.error.code === 'NOT_LEADER' && hintedNode(r.error) !== 0)
        r = await call(hintedNode(r.error));
    }
    op.completeUs = this.w.sched.nowUs;
    op.node = r.node;
    if (r.kind === 'ok') {
      op.outcome = 'ok';
      op.records = r.value.records.map((rec) => ({
        offset: rec.offset,
        value: rec.value === null ? '' : dec.decode(rec.value),
        key: rec.key === null ? null : dec.decode(rec.key),
      }));
      op.nextOffset = r.value.nextOffset;
      op.highWatermark = r.value.highWatermark;
      // The consumer moves on only from where it asked (another poll may have moved it meanwhile: it has not).
      part.pos = Math.max(part.pos, r.value.nextOffset);
      part.nextGuess = Math.max(part.nextGuess, r.value.highWatermark);
    } else if (r.kind === 'timeout') {
      op.outcome = 'unknown';
      op.error = 'client timeout';
    } else {
      const e = r.error;
      op.outcome = 'fail';
      op.error = `${e.code}: ${e.message}`;
      if (e.code === 'OFFSET_OUT_OF_RANGE' && (e.facts.logStartOffset ?? 0) > from) {
        // Retention deleted what the consumer had not read yet: it seeks to the log start.
        op.seek = true;
        op.nextOffset = e.facts.logStartOffset!;
        part.pos = e.facts.logStartOffset!;
      }
      if (e.code === 'INTERNAL') this.w.internalErrors.push(`poll on node ${r.node}: ${e.message}`);
    }
    this.w.timeline.op(op);
  }
}
