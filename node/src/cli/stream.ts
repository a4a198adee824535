// `cairn stream create|list|describe|delete`: streams, through the client library.
import type { StreamInfo } from '../../../client/src/index.js';
import { clientCommand, commonUsage, intFlag, table, UsageError, withClient } from './client-cli.js';

const usage = `usage:
  cairn stream create NAME [--partitions N] [--replication-factor N] [--retention-bytes B]
                           [--retention-ms MS] [--compacted] [--delete-retention-ms MS] [--segment-bytes B]
  cairn stream list
  cairn stream describe NAME
  cairn stream delete NAME
${commonUsage}`;

const createOptions = {
  partitions: { type: 'string' },
  'replication-factor': { type: 'string' },
  'retention-bytes': { type: 'string' },
  'retention-ms': { type: 'string' },
  compacted: { type: 'boolean' },
  'delete-retention-ms': { type: 'string' },
  'segment-bytes': { type: 'string' },
} as const;

function describe(s: StreamInfo): string {
  const c = s.config;
  const settings = [
    `partitions ${c.partitions}`,
    `replication factor ${c.replicationFactor}`,
    `retention ${c.retentionBytes === 0 ? 'unlimited' : `${c.retentionBytes} bytes`} / ${c.retentionMs === 0 ? 'unlimited' : `${c.retentionMs} ms`}`,
    c.compacted ? `compacted (tombstones kept ${c.deleteRetentionMs} ms)` : 'not compacted',
    `segment bytes ${c.segmentBytes === 0 ? 'default' : c.segmentBytes}`,
  ];
  const rows = [['PARTITION', 'LEADER', 'REPLICAS', 'START', 'END']];
  for (const p of s.partitions) {
    rows.push([
      String(p.partition),
      p.leader === 0 ? '?' : String(p.leader),
      p.replicas.join(','),
      String(p.logStartOffset),
      String(p.highWatermark),
    ]);
  }
  return `stream ${s.name}: ${settings.join(', ')}\n\n${table(rows)}`;
}

export const streamCommand = clientCommand({
  name: 'stream',
  summary: 'create, list, describe or delete streams',
  usage,
  actions: ['create', 'list', 'describe', 'delete'],
  options: (action) => (action === 'create' ? createOptions : {}),
  async run({ action, values, positionals, json }) {
    const name = positionals[0];
    const wantsName = action !== 'list';
    if (wantsName && (name === undefined || positionals.length !== 1))
      throw new UsageError(`stream ${action} takes one stream name`);
    if (!wantsName && positionals.length !== 0) throw new UsageError('stream list takes no arguments');
    const out = await withClient(values, async (client) => {
      switch (action) {
        case 'create': {
          const s = await client.createStream(name!, {
            partitions: intFlag(values, 'partitions', 0) || undefined,
            replicationFactor: intFlag(values, 'replication-factor', 0) || undefined,
            retentionBytes: intFlag(values, 'retention-bytes', 0),
            retentionMs: intFlag(values, 'retention-ms', 0),
            compacted: values['compacted'] === true,
            deleteRetentionMs: intFlag(values, 'delete-retention-ms', 0),
            segmentBytes: intFlag(values, 'segment-bytes', 0),
          });
          return json ? JSON.stringify(s) : `created ${describe(s)}`;
        }
        case 'list': {
          const streams = await client.listStreams();
          if (json) return JSON.stringify(streams);
          const rows = [
            ['NAME', 'PARTITIONS', 'REPLICATION', 'COMPACTED', 'RETENTION BYTES', 'RETENTION MS'],
          ];
          for (const s of streams) {
            const c = s.config;
            rows.push([
              s.name,
              String(c.partitions),
              String(c.replicationFactor),
              c.compacted ? 'yes' : 'no',
              c.retentionBytes === 0 ? '-' : String(c.retentionBytes),
              c.retentionMs === 0 ? '-' : String(c.retentionMs),
            ]);
          }
          return streams.length === 0 ? 'no streams' : table(rows);
        }
        case 'describe': {
          const s = await client.describeStream(name!);
          return json ? JSON.stringify(s) : describe(s);
        }
        default:
          await client.deleteStream(name!);
          return json ? JSON.stringify({ deleted: name }) : `deleted stream ${name}`;
      }
    });
    console.log(out);
    return 0;
  },
});
