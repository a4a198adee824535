// The metadata state machine: Raft group 0's state, held by every node. It is the
// cluster's catalog — members, streams, partitions and where they live — and the source
// of cluster-wide unique numbers (group ids, producer ids).
//
// Apply is deterministic: a command carries every decision (the leader chose placement
// when it proposed), and apply only checks and records. Two racing commands are both
// committed in some order; the second may then fail its checks at apply time (e.g. a
// second "create stream" of the same name), which is its outcome, the same on every node.
import { Packr } from 'msgpackr';
import type { Core } from '../../../core-wasm/src/index.js';
import { CairnError } from '../errors.js';

export type NodeId = number;
export type MemberState = 'joining' | 'active' | 'leaving';

export interface Member {
  id: NodeId;
  apiAddress: string;
  peerAddress: string;
  /** host:port Kafka clients reach it at (its advertised Kafka address), when it has one. */
  kafkaAddress?: string;
  state: MemberState;
}

export interface StreamConfig {
  partitions: number;
  replicationFactor: number;
  /** 0 = unlimited. */
  retentionBytes: number;
  /** 0 = unlimited. */
  retentionMs: number;
  compacted: boolean;
  deleteRetentionMs: number;
  /** 0 = the server's default. */
  segmentBytes: number;
}

export interface PartitionMeta {
  /** The Raft group holding this partition: unique for the cluster's life, never reused. */
  groupId: number;
  /**
   * The replicas the partition should have. The partition group's own Raft configuration
   * converges to this set (the partition leader adds and removes members, node/reconcile.ts).
   */
  replicas: NodeId[];
  /** The replicas it was created with: they bootstrap the group with this configuration. */
  initialReplicas: NodeId[];
}

export interface StreamMeta {
  name: string;
  config: StreamConfig;
  partitions: PartitionMeta[];
}

export interface Catalog {
  clusterId: string;
  members: Member[];
  streams: StreamMeta[];
  nextGroupId: number;
  nextProducerId: number;
}

/**
 * Commands of group 0: msgpackr-encoded, each the value of the single record of a record
 * batch (storage stores every normal entry as a batch; see encodeMetaEntry).
 */
export type MetaCommand =
  /** Entry 1 of a new cluster, written identically by every initial node: the first catalog. */
  | { type: 'bootstrap'; clusterId: string; members: Omit<Member, 'state'>[] }
  | { type: 'createStream'; name: string; config: StreamConfig; placement: NodeId[][] }
  | { type: 'deleteStream'; name: string }
  | { type: 'addMember'; id: NodeId; apiAddress: string; peerAddress: string }
  | { type: 'setMemberState'; id: NodeId; state: MemberState }
  /** Marks a member leaving and moves its partitions: `moves` gives each affected partition's new replicas. */
  | { type: 'removeMember'; id: NodeId; moves: PartitionMove[] }
  /** Deletes a member that has left group 0 (its address is no longer needed). */
  | { type: 'forgetMember'; id: NodeId }
  | { type: 'setReplicas'; stream: string; partition: number; replicas: NodeId[] }
  | { type: 'allocateProducerIds'; count: number };

export interface PartitionMove {
  stream: string;
  partition: number;
  replicas: NodeId[];
}

/** What applying a command produced: its value, or the typed reason it changed nothing. */
export type MetaResult =
  | { ok: true; value: StreamMeta | Member | number | null }
  | { ok: false; error: CairnError };

/** First group id handed to a partition; 0 is the metadata group. */
export const FIRST_PARTITION_GROUP_ID = 1;
/** Producer ids start at 1 so that 0 and -1 never look like an allocated id. */
export const FIRST_PRODUCER_ID = 1;
/** Ids handed out by one allocateProducerIds command, at most. */
export const MAX_PRODUCER_ID_BLOCK = 1_000;

export const STREAM_NAME = /^[A-Za-z0-9._-]+$/;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export class MetadataState {
  private readonly members = new Map<NodeId, Member>();
  private readonly streams = new Map<string, StreamMeta>();
  private nextGroupId = FIRST_PARTITION_GROUP_ID;
  private nextProducerId = FIRST_PRODUCER_ID;

  private constructor(public clusterId: string) {}

  /** The state before entry 1: no cluster yet (a joining node until it learns the catalog). */
  static empty(): MetadataState {
    return new MetadataState('');
  }

  /** The catalog a new cluster starts with: its initial members, all active, no streams. */
  static bootstrap(clusterId: string, members: Omit<Member, 'state'>[]): MetadataState {
    const s = MetadataState.empty();
    s.apply({ type: 'bootstrap', clusterId, members });
    return s;
  }

  static fromCatalog(c: Catalog): MetadataState {
    const s = new MetadataState(c.clusterId);
    for (const m of c.members) s.members.set(m.id, { ...m });
    for (const st of c.streams) s.streams.set(st.name, structuredClone(st));
    s.nextGroupId = c.nextGroupId;
    s.nextProducerId = c.nextProducerId;
    return s;
  }

  catalog(): Catalog {
    return {
      clusterId: this.clusterId,
      members: [...this.members.values()].map((m) => ({ ...m })),
      streams: [...this.streams.values()].map((s) => structuredClone(s)),
      nextGroupId: this.nextGroupId,
      nextProducerId: this.nextProducerId,
    };
  }

  member(id: NodeId): Member | undefined {
    return this.members.get(id);
  }

  memberList(): Member[] {
    return [...this.members.values()];
  }

  stream(name: string): StreamMeta | undefined {
    return this.streams.get(name);
  }

  streamList(): StreamMeta[] {
    return [...this.streams.values()];
  }

  partitionCount(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.partitions.length;
    return n;
  }

  /** The stream and partition a group holds, if it is a live partition group. */
  partitionOfGroup(groupId: number): { stream: StreamMeta; partition: number } | undefined {
    for (const s of this.streams.values()) {
      const i = s.partitions.findIndex((p) => p.groupId === groupId);
      if (i >= 0) return { stream: s, partition: i };
    }
    return undefined;
  }

  apply(cmd: MetaCommand): MetaResult {
    switch (cmd.type) {
      case 'bootstrap': {
        if (this.clusterId !== '')
          return fail(new CairnError('INTERNAL', 'the cluster is already bootstrapped'));
        this.clusterId = cmd.clusterId;
        for (const m of [...cmd.members].sort((a, b) => a.id - b.id))
          this.members.set(m.id, { ...m, state: 'active' });
        return ok(null);
      }
      case 'createStream':
        return this.createStream(cmd.name, cmd.config, cmd.placement);
      case 'deleteStream': {
        if (!this.streams.delete(cmd.name)) return fail(streamNotFound(cmd.name));
        return ok(null);
      }
      case 'addMember': {
        const existing = this.members.get(cmd.id);
        if (existing !== undefined) {
          // Adding the same node again is a retry of the same request: it succeeds.
          if (existing.apiAddress === cmd.apiAddress && existing.peerAddress === cmd.peerAddress)
            return ok(existing);
          return fail(
            new CairnError('INVALID_REQUEST', `node ${cmd.id} is already a member with other addresses`),
          );
        }
        const m: Member = {
          id: cmd.id,
          apiAddress: cmd.apiAddress,
          peerAddress: cmd.peerAddress,
          state: 'joining',
        };
        this.members.set(m.id, m);
        return ok(m);
      }
      case 'setMemberState': {
        const m = this.members.get(cmd.id);
        if (m === undefined) return fail(new CairnError('INVALID_REQUEST', `node ${cmd.id} is not a member`));
        m.state = cmd.state;
        return ok(m);
      }
      case 'removeMember': {
        const m = this.members.get(cmd.id);
        if (m === undefined) return fail(new CairnError('INVALID_REQUEST', `node ${cmd.id} is not a member`));
        for (const mv of cmd.moves) {
          const p = this.streams.get(mv.stream)?.partitions[mv.partition];
          if (p === undefined) continue; // deleted since the leader planned the move
          p.replicas = [...mv.replicas];
        }
        m.state = 'leaving';
        return ok(m);
      }
      case 'forgetMember': {
        if (!this.members.delete(cmd.id))
          return fail(new CairnError('INVALID_REQUEST', `node ${cmd.id} is not a member`));
        return ok(null);
      }
      case 'setReplicas': {
        const p = this.streams.get(cmd.stream)?.partitions[cmd.partition];
        if (p === undefined) return fail(streamNotFound(cmd.stream));
        p.replicas = [...cmd.replicas];
        return ok(null);
      }
      case 'allocateProducerIds': {
        const first = this.nextProducerId;
        this.nextProducerId += cmd.count;
        return ok(first);
      }
    }
  }

  private createStream(name: string, config: StreamConfig, placement: NodeId[][]): MetaResult {
    if (this.streams.has(name))
      return fail(new CairnError('STREAM_EXISTS', `stream '${name}' already exists`));
    if (placement.length !== config.partitions) {
      return fail(
        new CairnError(
          'INTERNAL',
          `placement has ${placement.length} partitions, config ${config.partitions}`,
        ),
      );
    }
    const stream: StreamMeta = {
      name,
      config: { ...config },
      partitions: placement.map((replicas) => ({
        groupId: this.nextGroupId++,
        replicas: [...replicas],
        initialReplicas: [...replicas],
      })),
    };
    this.streams.set(name, stream);
    return ok(structuredClone(stream));
  }
}

const ok = (value: StreamMeta | Member | number | null): MetaResult => ({ ok: true, value });
const fail = (error: CairnError): MetaResult => ({ ok: false, error });

export function streamNotFound(name: string): CairnError {
  return new CairnError('STREAM_NOT_FOUND', `stream '${name}' does not exist`);
}

// --- placement (decided by the leader when it proposes) ---------------------------------

/**
 * Chooses replicas for `partitions` new partitions: `rf` distinct active members each,
 * spreading load — each pick goes to the member holding the fewest replicas so far (ties
 * to the lower id). Members `live` says the leader hears from are preferred: when enough
 * of them are live, only they are chosen (a partition placed on dead nodes could not
 * elect a leader). Deterministic in the catalog and `live`.
 */
export function placeReplicas(
  state: MetadataState,
  partitions: number,
  rf: number,
  live: (id: NodeId) => boolean = () => true,
): NodeId[][] {
  const active = state
    .memberList()
    .filter((m) => m.state === 'active')
    .map((m) => m.id);
  if (rf > active.length) {
    throw new CairnError('INVALID_REQUEST', `replication factor ${rf} exceeds ${active.length} active nodes`);
  }
  const alive = active.filter(live);
  const candidates = alive.length >= rf ? alive : active;
  const load = replicaLoad(state);
  const out: NodeId[][] = [];
  for (let p = 0; p < partitions; p++) {
    const chosen: NodeId[] = [];
    for (let r = 0; r < rf; r++) {
      const pick = leastLoaded(
        candidates.filter((id) => !chosen.includes(id)),
        load,
      );
      chosen.push(pick);
      load.set(pick, (load.get(pick) ?? 0) + 1);
    }
    out.push(chosen);
  }
  return out;
}

/**
 * New replicas for every partition on `leaving`: the leaving node is replaced by the least
 * loaded active member not already a replica, a live one (when `live` knows) if there is
 * one for that partition; only when no active member is free does the partition keep its
 * other replicas (it shrinks rather than failing the removal). A member that is merely not
 * heard from right now still beats shrinking: a 3-replica group cut to two voters
 * tolerates no failure (simulator seed 60033: the only free member was paused).
 */
export function planRemoval(
  state: MetadataState,
  leaving: NodeId,
  live: (id: NodeId) => boolean = () => true,
): PartitionMove[] {
  const active = state
    .memberList()
    .filter((m) => m.state === 'active' && m.id !== leaving)
    .map((m) => m.id);
  const load = replicaLoad(state);
  const moves: PartitionMove[] = [];
  for (const s of state.streamList()) {
    s.partitions.forEach((p, i) => {
      if (!p.replicas.includes(leaving)) return;
      // Replacements must be able to catch up: live members first, any active one otherwise
      // — judged per partition, since a member live elsewhere may already be a replica here.
      const anyFree = active.filter((id) => !p.replicas.includes(id));
      const liveFree = anyFree.filter(live);
      const free = liveFree.length > 0 ? liveFree : anyFree;
      const replicas = p.replicas.filter((id) => id !== leaving);
      if (free.length > 0) {
        const pick = leastLoaded(free, load);
        load.set(pick, (load.get(pick) ?? 0) + 1);
        replicas.push(pick);
      }
      if (replicas.length > 0) moves.push({ stream: s.name, partition: i, replicas });
    });
  }
  return moves;
}

function replicaLoad(state: MetadataState): Map<NodeId, number> {
  const load = new Map<NodeId, number>();
  for (const s of state.streamList()) {
    for (const p of s.partitions) for (const id of p.replicas) load.set(id, (load.get(id) ?? 0) + 1);
  }
  return load;
}

function leastLoaded(ids: NodeId[], load: Map<NodeId, number>): NodeId {
  let best = ids[0]!;
  for (const id of ids) {
    const a = load.get(id) ?? 0;
    const b = load.get(best) ?? 0;
    if (a < b || (a === b && id < best)) best = id;
  }
  return best;
}

// --- encoding -------------------------------------------------------------------------

export function encodeMetaCommand(cmd: MetaCommand): Uint8Array {
  return packr.pack(cmd);
}

/**
 * A command as the data of a group-0 entry: a record batch whose one record's value is
 * the command. Timestamps are 0 so that every node encodes the same command to the same
 * bytes (the bootstrap entry is written by every initial node on its own).
 */
export function encodeMetaEntry(core: Core, cmd: MetaCommand): Uint8Array {
  return core.encodeBatch([{ value: encodeMetaCommand(cmd), timestamp: 0 }], { baseTimestamp: 0 });
}

export function decodeMetaEntry(core: Core, batch: Uint8Array): MetaCommand {
  const [record] = core.decodeRecords(batch);
  if (record?.value == null) throw new Error('metadata entry holds no command');
  return decodeMetaCommand(record.value);
}

/**
 * Decodes a committed command. The log holds only what a leader proposed, so a failure
 * here means corruption or a version mismatch; the caller treats it as fatal for the group.
 */
export function decodeMetaCommand(bytes: Uint8Array): MetaCommand {
  const v = packr.unpack(bytes) as MetaCommand;
  if (typeof v !== 'object' || v === null || typeof (v as { type?: unknown }).type !== 'string') {
    throw new Error('metadata command is not an object with a type');
  }
  return v;
}

export function encodeCatalog(c: Catalog): Uint8Array {
  return packr.pack(c);
}

export function decodeCatalog(bytes: Uint8Array): Catalog {
  const c = packr.unpack(bytes) as Catalog;
  if (typeof c !== 'object' || c === null || !Array.isArray(c.members) || !Array.isArray(c.streams)) {
    throw new Error('metadata snapshot is not a catalog');
  }
  return c;
}
