// The multi-process tests' check of what was acknowledged (support/workload.ts), over a
// fake cluster: its answers are scripted, so the check's own mistakes show deterministically.
//
// Seen in cluster-power-loss ("acknowledged r0-1-0 is missing", about 1 run in 4): right
// after every node restarted, each replica of partition 1 reported a high watermark of 0 —
// a replica's high watermark is what it has applied, and a restarted one has applied only
// what its durable commit index said until the leader of a new term tells it more. Three
// replicas agreeing on 0 counted as converged; the check then read nothing and called the
// first acknowledged record lost, although every replica held it, at its offset, on disk.
import { create } from '@bufbuild/protobuf';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCore } from '../../core-wasm/src/index.js';
import {
  type ReadRequest,
  type ReadResponse,
  ReadResponseSchema,
} from '../../proto/gen/cairn/v1/cairn_pb.js';
import type { ProcessCluster } from './support/procs.js';
import { checkReplicas, Producer } from './support/workload.js';

const core = createCore();
const enc = new TextEncoder();

/**
 * Replicas of one partition holding the same log, each of which first answers as just
 * restarted (high watermark 0, nothing readable) for `staleReads` reads.
 */
class RestartedReplicas {
  private readonly batches: { bytes: Uint8Array; offset: number }[] = [];
  private readonly readsBy = new Map<string, number>();

  constructor(
    values: string[],
    private readonly staleReads: number,
  ) {
    values.forEach((v, offset) => {
      const bytes = core.encodeBatch([{ value: enc.encode(v) }], {
        baseOffset: offset,
        partitionLeaderEpoch: 1,
      });
      this.batches.push({ bytes, offset });
    });
  }

  api(id: number): string {
    return `replica-${id}`;
  }

  async read(address: string, init: Partial<ReadRequest>): Promise<ReadResponse> {
    const n = (this.readsBy.get(address) ?? 0) + 1;
    this.readsBy.set(address, n);
    const from = Number(init.offset ?? 0n);
    const hw = n <= this.staleReads ? 0 : this.batches.length;
    const kept = this.batches.filter((b) => b.offset >= from && b.offset < hw).map((b) => b.bytes);
    return create(ReadResponseSchema, {
      batches: Buffer.concat(kept),
      nextOffset: BigInt(Math.max(from, hw)),
      highWatermark: BigInt(hw),
      logStartOffset: 0n,
    });
  }
}

test('checkReplicas waits for restarted replicas to apply what was acknowledged: all at high watermark 0 is not converged', async () => {
  const replicas = new RestartedReplicas(['p-0', 'p-1'], 3);
  const c = replicas as unknown as ProcessCluster;
  const p = new Producer(c, 's', 0, 'p');
  p.acked.set(0, 0);
  p.acked.set(1, 1);
  const view = await checkReplicas(c, [1, 2, 3], 's', 0, [p]);
  assert.equal(
    view.records.map((r) => r.value),
    ['p-0', 'p-1'],
  );
});

test.run();
