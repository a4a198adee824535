// Commit latency of single appends on a 3-node local cluster (real processes, fsync on):
// N sequential appends of one 100-byte record to the partition leader, each acknowledged
// only once committed (fsynced on a majority) and applied.
//
//   npm run build && node dist/node/test/support/append-latency.js [N]
import { create } from '@bufbuild/protobuf';
import { AppendRequestSchema, StreamService } from '../../../proto/gen/cairn/v1/cairn_pb.js';
import { callUnary } from '../../src/api/grpc-service.js';
import { ProcessCluster } from './procs.js';

const n = Number(process.argv[2] ?? 1000);
const c = new ProcessCluster([1, 2, 3], ['--log-level', 'warn']);
try {
  await c.startAll();
  const info = await c.createStream('latency', 1);
  const leader = info.partitions[0]!.leader;
  const address = c.api(leader);
  const client = c.client(address);
  const value = new Uint8Array(100).fill(7);
  const req = create(AppendRequestSchema, {
    stream: 'latency',
    target: { case: 'partition', value: 0 },
    payload: { case: 'records', value: { records: [{ value }] } },
  });
  for (let i = 0; i < 50; i++) await callUnary(client, StreamService, 'append', req); // warm up
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await callUnary(client, StreamService, 'append', req);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!.toFixed(2);
  console.log(
    `${n} sequential appends (100 B, 3 nodes, leader ${leader}): p50 ${q(0.5)} ms  p90 ${q(0.9)} ms  p99 ${q(0.99)} ms  max ${ms[ms.length - 1]!.toFixed(2)} ms`,
  );
} finally {
  await c.stopAll();
}
