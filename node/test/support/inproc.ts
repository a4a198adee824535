// An in-process cluster of CairnNodes over the loopback network and in-memory stores, or
// (`onDisk`) node/storage's segmented log over one MemFileSystem per node, whose bytes
// the tests can damage at rest.
import { type Core, createCore } from '../../../core-wasm/src/index.js';
import { CairnNode, type StoreProvider } from '../../src/cairn-node.js';
import { loadConfig } from '../../src/config.js';
import { MemoryGroupStore } from '../../src/group/memory-store.js';
import type { GroupRestart } from '../../src/group/raft-group.js';
import { segmentStores } from '../../src/group/segment-store.js';
import { silentLogger } from '../../src/ops/log.js';
import { realClock } from '../../src/seams/clock.js';
import { seededRandom } from '../../src/seams/random.js';
import { createPrng, MemFileSystem, type StorageOptions } from '../../src/storage/index.js';
import { LoopbackNetwork } from './loopback.js';

export class InProcessCluster {
  readonly core: Core = createCore();
  readonly net = new LoopbackNetwork(this.core);
  readonly nodes = new Map<number, CairnNode>();
  /** Each node's stores survive its restarts. */
  private readonly disks = new Map<number, Map<number, MemoryGroupStore>>();
  private readonly clock = realClock();
  /** With `onDisk`: each node's file system, kept across its restarts. */
  readonly fss = new Map<number, MemFileSystem>();
  /** Fatal stops, per node. */
  readonly fatals = new Map<number, unknown[]>();
  /** Group restarts (CairnNodeOptions.onGroupRestart), per node. */
  readonly restarts = new Map<number, GroupRestart['cause'][]>();
  /** Wraps node `id`'s stores (a test's faults); none by default. */
  wrapStores: (id: number, stores: StoreProvider) => StoreProvider = (_id, stores) => stores;

  constructor(
    readonly size: number,
    readonly env: Record<string, string> = {},
    readonly onDisk?: { storage?: Partial<StorageOptions> },
  ) {}

  /** Node `id`'s file system (with `onDisk`). */
  fs(id: number): MemFileSystem {
    let fs = this.fss.get(id);
    if (fs === undefined) this.fss.set(id, (fs = new MemFileSystem({ prng: createPrng(id) })));
    return fs;
  }

  members(): string {
    return Array.from(
      { length: this.size },
      (_, i) => `${i + 1}=127.0.0.1:${7000 + i + 1}/127.0.0.1:${7100 + i + 1}`,
    ).join(',');
  }

  private stores(id: number): StoreProvider {
    if (this.onDisk !== undefined) {
      return segmentStores({
        fs: this.fs(id),
        dataDir: '/data',
        core: this.core,
        schedule: (run) => this.clock.defer(run),
        storage: this.onDisk.storage,
        log: silentLogger(),
      });
    }
    let disk = this.disks.get(id);
    if (disk === undefined) this.disks.set(id, (disk = new Map()));
    const d = disk;
    return {
      open: async (g) => {
        let s = d.get(g);
        if (s === undefined) d.set(g, (s = new MemoryGroupStore(this.core, this.clock)));
        return { store: s, opened: s.opened() };
      },
      remove: async (g) => {
        d.delete(g);
      },
      list: async () => [...d.keys()],
    };
  }

  async start(id: number, extra: string[] = []): Promise<CairnNode> {
    const config = loadConfig(
      [
        '--node-id',
        String(id),
        '--api-address',
        `127.0.0.1:${7000 + id}`,
        '--peer-address',
        `127.0.0.1:${7100 + id}`,
        '--members',
        this.members(),
        '--tick-ms',
        '10',
        '--election-ticks',
        '10',
        '--heartbeat-ticks',
        '2',
        ...extra,
      ],
      this.env,
      () => '',
    );
    const node = await CairnNode.start({
      config,
      clock: this.clock,
      random: seededRandom(id * 7919),
      transport: this.net.transport(id),
      core: this.core,
      stores: this.wrapStores(id, this.stores(id)),
      log: silentLogger(),
      onFatal: (err) => this.fatals.set(id, [...(this.fatals.get(id) ?? []), err]),
      onGroupRestart: (cause) => this.restarts.set(id, [...(this.restarts.get(id) ?? []), cause]),
      peerStatus: async (m) => {
        const n = this.nodes.get(m.id);
        if (n === undefined) throw new Error(`node ${m.id} is down`);
        return n.nodeStatus();
      },
    });
    this.nodes.set(id, node);
    return node;
  }

  async startAll(): Promise<void> {
    for (let id = 1; id <= this.size; id++) await this.start(id);
  }

  async stop(id: number): Promise<void> {
    const n = this.nodes.get(id);
    this.nodes.delete(id);
    await n?.stop();
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }

  /** The node leading group `group` (0 = metadata), waiting up to `ms`. */
  async leaderOf(group: number, ms = 5000): Promise<CairnNode> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const n of this.nodes.values()) if (n.groupForTest(group)?.isLeader) return n;
      if (Date.now() > deadline) throw new Error(`no leader for group ${group} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export { eventually } from './wait.js';
