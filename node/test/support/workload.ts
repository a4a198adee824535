// A producer workload for multi-process tests and the checks of what it wrote: every
// acknowledged append present exactly once, at the offset it was acknowledged with, and
// every replica holding byte-identical data.
import { create } from '@bufbuild/protobuf';
import * as assert from 'uvu/assert';
import { createCore } from '../../../core-wasm/src/index.js';
import { InitProducerRequestSchema, StreamService } from '../../../proto/gen/cairn/v1/cairn_pb.js';
import { callUnary } from '../../src/api/grpc-service.js';
import { CairnError } from '../../src/errors.js';
import { eventually, type ProcessCluster } from './procs.js';

const core = createCore();
const enc = new TextEncoder();
const dec = new TextDecoder();

/** An idempotent producer of one-record appends `${tag}-${seq}`, retrying each until acknowledged. */
export class Producer {
  /** seq → acknowledged offset. */
  readonly acked = new Map<number, number>();
  private seq = 0;
  private producerId = -1;

  constructor(
    private readonly c: ProcessCluster,
    readonly stream: string,
    readonly partition: number,
    readonly tag: string,
  ) {}

  async init(): Promise<void> {
    const r = await this.c.routed((cl, d) =>
      callUnary(cl, StreamService, 'initProducer', create(InitProducerRequestSchema), { deadline: d }),
    );
    this.producerId = Number(r.producerId);
  }

  /** Appends the next record; resolves once acknowledged (retrying across failovers). */
  async next(): Promise<number> {
    const seq = this.seq++;
    const value = enc.encode(`${this.tag}-${seq}`);
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.c.append({
          stream: this.stream,
          target: { case: 'partition', value: this.partition },
          payload: { case: 'records', value: { records: [{ value }] } },
          producer: { producerId: BigInt(this.producerId), producerEpoch: 0, baseSequence: seq },
        });
        this.acked.set(seq, Number(r.baseOffset));
        return Number(r.baseOffset);
      } catch (err) {
        const e = err as CairnError;
        if (
          e instanceof CairnError &&
          e.code === 'DUPLICATE_SEQUENCE' &&
          e.facts.baseOffset !== undefined &&
          e.facts.baseOffset >= 0
        ) {
          // A retry of an append that did happen: its original offset.
          this.acked.set(seq, e.facts.baseOffset);
          return e.facts.baseOffset;
        }
        if (attempt >= 5) throw err;
      }
    }
  }

  get sent(): number {
    return this.seq;
  }
}

/** Reads every data record of a partition from one node (its own committed view). */
export async function readAll(c: ProcessCluster, id: number, stream: string, partition: number) {
  const hw = Number((await c.read(c.api(id), { stream, partition, offset: 0n, maxBytes: 1 })).highWatermark);
  const batches: Uint8Array[] = [];
  const records: { offset: number; value: string }[] = [];
  let offset = 0;
  while (offset < hw) {
    const r = await c.read(c.api(id), { stream, partition, offset: BigInt(offset), maxBytes: 1 << 20 });
    if (r.batches.length > 0) {
      batches.push(r.batches);
      let pos = 0;
      const dv = new DataView(r.batches.buffer, r.batches.byteOffset, r.batches.length);
      while (pos < r.batches.length) {
        const len = 12 + dv.getInt32(pos + 8);
        for (const rec of core.decodeRecords(r.batches.subarray(pos, pos + len))) {
          if (rec.offset >= offset) records.push({ offset: rec.offset, value: dec.decode(rec.value!) });
        }
        pos += len;
      }
    }
    const next = Number(r.nextOffset);
    assert.ok(next > offset, `read from ${offset} on node ${id} made no progress`);
    offset = next;
  }
  const total = batches.reduce((n, b) => n + b.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const b of batches) {
    bytes.set(b, at);
    at += b.length;
  }
  return { hw, records, bytes };
}

/** checkReplicas for each of `partitions`, each with the producers that wrote to it. */
export async function checkPartitions(
  c: ProcessCluster,
  ids: number[],
  stream: string,
  partitions: number[],
  producers: Producer[],
): Promise<void> {
  for (const partition of partitions)
    await checkReplicas(
      c,
      ids,
      stream,
      partition,
      producers.filter((p) => p.partition === partition),
    );
}

/**
 * Waits until the nodes agree on a high watermark past every acknowledged offset, then
 * checks the producers' records on each.
 */
export async function checkReplicas(
  c: ProcessCluster,
  ids: number[],
  stream: string,
  partition: number,
  producers: Producer[],
) {
  // A replica's high watermark is what it has applied. One just restarted has applied only
  // what its durable commit index covers (perhaps nothing: the commit index alone is not
  // fsynced) until the leader of a new term commits and tells it; so replicas that agree
  // may all be behind, at 0 after a restart of every node. Agreement counts only past the
  // end of what was acknowledged, or the check reads too little and calls records lost.
  let acknowledgedEnd = 0;
  for (const p of producers)
    for (const offset of p.acked.values()) acknowledgedEnd = Math.max(acknowledgedEnd, offset + 1);
  await eventually(
    async () => {
      const hws = await Promise.all(
        ids.map(async (id) =>
          Number((await c.read(c.api(id), { stream, partition, offset: 0n, maxBytes: 1 })).highWatermark),
        ),
      );
      assert.ok(
        hws.every((h) => h === hws[0]),
        `high watermarks differ: ${hws}`,
      );
      assert.ok(
        hws[0]! >= acknowledgedEnd,
        `high watermarks ${hws} are below ${acknowledgedEnd}, the end of what was acknowledged`,
      );
    },
    20_000,
    'replicas converge',
  );
  const views = await Promise.all(ids.map((id) => readAll(c, id, stream, partition)));
  for (let k = 1; k < views.length; k++) {
    assert.ok(
      Buffer.from(views[k]!.bytes).equals(Buffer.from(views[0]!.bytes)),
      `node ${ids[k]} holds different bytes than node ${ids[0]}`,
    );
  }
  const seen = new Map<string, number[]>();
  for (const r of views[0]!.records) {
    const list = seen.get(r.value) ?? [];
    list.push(r.offset);
    seen.set(r.value, list);
  }
  // No value at two offsets (no duplicates), offsets unique and increasing.
  for (const [v, offs] of seen) assert.is(offs.length, 1, `${v} appears at offsets ${offs}`);
  const offsets = views[0]!.records.map((r) => r.offset);
  for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, 'offsets increase');
  // Every acknowledged append is there, at its acknowledged offset.
  for (const p of producers) {
    for (const [seq, offset] of p.acked) {
      const at = seen.get(`${p.tag}-${seq}`);
      assert.ok(at !== undefined, `acknowledged ${p.tag}-${seq} is missing`);
      assert.is(at![0], offset, `${p.tag}-${seq} acknowledged at ${offset} but stored at ${at![0]}`);
    }
  }
  return views[0]!;
}
