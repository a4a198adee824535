// `cairn leader transfer`: moves a partition's (or the metadata group's) leadership.
import { clientCommand, commonUsage, intFlag, UsageError, withClient } from './client-cli.js';

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

export const leaderCommand = clientCommand({
  name: 'leader',
  summary: 'transfer the leadership of a partition or of the metadata group',
  usage,
  actions: ['transfer'],
  options: () => options,
  async run({ values, positionals, json }) {
    const metadata = values['metadata'] === true;
    if (metadata ? positionals.length !== 0 : positionals.length !== 1)
      throw new UsageError('leader transfer takes one stream name, or --metadata');
    const stream = metadata ? '' : positionals[0]!;
    const partition = intFlag(values, 'partition', 0);
    const to = intFlag(values, 'to', 0);
    const leader = await withClient(values, (client) => client.transferLeader(stream, partition, to));
    const what = metadata ? 'the metadata group' : `${stream}/${partition}`;
    console.log(json ? JSON.stringify({ stream, partition, leader }) : `${what} is led by node ${leader}`);
    return 0;
  },
});
