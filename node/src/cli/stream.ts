// `cairn stream create|list|describe|delete`: streams, through the client library.
import type { StreamInfo } from '../../../client/src/index.js';
import {
  type CommonValues,
  commonUsage,
  connect,
  intFlag,
  parse,
  runWith,
  table,
  UsageError,
} from './client-cli.js';
import type { Command } from './main.js';

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

export const streamCommand: Command = {
  summary: 'create, list, describe or delete streams',
  async run(argv) {
    const [action, ...rest] = argv;
    let values: Record<string, string | boolean | undefined> = {};
    return runWith(
      'stream',
      usage,
      async () => {
        if (action === undefined || action === '--help' || action === '-h') {
          console.log(usage);
          return action === undefined ? 2 : 0;
        }
        let positionals: string[];
        ({ values, positionals } = parse(rest, action === 'create' ? createOptions : {}));
        if (values['help']) {
          console.log(usage);
          return 0;
        }
        const json = values['json'] === true;
        const name = positionals[0];
        const wantsName = action !== 'list';
        if (wantsName && (name === undefined || positionals.length !== 1))
          throw new UsageError(`stream ${action} takes one stream name`);
        if (!wantsName && positionals.length !== 0) throw new UsageError('stream list takes no arguments');
        const client = connect(values as CommonValues);
        try {
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
              console.log(json ? JSON.stringify(s) : `created ${describe(s)}`);
              return 0;
            }
            case 'list': {
              const streams = await client.listStreams();
              if (json) console.log(JSON.stringify(streams));
              else {
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
                console.log(streams.length === 0 ? 'no streams' : table(rows));
              }
              return 0;
            }
            case 'describe': {
              const s = await client.describeStream(name!);
              console.log(json ? JSON.stringify(s) : describe(s));
              return 0;
            }
            case 'delete':
              await client.deleteStream(name!);
              console.log(json ? JSON.stringify({ deleted: name }) : `deleted stream ${name}`);
              return 0;
            default:
              throw new UsageError(`unknown action '${action}'`);
          }
        } finally {
          await client.close();
        }
      },
      values['json'] === true || argv.includes('--json'),
    );
  },
};
