// Group 0 on this node: the catalog as a Raft state machine. Every node runs it; the node
// reacts to what it applies (starting and stopping partition groups, updating peer
// addresses) through `onApplied`.
import type { Core } from '../../../core-wasm/src/index.js';
import type { Entry, SnapshotMeta, SoftState } from '../../../raft/src/index.js';
import {
  decodeCatalog,
  decodeMetaEntry,
  encodeCatalog,
  type MetaCommand,
  MetadataState,
  type MetaResult,
} from '../state/metadata.js';
import type { GroupMachine, RaftGroup } from './raft-group.js';

export class MetadataGroup implements GroupMachine {
  group!: RaftGroup;
  state = MetadataState.empty();

  constructor(
    private readonly core: Core,
    private readonly onApplied: (cmd: MetaCommand | null, result: MetaResult | null, index: number) => void,
    private readonly onRole: (s: SoftState) => void,
  ) {}

  apply(entry: Entry): MetaResult | null {
    if (entry.type !== 'normal') {
      this.onApplied(null, null, entry.index);
      return null;
    }
    // A committed command that does not decode is corruption (or a newer version's
    // command): stopping beats applying a guess, since every node must apply the same.
    const cmd = decodeMetaEntry(this.core, entry.data);
    const result = this.state.apply(cmd);
    this.onApplied(cmd, result, entry.index);
    return result;
  }

  onSoftState(s: SoftState): void {
    this.onRole(s);
  }

  restore(meta: SnapshotMeta, bytes: Uint8Array): void {
    this.state = MetadataState.fromCatalog(decodeCatalog(bytes));
    this.onApplied(null, null, meta.index);
  }

  snapshotState(): Uint8Array {
    return encodeCatalog(this.state.catalog());
  }
}
