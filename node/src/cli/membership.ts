// `cairn node add|remove`: cluster membership, through the client library. A node to add
// is started first with `cairn serve --join …`; add waits until it is an active member,
// remove until its replicas have moved to other nodes.
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
  cairn node add --id N --api-address HOST:PORT --peer-address HOST:PORT
  cairn node remove ID
${commonUsage}`;

const addOptions = {
  id: { type: 'string' },
  'api-address': { type: 'string' },
  'peer-address': { type: 'string' },
} as const;

export const nodeCommand: Command = {
  summary: 'add a node to the cluster or remove one',
  async run(argv) {
    const [action, ...rest] = argv;
    let values: Record<string, string | boolean | undefined> = {};
    return runWith(
      'node',
      usage,
      async () => {
        if (action === undefined || action === '--help' || action === '-h') {
          console.log(usage);
          return action === undefined ? 2 : 0;
        }
        let positionals: string[];
        ({ values, positionals } = parse(rest, action === 'add' ? addOptions : {}));
        if (values['help']) {
          console.log(usage);
          return 0;
        }
        const json = values['json'] === true;
        if (action === 'add') {
          if (positionals.length !== 0) throw new UsageError('node add takes flags only');
          const id = intFlag(values, 'id', 0);
          const apiAddress = values['api-address'];
          const peerAddress = values['peer-address'];
          if (id === 0 || typeof apiAddress !== 'string' || typeof peerAddress !== 'string')
            throw new UsageError('node add needs --id, --api-address and --peer-address');
          const client = connect(values as CommonValues);
          try {
            const n = await client.addNode({ id, apiAddress, peerAddress });
            console.log(json ? JSON.stringify(n) : `node ${n.id} (${n.apiAddress}) is ${n.state}`);
            return 0;
          } finally {
            await client.close();
          }
        }
        if (action === 'remove') {
          if (positionals.length !== 1) throw new UsageError('node remove takes one node id');
          const id = Number(positionals[0]);
          if (!Number.isInteger(id) || id < 1) throw new UsageError(`'${positionals[0]}' is not a node id`);
          const client = connect(values as CommonValues);
          try {
            await client.removeNode(id);
            console.log(json ? JSON.stringify({ removed: id }) : `node ${id} removed`);
            return 0;
          } finally {
            await client.close();
          }
        }
        throw new UsageError(`unknown action '${action}'`);
      },
      values['json'] === true || argv.includes('--json'),
    );
  },
};
