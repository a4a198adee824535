// GroupStore over node/storage's segmented log (GroupStorage) and its snapshot streams,
// and the StoreProvider that lays groups out under the data directory:
//
//   <data>/groups/<groupId>/          one GroupStorage per Raft group (0 = metadata)
//   <data>/groups/<groupId>.repair    present while the group waits for repair (DESIGN §6)
//
// Everything goes through the FileSystem seam, so the simulator can run it on its
// in-memory file system with crash semantics.
import type { Core, CorePool } from '../../../core-wasm/src/index.js';
import type { ConfState, HardState, LogWrite, SnapshotMeta } from '../../../raft/src/index.js';
import type { Logger } from '../ops/log.js';
import {
  dirName,
  type FileSystem,
  GroupStorage,
  joinPath,
  makeDirsDurable,
  removeIfExists,
  removeTree,
  removeTreeIfPossible,
  type SnapshotReader,
  type SnapshotWriter,
  StorageError,
  type StorageOptions,
} from '../storage/index.js';
import { loadRepairMarker, writeRepairMarker } from './repair-marker.js';
import {
  type GroupStore,
  type OpenedState,
  SnapshotRejected,
  StoreCorruption,
  type StoreProvider,
} from './store.js';

const METADATA_GROUP = 0;

const sameSnapshot = (a: SnapshotMeta, b: { index: number; term: number }) =>
  a.index === b.index && a.term === b.term;

/** Read size when the leader verifies the data under a snapshot before sending it. */
const SNAPSHOT_VERIFY_READ_BYTES = 1024 * 1024;

const isCorrupt = (e: unknown) => e instanceof StorageError && e.code === 'CORRUPT';

/** Storage's CORRUPT (a read failed validation after its retries) as the node's StoreCorruption. */
function asCorruption(e: unknown): unknown {
  return isCorrupt(e) ? new StoreCorruption((e as Error).message, e) : e;
}

export class SegmentGroupStore implements GroupStore {
  /**
   * node/storage's entry codec (entry-codec.ts) still refuses a control batch as a normal
   * entry and reads an unknown control type back as corruption, so consumer-offset commits
   * (control type 102) cannot be stored yet; CommitOffset answers UNAVAILABLE until it can.
   */
  /** The snapshot we send to followers, open (its segments pinned) while it is current. */
  private outgoing: { meta: SnapshotMeta; reader: SnapshotReader } | undefined;
  /** The snapshot being received, with the chain of its chunk writes. */
  private incoming:
    | {
        meta: SnapshotMeta;
        writer: Promise<SnapshotWriter>;
        chain: Promise<void>;
        /** Why the stream refused a chunk (peer input): the install is refused. */
        refused?: StorageError;
      }
    | undefined;
  /** Serializes sync() so that its promises resolve in call order. */
  private lastSync: Promise<void> = Promise.resolve();

  constructor(
    readonly storage: GroupStorage,
    private readonly fs: FileSystem,
    private readonly core: Core,
    private readonly repairPath: string,
    private readonly dropSegmentsOnSnapshot: boolean,
    private readonly log: Logger,
  ) {}

  /**
   * The repair marker's index, undefined when there is none. One that fails its CRC still
   * says entries were lost: the bound then is the most this node knows of its own log (its
   * last index and recorded commit), the same loss of unknown extent as unreadable damage.
   */
  private async loadMarker(hs: HardState): Promise<number | undefined> {
    const m = await loadRepairMarker(this.fs, this.core, this.repairPath);
    if (m.kind === 'absent') return undefined;
    if (m.kind === 'ok') return m.lastIndexBeforeRepair;
    const bound = Math.max(this.storage.lastIndex(), hs.commit, 1);
    this.log.warn(
      { file: this.repairPath, why: m.why, lastIndexBeforeRepair: bound },
      'the repair marker is unreadable: the group still waits for repair, to the last index it knows of',
    );
    await writeRepairMarker(this.fs, this.core, this.repairPath, bound);
    return bound;
  }

  /** Leftovers a FUSE or NFS remnant of an open file keeps for now: the next recovery removes them. */
  logKept(kept: readonly string[]): void {
    this.log.info(
      { dir: this.storage.dir, kept },
      'leftovers still hold a file open elsewhere (a FUSE or NFS remnant): removed at the next recovery',
    );
  }

  /** What storage (and the repair marker) say at open. */
  async opened(possibleLoss: number | undefined): Promise<OpenedState> {
    const s = this.storage;
    let hs = s.hardState();
    // The log and the hard state are written in parallel and fsynced separately, so after
    // a power loss the log may hold entries of a term the hard state never reached. Those
    // entries were never acknowledged (acks wait for both), and no vote in that term was
    // durable either (a vote is sent only once persisted): taking the log's term with no
    // vote is what the node durably knows. (The Raft core refuses a log term beyond the
    // hard state's.)
    const lastTerm = s.term(s.lastIndex()) ?? 0;
    if (lastTerm > hs.term) hs = { term: lastTerm, vote: 0, commit: hs.commit };
    const hardState = hs.term === 0 && hs.vote === 0 && hs.commit === 0 ? undefined : hs;
    let lost = await this.loadMarker(hs);
    if (possibleLoss !== undefined) {
      // Storage cut the log at damage: entries this node acknowledged may be gone. The node
      // must catch up from a leader past everything it may have acknowledged: at least the
      // kept prefix and the commit index it had recorded. When the damage took both (an
      // unreadable hard state or manifest: nothing left to say how far it was), at least
      // entry 1, as for a wiped disk: 0 would mean "nothing to repair", and the node would
      // vote with a log it knows is not what it acknowledged. (Even so the extent of the
      // loss is unknown; see the simulator's open findings.)
      lost = Math.max(lost ?? 0, possibleLoss, hs.commit, 1);
      await writeRepairMarker(this.fs, this.core, this.repairPath, lost);
    }
    let snapshot: SnapshotMeta | undefined;
    let snapshotState: Uint8Array | undefined;
    const sm = s.snapshotMeta();
    if (sm.index > 0) {
      // A snapshot state that fails its CRC is damage (StoreCorruption): the caller resets.
      const rethrow = (e: unknown): never => {
        throw asCorruption(e);
      };
      const loaded = await s.loadSnapshot().catch(rethrow);
      const reader = await s.openSnapshotReader().catch(rethrow);
      snapshot = { ...loaded.meta, size: reader.size };
      this.outgoing = { meta: snapshot, reader };
      snapshotState = loaded.state ?? new Uint8Array(0);
    }
    return {
      hardState,
      snapshot,
      snapshotState,
      partialSnapshot: undefined,
      lostEntries: lost === undefined ? undefined : { lastIndexBeforeRepair: lost },
    };
  }

  firstIndex(): number {
    return this.storage.firstIndex();
  }
  lastIndex(): number {
    return this.storage.lastIndex();
  }
  term(index: number): number | undefined {
    return this.storage.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number) {
    try {
      return this.storage.entries(lo, hi, maxBytes);
    } catch (e) {
      throw asCorruption(e);
    }
  }

  write(w: LogWrite): void {
    if (w.truncateFrom !== undefined) this.storage.truncateSuffix(w.truncateFrom);
    if (w.entries.length > 0) this.storage.append(w.entries);
  }

  setHardState(hs: HardState): void {
    this.storage.setHardState(hs);
  }

  sync(): Promise<void> {
    const chain = this.incoming?.chain ?? Promise.resolve();
    const p = Promise.all([this.lastSync, this.storage.sync(), chain]).then(() => {});
    this.lastSync = p.catch(() => {});
    return p;
  }

  logStartOffset(): number {
    return this.storage.logStartOffset();
  }

  nextOffset(): number {
    return this.storage.nextOffset();
  }

  async read(offset: number, endOffset: number, maxBytes: number): Promise<Uint8Array> {
    try {
      return (await this.storage.read(offset, { maxBytes, endOffset })).bytes;
    } catch (e) {
      throw asCorruption(e);
    }
  }

  async takeSnapshot(index: number, term: number, conf: ConfState, state: Uint8Array): Promise<SnapshotMeta> {
    await this.storage.saveSnapshot({ index, term, conf }, state, {
      dropSegments: this.dropSegmentsOnSnapshot,
    });
    const reader = await this.storage.openSnapshotReader();
    const meta: SnapshotMeta = { index, term, conf, size: reader.size };
    const old = this.outgoing;
    this.outgoing = { meta, reader };
    await old?.reader.close();
    return meta;
  }

  async readSnapshotChunk(
    meta: SnapshotMeta,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    if (this.outgoing === undefined || !sameSnapshot(this.outgoing.meta, meta)) {
      // After an install or a restart the snapshot on disk may be the one asked for.
      const sm = this.storage.snapshotMeta();
      if (!sameSnapshot(meta, sm)) return undefined;
      const reader = await this.storage.openSnapshotReader().catch((e) => {
        throw asCorruption(e);
      });
      const old = this.outgoing;
      this.outgoing = { meta: { ...meta, size: reader.size }, reader };
      await old?.reader.close();
    }
    const o = this.outgoing!;
    if (o.reader.size !== meta.size || offset + length > o.reader.size) return undefined;
    if (offset === 0) await this.verifySnapshotData();
    try {
      return await o.reader.read(offset, length);
    } catch (e) {
      throw asCorruption(e);
    }
  }

  /**
   * The snapshot stream carries the data segments as stored, unvalidated: before a transfer
   * starts, the leader reads its records under the snapshot back through validated reads,
   * so that damage there is found here (and repaired) instead of being sent to a follower
   * that can only refuse it, again and again. One read of the partition per transfer.
   */
  private async verifySnapshotData(): Promise<void> {
    const end = this.storage.snapshotMeta().lastOffset + 1;
    for (let at = this.storage.logStartOffset(); at < end; ) {
      let next: number;
      try {
        next = (await this.storage.read(at, { maxBytes: SNAPSHOT_VERIFY_READ_BYTES, endOffset: end }))
          .nextOffset;
      } catch (e) {
        if (isCorrupt(e)) throw asCorruption(e);
        return; // e.g. retention moved the start meanwhile: the transfer goes on, the follower checks it
      }
      if (next <= at) return;
      at = next;
    }
  }

  snapshotToSend(): SnapshotMeta | undefined {
    const o = this.outgoing;
    return o !== undefined && sameSnapshot(o.meta, this.storage.snapshotMeta()) ? o.meta : undefined;
  }

  writeSnapshotChunk(meta: SnapshotMeta, offset: number, data: Uint8Array, _done: boolean): void {
    // A stream of another size is another transfer (the leader's stream changed: see snapshotToSend).
    if (
      this.incoming === undefined ||
      !sameSnapshot(this.incoming.meta, meta) ||
      this.incoming.meta.size !== meta.size
    )
      this.discardPartialSnapshot(meta);
    const inc = this.incoming ?? this.startIncoming(meta);
    // The core hands chunks in order; copy, since the bytes may be a view of a network frame.
    const chunk = Uint8Array.from(data);
    inc.chain = inc.chain.then(async () => {
      if (inc.refused !== undefined) return; // the writer may not exist
      try {
        await (await inc.writer).write(offset, chunk);
      } catch (e) {
        // A chunk the stream cannot take is peer input: refused at install, not a disk failure.
        if (!(e instanceof StorageError && e.code === 'BAD_SNAPSHOT')) throw e;
        inc.refused = e;
      }
    });
  }

  private startIncoming(meta: SnapshotMeta) {
    const previous = this.incoming;
    const writer = (previous?.chain ?? Promise.resolve()).then(() => this.storage.receiveSnapshot(meta));
    const inc: NonNullable<SegmentGroupStore['incoming']> = { meta, writer, chain: Promise.resolve() };
    inc.chain = writer.then(
      () => {},
      (e) => {
        // Metadata the stream refuses (e.g. too small a size) is peer input too.
        if (!(e instanceof StorageError && e.code === 'BAD_SNAPSHOT')) throw e;
        inc.refused = e;
      },
    );
    this.incoming = inc;
    return inc;
  }

  discardPartialSnapshot(_meta: SnapshotMeta): void {
    const inc = this.incoming;
    if (inc === undefined) return;
    this.incoming = undefined;
    const aborted = inc.chain.then(async () => (await inc.writer).abort());
    // The next receiver starts after the abort.
    this.lastSync = Promise.all([this.lastSync, aborted.catch(() => {})]).then(() => {});
  }

  async installSnapshot(meta: SnapshotMeta): Promise<Uint8Array> {
    const inc = this.incoming;
    if (inc === undefined || !sameSnapshot(inc.meta, meta))
      throw new Error(`snapshot ${meta.index} was not being received`);
    this.incoming = undefined;
    try {
      await inc.chain;
      if (inc.refused !== undefined) throw inc.refused;
      const report = await (await inc.writer).finish();
      if (report.kept.length > 0) this.logKept(report.kept);
    } catch (e) {
      // The stream failed its checks (BAD_SNAPSHOT), or what it holds did not read back
      // (CORRUPT): before the manifest switch, so the old log stands. The partial stream
      // goes; the leader sends the snapshot again. A failed write (FAILED) stops the node.
      if (!(e instanceof StorageError) || (e.code !== 'BAD_SNAPSHOT' && !isCorrupt(e))) throw e;
      const aborted = inc.chain.then(async () => (await inc.writer).abort()).catch(() => {});
      this.lastSync = Promise.all([this.lastSync, aborted]).then(() => {});
      throw new SnapshotRejected(`snapshot ${meta.index} (term ${meta.term}) refused: ${e.message}`, e);
    }
    try {
      const loaded = await this.storage.loadSnapshot();
      return loaded.state ?? new Uint8Array(0);
    } catch (e) {
      throw asCorruption(e);
    }
  }

  onDamage(listener: (detail: string) => void): () => void {
    return this.storage.onDamage((d) => listener(`${d.reason} in ${d.file} at ${d.position}: ${d.detail}`));
  }

  async markLostEntries(lastIndexBeforeRepair: number): Promise<void> {
    const have = await this.loadMarker(this.storage.hardState());
    if (have !== undefined && have >= lastIndexBeforeRepair) return;
    await writeRepairMarker(this.fs, this.core, this.repairPath, lastIndexBeforeRepair);
  }

  clearLostEntries(): void {
    // The repair is done: forget the marker and storage's own damage record (either order is
    // safe; a crash between the two costs one more repair, never a forgotten one). The
    // removal is made durable: a marker that a power loss brings back makes a repaired node
    // wait for a repair again, and in a group of two voters there is then no leader to give it.
    void removeIfExists(this.fs, this.repairPath)
      .then(() => this.fs.syncDir(dirName(this.repairPath)))
      .then(() => this.storage.clearDamage())
      .catch(() => {});
  }

  /** Retention by size and age (partitions); only segments below the snapshot go. */
  async applyRetention(maxBytes: number, maxAgeMs: number, nowMs: number): Promise<void> {
    await this.storage.applyRetention({
      maxBytes: maxBytes > 0 ? maxBytes : undefined,
      maxAgeMs: maxAgeMs > 0 ? maxAgeMs : undefined,
      nowMs,
    });
  }

  async compactKeys(deleteRetentionMs: number, nowMs: number): Promise<void> {
    await this.storage.compactKeys({ deleteRetentionMs, nowMs });
  }

  async close(): Promise<void> {
    await this.incoming?.chain.catch(() => {});
    // An aborted transfer (discarded or refused) finishes removing its stream first.
    await this.lastSync;
    await this.outgoing?.reader.close();
    this.outgoing = undefined;
    await this.storage.close();
  }
}

export interface SegmentStoresOptions {
  fs: FileSystem;
  dataDir: string;
  core: Core;
  pool?: CorePool;
  /** Runs storage's group-commit flush at the end of the turn (Clock.defer). */
  schedule(run: () => void): void;
  storage?: Partial<StorageOptions>;
  log: Logger;
}

/** Groups' stores under `<dataDir>/groups/`. */
export function segmentStores(o: SegmentStoresOptions): StoreProvider {
  const groupsDir = joinPath(o.dataDir, 'groups');
  let ready: Promise<void> | undefined;
  const ensureDirs = () =>
    (ready ??= (async () => {
      // Without each new directory's name synced, a power loss could take the whole data
      // directory with it.
      await makeDirsDurable(o.fs, groupsDir);
      await o.fs.syncDir(o.dataDir);
      await sweepRemoved();
    })());
  /** Removes `<groupsDir>/<name>`, or logs why it must wait (the next start or removal tries again). */
  const removeLeftover = async (name: string): Promise<boolean> => {
    const done = await removeTreeIfPossible(o.fs, joinPath(groupsDir, name));
    if (!done)
      o.log.info(
        { dir: joinPath(groupsDir, name) },
        'a removed group directory still holds a file open elsewhere (a FUSE or NFS remnant): removal retried later',
      );
    return done;
  };
  /** `<id>.removed`, or `<id>.removed.<n>` while an earlier one lingers. */
  const freeRemovedName = async (id: string): Promise<string> => {
    for (let n = 0; ; n++) {
      const name = n === 0 ? `${id}.removed` : `${id}.removed.${n}`;
      if (!(await o.fs.exists(joinPath(groupsDir, name))) || (await removeLeftover(name))) return name;
    }
  };
  /** Finishes removals a remnant held up before (at start, and with each removal). */
  const sweepRemoved = async (): Promise<void> => {
    for (const name of await o.fs.list(groupsDir))
      if (/^\d+\.removed(\.\d+)?$/.test(name)) await removeLeftover(name);
  };
  const openStorage = (dir: string, segmentBytes: number | undefined, repair: boolean) =>
    GroupStorage.open({
      fs: o.fs,
      dir,
      core: o.core,
      pool: o.pool,
      options: {
        ...o.storage,
        ...(segmentBytes !== undefined && segmentBytes > 0 ? { segmentBytes } : {}),
        // Tail recovery trusts sealed segments whose index checks out; damage found by a
        // read is somewhere in them, so a repair scans every byte and cuts at the first bad one.
        ...(repair ? { recovery: 'full' as const } : {}),
      },
      schedule: o.schedule,
    });
  return {
    async open(groupId, segmentBytes, options) {
      await ensureDirs();
      const dir = joinPath(groupsDir, String(groupId));
      const repairPath = `${dir}.repair`;
      const dropSegments = groupId === METADATA_GROUP;
      const { storage, report } = await openStorage(dir, segmentBytes, options?.repair === true);
      const damage = report.possibleLoss;
      if (damage !== null) {
        o.log.warn({ group: groupId, damage }, 'storage found damage: this group waits for repair');
      }
      const store = new SegmentGroupStore(storage, o.fs, o.core, repairPath, dropSegments, o.log);
      if (report.kept.length > 0) store.logKept(report.kept);
      // Damage under a partition's snapshot cost records the log no longer holds and the
      // leader will not resend (they are below its log start too): only a whole new
      // snapshot repairs that.
      const lostUnderSnapshot =
        !dropSegments &&
        damage !== null &&
        storage.snapshotMeta().index > 0 &&
        damage.lastOffsetBefore < storage.snapshotMeta().lastOffset;
      try {
        if (lostUnderSnapshot) throw new StoreCorruption(`damage under the snapshot: ${damage.detail}`);
        const opened = await store.opened(damage?.lastIndexBefore);
        return { store, opened };
      } catch (e) {
        if (!(e instanceof StoreCorruption)) throw e;
        // Nothing here can be trusted to rebuild the state machine (a snapshot state that
        // fails its CRC, records lost under the snapshot): start the group over empty and
        // take everything from the leader, as a wiped node does. The marker goes first, so
        // a crash during the reset cannot forget what this node may have acknowledged; the
        // term and vote are kept (a node must not vote twice in a term).
        const hs = storage.hardState();
        const lastIndex = Math.max(storage.lastIndex(), hs.commit, damage?.lastIndexBefore ?? 0, 1);
        o.log.warn(
          { group: groupId, err: e.message, lastIndexBeforeRepair: lastIndex },
          'group data cannot be trusted: starting it over empty, to be repaired from the leader',
        );
        await store.markLostEntries(lastIndex);
        await store.close();
        await removeTree(o.fs, dir);
        await o.fs.syncDir(groupsDir);
        const fresh = await openStorage(dir, segmentBytes, false);
        if (hs.term > 0) {
          fresh.storage.setHardState({ term: hs.term, vote: hs.vote, commit: 0 });
          await fresh.storage.sync();
        }
        const reset = new SegmentGroupStore(fresh.storage, o.fs, o.core, repairPath, dropSegments, o.log);
        return { store: reset, opened: await reset.opened(undefined) };
      }
    },
    async remove(groupId) {
      const dir = joinPath(groupsDir, String(groupId));
      if (await o.fs.exists(dir)) {
        // Renamed out of the groups' namespace first (durably), so a removal that cannot
        // finish yet — a FUSE or NFS remnant of a file still open elsewhere keeps the
        // directory — is never taken for the group after a restart.
        const doomed = await freeRemovedName(String(groupId));
        await o.fs.rename(dir, joinPath(groupsDir, doomed));
        await o.fs.syncDir(groupsDir);
        await removeLeftover(doomed);
      }
      await removeIfExists(o.fs, `${dir}.repair`);
      await o.fs.syncDir(groupsDir);
    },
    async list() {
      await ensureDirs();
      return (await o.fs.list(groupsDir)).filter((n) => /^\d+$/.test(n)).map(Number);
    },
  };
}
