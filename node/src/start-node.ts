// Starting a node process, from a checked configuration to a running CairnNode: the data
// directory's identity, its layout (segmentStores), the peer listener, then the node
// itself. `cairn serve` calls this with the real seams and the simulator with simulated
// ones, so start-up — identity file, directory layout, joining, the repair marker — is one
// code path that a seed can break (DESIGN §1: the seams are the only difference).
//
//   1. identity     <data>/node.json checked or written durably (identity.ts); a refused
//                   directory stops here, before any port is opened or file written; a
//                   new directory started with --join also gets its join record
//                   (join-record.ts), before any group
//   2. peers        the transport starts listening (closed again if step 3 fails)
//   3. node         CairnNode.start: group 0 opened (bootstrapped on a new cluster), the
//                   partition groups the catalog places here opened as it is applied
import type { Core } from '../../core-wasm/src/index.js';
import type { Message } from '../../raft/src/index.js';
import { CairnNode, type CairnNodeOptions, type StoreProvider } from './cairn-node.js';
import type { NodeConfig } from './config.js';
import { segmentStores } from './group/segment-store.js';
import { checkIdentity, type IdentityOutcome } from './identity.js';
import { openJoinRecord } from './join-record.js';
import type { Logger } from './ops/log.js';
import type { Clock } from './seams/clock.js';
import type { Random } from './seams/random.js';
import type { Transport } from './seams/transport.js';
import type { FileSystem, StorageOptions } from './storage/index.js';

/** What a node process is given by its host: the real machine, or the simulator. */
export interface NodeSeams<T extends Transport<Message> = Transport<Message>> {
  fs: FileSystem;
  clock: Clock;
  random: Random;
  core: Core;
  log: Logger;
  /** Opens the peer listener; called only once the data directory is known to be this node's. */
  listen(): Promise<T>;
  /** Storage settings that differ from the defaults (the simulator's small segments). */
  storage?: Partial<StorageOptions>;
  /** Wraps the store provider (the simulator's checkers watch every store through it). */
  wrapStores?(stores: StoreProvider): StoreProvider;
}

/** The node's callbacks and identity, as CairnNode takes them. */
export type NodeHooks = Omit<
  CairnNodeOptions,
  'config' | 'clock' | 'random' | 'transport' | 'core' | 'stores' | 'log' | 'joinRecord'
>;

export interface StartedNode<T extends Transport<Message> = Transport<Message>> {
  node: CairnNode;
  transport: T;
  identity: IdentityOutcome;
}

/**
 * Starts one node. Throws IdentityError (identity.ts) when the data directory is another
 * node's or has lost its identity; any other failure is the node's own start failing.
 */
export async function startNode<T extends Transport<Message>>(
  config: NodeConfig,
  seams: NodeSeams<T>,
  hooks: NodeHooks,
): Promise<StartedNode<T>> {
  const { fs, clock, log } = seams;
  const identity = await checkIdentity(fs, config.dataDir, {
    nodeId: config.nodeId,
    clusterId: config.clusterId,
  });
  if (identity === 'rewritten')
    log.warn(
      { dataDir: config.dataDir },
      'the identity file was empty or torn in an empty data directory: written again',
    );
  const joinRecord = await openJoinRecord(fs, seams.core, config.dataDir, {
    created: identity !== 'matched',
    join: config.join,
  });
  const stores = segmentStores({
    fs,
    dataDir: config.dataDir,
    core: seams.core,
    schedule: (run) => clock.defer(run),
    storage: seams.storage,
    log,
  });
  const transport = await seams.listen();
  try {
    const node = await CairnNode.start({
      ...hooks,
      config,
      clock,
      random: seams.random,
      transport,
      core: seams.core,
      stores: seams.wrapStores?.(stores) ?? stores,
      log,
      joinRecord,
    });
    return { node, transport, identity };
  } catch (err) {
    await transport.close();
    throw err;
  }
}
