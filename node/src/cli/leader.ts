// `cairn leader transfer`: moves a partition's (or the metadata group's) leadership.
import {
  type CommonValues,
  commonUsage,
  connect,
  intFlag,
  parse,
  runWith,
  UsageError,
} from './client-cli.js';
import type { Command } from './main.js';

const usage = `usage:
  cairn leader transfer STREAM [--partition P] [--to NODE]
  cairn leader transfer --metadata [--to NODE]
  Without --to, the leader hands over to its most caught-up follower.
${commonUsage}`;

const options = {
  partition: { type: 'string' },
  to: { type: 'string' },
  metadata: { type: 'boolean' },
} as const;

export const leaderCommand: Command = {
  summary: 'transfer the leadership of a partition or of the metadata group',
  async run(argv) {
    const [action, ...rest] = argv;
    let values: Record<string, string | boolean | undefined> = {};
    return runWith(
      'leader',
      usage,
      async () => {
        if (action === undefined || action === '--help' || action === '-h') {
          console.log(usage);
          return action === undefined ? 2 : 0;
        }
        if (action !== 'transfer') throw new UsageError(`unknown action '${action}'`);
        let positionals: string[];
        ({ values, positionals } = parse(rest, options));
        if (values['help']) {
          console.log(usage);
          return 0;
        }
        const metadata = values['metadata'] === true;
        if (metadata ? positionals.length !== 0 : positionals.length !== 1)
          throw new UsageError('leader transfer takes one stream name, or --metadata');
        const stream = metadata ? '' : positionals[0]!;
        const partition = intFlag(values, 'partition', 0);
        const to = intFlag(values, 'to', 0);
        const client = connect(values as CommonValues);
        try {
          const leader = await client.transferLeader(stream, partition, to);
          const what = metadata ? 'the metadata group' : `${stream}/${partition}`;
          console.log(
            values['json'] === true
              ? JSON.stringify({ stream, partition, leader })
              : `${what} is led by node ${leader}`,
          );
          return 0;
        } finally {
          await client.close();
        }
      },
      values['json'] === true || argv.includes('--json'),
    );
  },
};
