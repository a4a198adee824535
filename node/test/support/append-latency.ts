// Commit latency of single appends on a 3-node local cluster (real processes, fsync on):
// N sequential appends of one 100-byte record to the partition leader, each acknowledged
// only once committed (fsynced on a majority) and applied.
//
//   npm run build && node dist/node/test/support/append-latency.js [N]
import { create } from '@bufbuild/protobuf';
import {
  AdminService,
  AppendRequestSchema,
  NodeStatusRequestSchema,
  StreamService,
} from '../../../proto/gen/cairn/v1/cairn_pb.js';
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
  // Baseline in the same run: a gRPC round trip to the same node that touches no disk and no peer.
  const rtt: number[] = [];
  const status = create(NodeStatusRequestSchema);
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    await callUnary(client, AdminService, 'nodeStatus', status);
    rtt.push(performance.now() - t);
  }
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await callUnary(client, StreamService, 'append', req);
    ms.push(performance.now() - t);
  }
  const q = (xs: number[], p: number) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  };
  console.log(
    `${n} sequential appends (100 B, 3 nodes, leader ${leader}): p50 ${q(ms, 0.5).toFixed(2)} ms  ` +
      `p90 ${q(ms, 0.9).toFixed(2)} ms  p99 ${q(ms, 0.99).toFixed(2)} ms  max ${q(ms, 1).toFixed(2)} ms`,
  );
  console.log(
    `baseline, NodeStatus round trip to the same node: p50 ${q(rtt, 0.5).toFixed(2)} ms  p99 ${q(rtt, 0.99).toFixed(2)} ms` +
      `  (append p50 = ${(q(ms, 0.5) / q(rtt, 0.5)).toFixed(1)}x a bare round trip)`,
  );
} finally {
  await c.stopAll();
}
