// `cairn node add|remove`: cluster membership, through the client library. A node to add
// is started first with `cairn serve --join …`; add waits until it is an active member,
// remove until its replicas have moved to other nodes.
import { clientCommand, commonUsage, intFlag, UsageError, withClient } from './client-cli.js';

const usage = `usage:
  cairn node add --id N --api-address HOST:PORT --peer-address HOST:PORT
  cairn node remove ID
${commonUsage}`;

const addOptions = {
  id: { type: 'string' },
  'api-address': { type: 'string' },
  'peer-address': { type: 'string' },
} as const;

export const nodeCommand = clientCommand({
  name: 'node',
  summary: 'add a node to the cluster or remove one',
  usage,
  actions: ['add', 'remove'],
  options: (action) => (action === 'add' ? addOptions : {}),
  async run({ action, values, positionals, json }) {
    if (action === 'add') {
      if (positionals.length !== 0) throw new UsageError('node add takes flags only');
      const id = intFlag(values, 'id', 0);
      const apiAddress = values['api-address'];
      const peerAddress = values['peer-address'];
      if (id === 0 || typeof apiAddress !== 'string' || typeof peerAddress !== 'string')
        throw new UsageError('node add needs --id, --api-address and --peer-address');
      const n = await withClient(values, (client) => client.addNode({ id, apiAddress, peerAddress }));
      console.log(json ? JSON.stringify(n) : `node ${n.id} (${n.apiAddress}) is ${n.state}`);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('node remove takes one node id');
    const id = Number(positionals[0]);
    if (!Number.isInteger(id) || id < 1) throw new UsageError(`'${positionals[0]}' is not a node id`);
    await withClient(values, (client) => client.removeNode(id));
    console.log(json ? JSON.stringify({ removed: id }) : `node ${id} removed`);
    return 0;
  },
});
