// Prometheus metrics (prom-client) on an HTTP port: per group role, term, commit and
// applied index and follower lag (read from the node's status at scrape time), append and
// persist (write + fsync) latency histograms, and bytes in and out per peer.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GroupRole, NodeStatus } from '../node-api.js';
import type { PeerStats } from '../peer/grpc-transport.js';

const roleNumber: Record<GroupRole, number> = {
  follower: 1,
  candidate: 2,
  preCandidate: 3,
  leader: 4,
  learner: 5,
};

export interface MetricsSource {
  status(): NodeStatus;
  peers(): Map<number, PeerStats>;
}

export class NodeMetrics {
  readonly registry = new Registry();
  /** Append requests, from arrival to acknowledgement (committed and applied). */
  readonly appendSeconds: Histogram;
  /** Log writes, from handing entries to storage until storage reports them durable. */
  readonly persistSeconds: Histogram;
  readonly apiBytesIn: Counter;
  readonly apiBytesOut: Counter;
  /** Groups restarted from storage, by cause: 'damage' (to be repaired) or 'snapshot-rejected'. */
  readonly groupRestarts: Counter;

  constructor(source: MetricsSource) {
    const r = this.registry;
    const buckets = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 4];
    this.appendSeconds = new Histogram({
      name: 'cairn_append_seconds',
      help: 'Append latency, arrival to acknowledgement',
      buckets,
      registers: [r],
    });
    this.persistSeconds = new Histogram({
      name: 'cairn_persist_seconds',
      help: 'Log write + fsync latency (group commit)',
      buckets,
      registers: [r],
    });
    this.apiBytesIn = new Counter({
      name: 'cairn_api_bytes_in_total',
      help: 'Record bytes appended',
      registers: [r],
    });
    this.apiBytesOut = new Counter({
      name: 'cairn_api_bytes_out_total',
      help: 'Batch bytes read',
      registers: [r],
    });

    this.groupRestarts = new Counter({
      name: 'cairn_group_restarts_total',
      help: 'Groups restarted from storage: after damage (then repaired from the leader) or a refused snapshot',
      labelNames: ['cause'],
      registers: [r],
    });

    const labels = ['group', 'stream', 'partition'];
    const groupGauge = (name: string, help: string, pick: (g: NodeStatus['groups'][number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: labels,
        registers: [r],
        collect() {
          this.reset();
          for (const g of source.status().groups) {
            this.set({ group: String(g.groupId), stream: g.stream, partition: String(g.partition) }, pick(g));
          }
        },
      });
    groupGauge(
      'cairn_group_role',
      'Role: 1 follower, 2 candidate, 3 pre-candidate, 4 leader, 5 learner',
      (g) => roleNumber[g.role],
    );
    groupGauge('cairn_group_term', 'Raft term', (g) => g.term);
    groupGauge('cairn_group_leader', 'Leader node id (0 unknown)', (g) => g.leader);
    groupGauge('cairn_group_commit_index', 'Raft commit index', (g) => g.commitIndex);
    groupGauge('cairn_group_applied_index', 'Raft applied index', (g) => g.appliedIndex);
    groupGauge('cairn_group_last_index', 'Raft last log index', (g) => g.lastIndex);
    groupGauge('cairn_group_needs_repair', '1 while the group waits for repair from the leader', (g) =>
      g.needsRepair ? 1 : 0,
    );
    new Gauge({
      name: 'cairn_group_follower_lag_entries',
      help: "On a leader: entries between the leader's last index and each follower's match index",
      labelNames: [...labels, 'follower'],
      registers: [r],
      collect() {
        this.reset();
        for (const g of source.status().groups) {
          for (const [f, lag] of g.followerLag) {
            this.set(
              {
                group: String(g.groupId),
                stream: g.stream,
                partition: String(g.partition),
                follower: String(f),
              },
              lag,
            );
          }
        }
      },
    });
    const peerGauge = (name: string, help: string, pick: (s: PeerStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['peer'],
        registers: [r],
        collect() {
          this.reset();
          for (const [id, s] of source.peers()) this.set({ peer: String(id) }, pick(s));
        },
      });
    // Monotonic counts kept by the transport; exposed as gauges because they are read, not incremented, here.
    peerGauge('cairn_peer_bytes_out', 'Frame bytes sent to the peer', (s) => s.bytesOut);
    peerGauge('cairn_peer_bytes_in', 'Frame bytes received from the peer', (s) => s.bytesIn);
    peerGauge(
      'cairn_peer_frames_dropped',
      'Frames dropped (queue full or too large)',
      (s) => s.framesDropped,
    );
    peerGauge('cairn_peer_bad_frames', 'Connections closed for malformed frames', (s) => s.badFrames);
    peerGauge('cairn_peer_queue_bytes', 'Frame bytes waiting to be sent', (s) => s.queueBytes);
    peerGauge('cairn_peer_connected', '1 while connected', (s) => (s.connected ? 1 : 0));
  }
}

/** Serves GET /metrics (Prometheus text) and GET /healthz on `address` (host:port). */
export function serveMetrics(address: string, metrics: NodeMetrics): Promise<Server> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
    } else if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200);
      res.end('ok\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
