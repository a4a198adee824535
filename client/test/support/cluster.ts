// Helpers for the client's end-to-end tests: a real cluster of `cairn serve` processes
// (the node's multi-process harness), a client pointed at it, and independent checks.
import { createRequire } from 'node:module';
import { eventually, ProcessCluster } from '../../../node/test/support/procs.js';
import { CairnClient, type ClientOptions, type ConsumedRecord } from '../../src/index.js';

export { eventually, ProcessCluster };

const require = createRequire(import.meta.url);
/** lz4js's xxHash32: an implementation independent of core-wasm's, for the key → partition oracle. */
const xxh32 = require('lz4js/xxh32.js') as {
  hash(seed: number, src: Uint8Array, index: number, len: number): number;
};

export function oraclePartition(key: Uint8Array, partitions: number): number {
  return (xxh32.hash(0, key, 0, key.length) >>> 0) % partitions;
}

export const text = (b: Uint8Array | null): string | null =>
  b === null ? null : new TextDecoder().decode(b);

export function clientFor(c: ProcessCluster, extra: Partial<ClientOptions> = {}): CairnClient {
  // One address is enough: the client discovers the others.
  return new CairnClient({ servers: [c.api(c.live()[0]!)], retryBackoffMaxMs: 200, ...extra });
}

/** Every record of a partition, read through the client (from the leader). */
export async function readAll(
  client: CairnClient,
  stream: string,
  partition: number,
): Promise<ConsumedRecord[]> {
  const { logStartOffset, highWatermark } = await client.offsets(stream, partition);
  const out: ConsumedRecord[] = [];
  let offset = logStartOffset;
  while (offset < highWatermark) {
    // The long poll waits out a replica that has not caught up with the end yet.
    const r = await client.read(stream, partition, { offset, maxWaitMs: 2_000 });
    out.push(...r.records);
    if (r.nextOffset <= offset) throw new Error(`read from ${offset} made no progress in 2 s`);
    offset = r.nextOffset;
  }
  return out;
}

/** The node leading a partition, as the members' statuses say (highest term wins). */
export async function leaderOf(c: ProcessCluster, stream: string, partition = 0): Promise<number> {
  return eventually(async () => {
    let best: { id: number; term: bigint } | undefined;
    for (const id of c.live()) {
      try {
        const s = await c.nodeStatus(id);
        for (const g of s.groups) {
          if (
            g.stream === stream &&
            g.partition === partition &&
            g.role === 4 &&
            (best === undefined || g.term > best.term)
          )
            best = { id, term: g.term };
        }
      } catch {}
    }
    if (best === undefined) throw new Error(`no leader of ${stream}/${partition} yet`);
    return best.id;
  }, 20_000);
}
