// `cairn status [--server HOST:PORT] [--json]`: every member of the cluster with its
// addresses, pid and health, and per Raft group its role, term, leader, commit and applied
// index and follower lag, as AdminService.ClusterStatus reports them.
import { parseArgs } from 'node:util';
import { create, toJson } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  AdminService,
  ClusterStatusRequestSchema,
  type ClusterStatusResponse,
  ClusterStatusResponseSchema,
  NodeState,
  Role,
} from '../../../proto/gen/cairn/v1/cairn_pb.js';
import { fromServiceError } from '../api/grpc-errors.js';
import { callUnary } from '../api/grpc-service.js';
import type { Command } from './main.js';

export const DEFAULT_SERVER = '127.0.0.1:7001';

const usage = `usage: cairn status [--server HOST:PORT] [--json] [--timeout-ms MS]
  --server   any node's API address (default ${DEFAULT_SERVER}, the first node of \`cairn dev\`)
  --json     print the ClusterStatus response as JSON`;

export const statusCommand: Command = {
  summary: 'show every node and Raft group of a cluster',
  async run(argv) {
    let values: { server?: string; json?: boolean; help?: boolean; 'timeout-ms'?: string };
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          server: { type: 'string' },
          json: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
          'timeout-ms': { type: 'string' },
        },
      }));
    } catch (err) {
      console.error(`cairn status: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const server = values.server ?? process.env['CAIRN_SERVER'] ?? DEFAULT_SERVER;
    const timeoutMs = Number(values['timeout-ms'] ?? 5000);
    const client = new grpc.Client(server, grpc.credentials.createInsecure());
    try {
      const res = await callUnary(client, AdminService, 'clusterStatus', create(ClusterStatusRequestSchema), {
        deadline: Date.now() + timeoutMs,
      });
      if (values.json) console.log(JSON.stringify(toJson(ClusterStatusResponseSchema, res), null, 2));
      else console.log(formatStatus(res));
      return res.members.every((m) => m.healthy) ? 0 : 1;
    } catch (err) {
      const e = fromServiceError(err as grpc.ServiceError);
      console.error(`cairn status: ${server}: ${e.code}: ${e.message}`);
      return 1;
    } finally {
      client.close();
    }
  },
};

const roleName: Record<Role, string> = {
  [Role.UNSPECIFIED]: '?',
  [Role.FOLLOWER]: 'follower',
  [Role.CANDIDATE]: 'candidate',
  [Role.PRE_CANDIDATE]: 'pre-candidate',
  [Role.LEADER]: 'leader',
  [Role.LEARNER]: 'learner',
};

const stateName: Record<NodeState, string> = {
  [NodeState.UNSPECIFIED]: '?',
  [NodeState.ACTIVE]: 'active',
  [NodeState.JOINING]: 'joining',
  [NodeState.LEAVING]: 'leaving',
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatus(res: ClusterStatusResponse): string {
  const nodes = [['NODE', 'API', 'PEER', 'STATE', 'PID', 'HEALTH', 'UPTIME']];
  for (const m of res.members) {
    const n = m.node!;
    nodes.push([
      String(n.id),
      n.apiAddress,
      n.peerAddress,
      stateName[n.state],
      m.status ? String(m.status.pid) : '-',
      m.healthy ? 'ok' : `DOWN (${m.error})`,
      m.status ? `${Math.round(Number(m.status.uptimeMs) / 1000)}s` : '-',
    ]);
  }
  const groups = [
    ['NODE', 'GROUP', 'STREAM/PARTITION', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LAST', 'LAG'],
  ];
  for (const m of res.members) {
    for (const g of m.status?.groups ?? []) {
      const lag = Object.entries(g.followerLag)
        .map(([id, n]) => `${id}:${n}`)
        .join(' ');
      groups.push([
        String(m.node!.id),
        String(g.groupId),
        g.stream === '' ? '(metadata)' : `${g.stream}/${g.partition}`,
        roleName[g.role] + (g.needsRepair ? ' (repairing)' : ''),
        String(g.term),
        String(g.leader),
        String(g.commitIndex),
        String(g.appliedIndex),
        String(g.lastIndex),
        lag || '-',
      ]);
    }
  }
  return `cluster ${res.clusterId}\n\n${table(nodes)}\n\n${table(groups)}`;
}
