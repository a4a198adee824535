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
import type { StoreProvider } from '../cairn-node.js';
import type { Logger } from '../ops/log.js';
import {
  dirName,
  type FileSystem,
  FsError,
  GroupStorage,
  joinPath,
  readFile,
  removeTree,
  type SnapshotReader,
  type SnapshotWriter,
  type StorageOptions,
  writeFileAtomic,
} from '../storage/index.js';
import type { GroupStore, OpenedState } from './store.js';

const METADATA_GROUP = 0;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

async function removeIfExists(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.remove(path);
  } catch (e) {
    if (!(e instanceof FsError && e.code === 'NOT_FOUND')) throw e;
  }
}

const sameSnapshot = (a: SnapshotMeta, b: { index: number; term: number }) =>
  a.index === b.index && a.term === b.term;

export class SegmentGroupStore implements GroupStore {
  /**
   * node/storage's entry codec (entry-codec.ts) still refuses a control batch as a normal
   * entry and reads an unknown control type back as corruption, so consumer-offset commits
   * (control type 102) cannot be stored yet; CommitOffset answers UNAVAILABLE until it can.
   */
  /** The snapshot we send to followers, open (its segments pinned) while it is current. */
  private outgoing: { meta: SnapshotMeta; reader: SnapshotReader } | undefined;
  /** The snapshot being received, with the chain of its chunk writes. */
  private incoming: { meta: SnapshotMeta; writer: Promise<SnapshotWriter>; chain: Promise<void> } | undefined;
  /** Serializes sync() so that its promises resolve in call order. */
  private lastSync: Promise<void> = Promise.resolve();

  constructor(
    readonly storage: GroupStorage,
    private readonly fs: FileSystem,
    private readonly repairPath: string,
    private readonly dropSegmentsOnSnapshot: boolean,
  ) {}

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
    let lost: number | undefined;
    const marker = await readFile(this.fs, this.repairPath);
    if (marker !== null) {
      const v = Number(utf8Decoder.decode(marker));
      if (Number.isSafeInteger(v) && v >= 0) lost = v;
    }
    if (possibleLoss !== undefined) {
      // Storage cut the log at damage: entries this node acknowledged may be gone. The node
      // must catch up from a leader past everything it may have acknowledged: at least the
      // kept prefix and the commit index it had recorded. When the damage took both (an
      // unreadable hard state or manifest: nothing left to say how far it was), at least
      // entry 1, as for a wiped disk: 0 would mean "nothing to repair", and the node would
      // vote with a log it knows is not what it acknowledged. (Even so the extent of the
      // loss is unknown; see the simulator's open findings.)
      lost = Math.max(lost ?? 0, possibleLoss, hs.commit, 1);
      await writeFileAtomic(this.fs, this.repairPath, utf8.encode(String(lost)));
    }
    let snapshot: SnapshotMeta | undefined;
    let snapshotState: Uint8Array | undefined;
    const sm = s.snapshotMeta();
    if (sm.index > 0) {
      const loaded = await s.loadSnapshot();
      const reader = await s.openSnapshotReader();
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
    return this.storage.entries(lo, hi, maxBytes);
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
    return (await this.storage.read(offset, { maxBytes, endOffset })).bytes;
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
      const reader = await this.storage.openSnapshotReader();
      const old = this.outgoing;
      this.outgoing = { meta: { ...meta, size: reader.size }, reader };
      await old?.reader.close();
    }
    const o = this.outgoing!;
    if (o.reader.size !== meta.size || offset + length > o.reader.size) return undefined;
    return o.reader.read(offset, length);
  }

  writeSnapshotChunk(meta: SnapshotMeta, offset: number, data: Uint8Array, _done: boolean): void {
    if (this.incoming === undefined || !sameSnapshot(this.incoming.meta, meta))
      this.discardPartialSnapshot(meta);
    const inc = this.incoming ?? this.startIncoming(meta);
    // The core hands chunks in order; copy, since the bytes may be a view of a network frame.
    const chunk = Uint8Array.from(data);
    inc.chain = inc.chain.then(async () => (await inc.writer).write(offset, chunk));
  }

  private startIncoming(meta: SnapshotMeta) {
    const previous = this.incoming;
    const writer = (previous?.chain ?? Promise.resolve()).then(() => this.storage.receiveSnapshot(meta));
    this.incoming = { meta, writer, chain: writer.then(() => {}) };
    return this.incoming;
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
    await inc.chain;
    await (await inc.writer).finish();
    this.incoming = undefined;
    const loaded = await this.storage.loadSnapshot();
    return loaded.state ?? new Uint8Array(0);
  }

  clearLostEntries(): void {
    void removeIfExists(this.fs, this.repairPath);
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
      for (const d of [o.dataDir, groupsDir]) {
        if (!(await o.fs.exists(d))) {
          await o.fs.mkdir(d);
          // A new directory's name is durable only once its parent is synced: without
          // this, a power loss could take the whole data directory with it.
          await o.fs.syncDir(dirName(d));
        }
      }
      await o.fs.syncDir(o.dataDir);
    })());
  return {
    async open(groupId, segmentBytes) {
      await ensureDirs();
      const dir = joinPath(groupsDir, String(groupId));
      const { storage, report } = await GroupStorage.open({
        fs: o.fs,
        dir,
        core: o.core,
        pool: o.pool,
        options: segmentBytes !== undefined && segmentBytes > 0 ? { ...o.storage, segmentBytes } : o.storage,
        schedule: o.schedule,
      });
      if (report.possibleLoss !== null) {
        o.log.warn(
          { group: groupId, damage: report.possibleLoss },
          'storage found damage: this group waits for repair',
        );
      }
      const store = new SegmentGroupStore(storage, o.fs, `${dir}.repair`, groupId === METADATA_GROUP);
      const opened = await store.opened(report.possibleLoss?.lastIndexBefore);
      return { store, opened };
    },
    async remove(groupId) {
      const dir = joinPath(groupsDir, String(groupId));
      await removeTree(o.fs, dir);
      await removeIfExists(o.fs, `${dir}.repair`);
      await o.fs.syncDir(groupsDir);
    },
    async list() {
      await ensureDirs();
      return (await o.fs.list(groupsDir)).filter((n) => /^\d+$/.test(n)).map(Number);
    },
  };
}
