// The catalog: group 0 on this node (MetadataGroup is its state machine, as PartitionGroup
// is a partition's), how it opens and restarts, how a catalog change is proposed and
// waited for, and what its applied changes set off here — peer addresses, and (through
// onPlacementChange) the partition groups this node should host.
import type { ConfState, NodeId } from '../../../raft/src/index.js';
import { encodeConfState } from '../../../raft/src/index.js';
import { type CairnError, invalidRequest, notLeader, unavailable } from '../errors.js';
import { MetadataGroup } from '../group/metadata-group.js';
import { RaftGroup } from '../group/raft-group.js';
import type { GroupRuntime } from '../group/runtime.js';
import type { GroupStore, OpenedState } from '../group/store.js';
import {
  decodeMetaEntry,
  encodeMetaEntry,
  type MetaCommand,
  MetadataState,
  type MetaResult,
  type StreamMeta,
  streamNotFound,
} from '../state/metadata.js';
import { METADATA_GROUP, type NodeContext } from './context.js';
import type { Repairs } from './repairs.js';

/** Attempts to start group 0 when each finds damage (then the node fails to start). */
const OPEN_ATTEMPTS = 3;

export class Catalog {
  readonly meta: MetadataGroup;
  /**
   * After group 0 restarted, the catalog is rebuilt from its snapshot and log: until it is
   * applied again this far it is only a prefix of what this node acted on, and reconciling
   * against it would stop (and delete) partitions it does not list yet.
   */
  private floor = 0;
  private placementChanged: () => void = () => {};

  constructor(
    private readonly ctx: NodeContext,
    private readonly runtime: GroupRuntime,
    private readonly repairs: Repairs,
  ) {
    this.meta = new MetadataGroup(
      ctx.o.core,
      (cmd, _result, index) => this.applied(cmd, index),
      () => {},
    );
  }

  /** The catalog as this node has applied it. */
  get state(): MetadataState {
    return this.meta.state;
  }

  get group(): RaftGroup {
    return this.meta.group;
  }

  /** Whether the catalog is applied at least as far as this node acted on it (see floor). */
  get settled(): boolean {
    return this.floor === 0;
  }

  /** `listener` runs when the catalog may place partitions differently (one listener: the registry). */
  onPlacementChange(listener: () => void): void {
    this.placementChanged = listener;
  }

  /**
   * Opens group 0's store and starts the group. Damage found while starting it (reading
   * entry 1 or the configuration entries) marks the store as repairing and opens it again,
   * verified in full.
   */
  async open(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const repair = this.repairs.repairsOnOpen(METADATA_GROUP);
      const { store, opened } = await this.ctx.o.stores.open(METADATA_GROUP, undefined, { repair });
      this.repairs.opened(METADATA_GROUP);
      try {
        await this.start(store, opened);
        return;
      } catch (err) {
        if (attempt >= OPEN_ATTEMPTS) {
          await store.close().catch(() => {});
          throw err;
        }
        await this.repairs.closeForRepair(METADATA_GROUP, store, opened, err);
        this.meta.state = MetadataState.empty();
      }
    }
  }

  /** Group 0 stopped (its store is closed) after applying `applied`: open it again. */
  async reopen(applied: number): Promise<void> {
    this.floor = Math.max(this.floor, applied);
    this.meta.state = MetadataState.empty();
    await this.open();
    this.updatePeers();
  }

  private async start(store: GroupStore, opened: OpenedState): Promise<void> {
    const c = this.ctx.o.config;
    const fresh = opened.hardState === undefined && opened.snapshot === undefined && store.lastIndex() === 0;
    let conf: ConfState = { voters: [], learners: [] };
    // A group being repaired learns its log from the leader, entry 1 included.
    if (fresh && !c.join && opened.lostEntries === undefined) {
      // A new cluster: every initial node writes the same entries 1 and 2, so they agree on
      // them without an election. Entry 1 is the configuration (the initial members as
      // voters) and entry 2 the first catalog. The configuration is a config entry of the
      // log like any later one, so a node that gets the log from a leader — a wiped node
      // rejoining — learns that it is a voter from the log itself.
      const cmd: MetaCommand = {
        type: 'bootstrap',
        clusterId: c.clusterId,
        // Kafka addresses only when set, so a cluster without them writes entry 2 as before.
        members: c.members.map((m) => ({
          id: m.id,
          apiAddress: m.apiAddress,
          peerAddress: m.peerAddress,
          ...(m.kafkaAddress ? { kafkaAddress: m.kafkaAddress } : {}),
        })),
      };
      const voters = c.members.map((m) => m.id).sort((a, b) => a - b);
      store.write({
        truncateFrom: undefined,
        entries: [
          { index: 1, term: 1, type: 'config', data: encodeConfState({ voters, learners: [] }) },
          { index: 2, term: 1, type: 'normal', data: encodeMetaEntry(this.ctx.o.core, cmd) },
        ],
      });
      store.setHardState({ term: 1, vote: 0, commit: 2 });
      await store.sync();
      opened.hardState = { term: 1, vote: 0, commit: 2 };
    }
    if (opened.snapshot !== undefined) {
      conf = opened.snapshot.conf;
      this.meta.restore(opened.snapshot, opened.snapshotState!);
    } else if (store.lastIndex() >= 1) {
      // A log from before the configuration entry: entry 1 was the bootstrap command, and
      // the configuration before it the initial members it names. (A node that rejoins such
      // a cluster learns it only at its next start: new clusters write entry 1 as above.)
      const first = store.entries(1, 2, Number.MAX_SAFE_INTEGER)[0]!;
      if (first.type === 'normal') {
        const cmd = decodeMetaEntry(this.ctx.o.core, first.data);
        if (cmd.type === 'bootstrap')
          conf = { voters: cmd.members.map((m) => m.id).sort((a, b) => a - b), learners: [] };
      }
    }
    const lostEntries = await this.repairs.lostEntriesAtStart(METADATA_GROUP, store, opened, fresh);
    const group = new RaftGroup(METADATA_GROUP, this.runtime.host, store, this.meta, {
      conf,
      hardState: opened.hardState,
      applied: opened.snapshot?.index ?? 0,
      snapshot: opened.snapshot,
      partialSnapshot: opened.partialSnapshot,
      lostEntries,
      random: () => this.ctx.o.random.next(),
      options: this.ctx.raftOptions(),
    });
    this.meta.group = group;
    this.runtime.add(group);
  }

  private applied(cmd: MetaCommand | null, index: number): void {
    this.repairs.catalogApplied(index, () => this.meta.state.catalog().nextGroupId);
    if (this.floor > 0 && index >= this.floor) {
      this.floor = 0;
      this.placementChanged();
    }
    if (cmd === null) {
      this.updatePeers();
      this.placementChanged();
      return;
    }
    switch (cmd.type) {
      case 'bootstrap':
      case 'addMember':
      case 'forgetMember':
      case 'setMemberState':
        this.updatePeers();
        break;
      case 'createStream':
      case 'deleteStream':
      case 'removeMember':
      case 'setReplicas':
        this.updatePeers();
        this.placementChanged();
        break;
      case 'allocateProducerIds':
        break;
    }
  }

  /** Peer addresses: every member of the catalog, or the configured ones until the catalog is known. */
  updatePeers(): void {
    const peers = new Map<NodeId, string>();
    if (this.meta.state.clusterId === '')
      for (const m of this.ctx.o.config.members) peers.set(m.id, m.peerAddress);
    for (const m of this.meta.state.memberList()) peers.set(m.id, m.peerAddress);
    peers.delete(this.ctx.id);
    this.ctx.o.transport.setPeers(peers);
  }

  /** A member's API address, '' when the catalog does not know it. */
  addressOf(id: NodeId): string {
    return this.meta.state.member(id)?.apiAddress ?? '';
  }

  notLeader(): CairnError {
    const leader = this.meta.group.leader;
    return notLeader('the metadata group', leader, leader === 0 ? '' : this.addressOf(leader));
  }

  /** Proposes a catalog command on the group-0 leader and resolves with its applied result. */
  async propose(cmd: MetaCommand): Promise<MetaResult> {
    const g = this.meta.group;
    if (!g.isLeader) throw this.notLeader();
    const { result, applied } = g.propose([encodeMetaEntry(this.ctx.o.core, cmd)]);
    if (!result.ok) {
      if (result.reason === 'notLeader' || result.reason === 'transferring') throw this.notLeader();
      throw unavailable(`the metadata group refused the change: ${result.reason}`);
    }
    return (await this.ctx.timeout(
      applied[0]!,
      this.ctx.o.config.limits.requestTimeoutMs,
      'the metadata change',
    )) as MetaResult;
  }

  /** As propose; a refused command's error is thrown. */
  async proposeOk(cmd: MetaCommand): Promise<MetaResult & { ok: true }> {
    const r = await this.propose(cmd);
    if (!r.ok) throw r.error;
    return r;
  }

  /** The stream, confirmed with group 0 (ReadIndex) before saying it does not exist. */
  async findStream(name: string): Promise<StreamMeta> {
    if (typeof name !== 'string' || name === '') throw invalidRequest('a stream name is required');
    let s = this.meta.state.stream(name);
    if (s === undefined) {
      // Maybe created a moment ago and not applied here yet.
      let confirmed = true;
      try {
        await this.meta.group.readIndex(this.ctx.o.config.limits.requestTimeoutMs);
      } catch {
        confirmed = false;
      }
      s = this.meta.state.stream(name);
      // STREAM_NOT_FOUND is final for a client; without a quorum to confirm it (e.g. a node
      // just restarted, behind on the catalog) this node cannot know.
      if (s === undefined && !confirmed)
        throw unavailable(`cannot confirm whether stream '${name}' exists right now; retry`);
    }
    if (s === undefined) throw streamNotFound(name);
    return s;
  }
}
