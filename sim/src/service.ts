// Testing a service built on Cairn: the user gives a state machine over the records of a
// stream (apply, snapshot, restore), the commands its instances propose, and an
// invariant. The simulator runs a few instances of it against the cluster, under the
// run's faults: each instance follows the stream from any replica, applies records in
// offset order, checks the invariant after each, snapshots now and then, crashes now and
// then (restarting from its last snapshot and replaying), and proposes commands with a
// conditional append at the offset it has read up to (optimistic concurrency: a command
// lands only right after the state it was decided on).
//
// On top of the invariant, instances must agree: two instances that applied the log up
// to the same offset hold the same state (compared by snapshot bytes), and at the end all
// of them, caught up, hold the same state.
import type { ReadResult } from '../../node/src/node-api.js';
import { OPERATOR } from './nemesis.js';
import { hintedNode } from './workload.js';
import type { ServiceStats, World } from './world.js';

export interface ServiceRecord {
  offset: number;
  key: string | null;
  value: string;
}

export interface ServiceModel<S> {
  /** Names the stream the service lives on (created with one partition). */
  name: string;
  /** Instances of the service (default 2). */
  instances?: number;
  initial(): S;
  /** Applies one record; returns the new state (it may mutate and return `state`). */
  apply(state: S, record: ServiceRecord): S;
  snapshot(state: S): Uint8Array;
  restore(bytes: Uint8Array): S;
  /** The command an instance proposes in `state`, or undefined for none. `random` is the run's. */
  command(state: S, random: () => number): { key?: string; value: string } | undefined;
  /** Undefined when `state` is fine, else what is wrong with it. */
  invariant(state: S): string | undefined;
  /** Propose commands with an expected offset (default true); false shows what happens without. */
  conditional?: boolean;
}

interface Instance {
  id: number;
  node: number;
  state: unknown;
  /** Next offset to read. */
  next: number;
  /** The partition's end as of the last read, when this instance had read everything. */
  caughtUpAt: number;
  snap: { bytes: Uint8Array; next: number };
  applied: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Records between an instance's snapshots. */
const SNAPSHOT_EVERY_RECORDS = 20;
/** Chance that an instance crashes at one of its steps. */
const CRASH_CHANCE = 0.01;

export class ServiceRun {
  private readonly instances: Instance[] = [];
  /** Offset → digest of the state right after applying the record there. */
  private readonly digests = new Map<number, number>();
  private readonly stream: string;
  commands = 0;
  accepted = 0;
  crashes = 0;
  private created = false;

  constructor(
    private readonly w: World,
    private readonly model: ServiceModel<unknown>,
  ) {
    this.stream = `svc-${model.name}`;
    const n = model.instances ?? 2;
    for (let id = 1; id <= n; id++) {
      const state = model.initial();
      this.instances.push({
        id,
        node: 0,
        state,
        next: 0,
        caughtUpAt: -1,
        snap: { bytes: model.snapshot(state), next: 0 },
        applied: 0,
      });
    }
  }

  private get rf(): number {
    return Math.min(3, this.w.options.nodes);
  }

  async run(): Promise<void> {
    await this.create();
    await Promise.all(this.instances.map((i) => this.runInstance(i)));
  }

  private async create(): Promise<void> {
    let node = 0;
    while (!this.created && this.w.phase === 'faults') {
      node ||= this.w.randomMember();
      const r = await this.w.rpc.call(
        OPERATOR,
        node,
        (n) => n.createStream(this.stream, { partitions: 1, replicationFactor: this.rf }),
        this.w.options.workload.clientTimeoutMs,
      );
      if (r.kind === 'ok' || (r.kind === 'error' && r.error.code === 'STREAM_EXISTS')) this.created = true;
      else {
        node = r.kind === 'error' ? hintedNode(r.error) : 0;
        await this.w.sleep(this.w.options.tickMs * 5);
      }
    }
  }

  private async runInstance(inst: Instance): Promise<void> {
    const w = this.w;
    while (w.phase === 'faults') {
      await w.sleep(w.rng.exponential(w.options.workload.thinkMs * 2));
      if (w.phase !== 'faults') break;
      if (w.rng.chance(CRASH_CHANCE)) {
        // The instance dies and comes back from its last snapshot.
        this.crashes++;
        inst.state = this.model.restore(inst.snap.bytes);
        inst.next = inst.snap.next;
        inst.caughtUpAt = -1;
        continue;
      }
      await this.poll(inst);
      if (w.sched.stop !== null) return;
      if (inst.caughtUpAt >= 0 && w.rng.chance(0.5)) await this.propose(inst);
    }
  }

  private async poll(inst: Instance): Promise<boolean> {
    const w = this.w;
    inst.node ||= w.randomMember();
    const r = await w.rpc.call(
      OPERATOR,
      inst.node,
      (n) =>
        n.read({
          stream: this.stream,
          partition: 0,
          offset: inst.next,
          maxBytes: 0,
          maxRecords: 0,
          maxWaitMs: 0,
          linearizable: false,
          decode: true,
        }),
      w.options.workload.clientTimeoutMs,
    );
    if (r.kind !== 'ok') {
      inst.node = r.kind === 'error' ? hintedNode(r.error) : 0;
      return false;
    }
    this.applyAll(inst, r.value);
    return true;
  }

  private applyAll(inst: Instance, r: ReadResult): void {
    const m = this.model;
    for (const rec of r.records) {
      if (rec.offset < inst.next) continue;
      const record: ServiceRecord = {
        offset: rec.offset,
        key: rec.key === null ? null : dec.decode(rec.key),
        value: rec.value === null ? '' : dec.decode(rec.value),
      };
      inst.state = m.apply(inst.state, record);
      inst.next = rec.offset + 1;
      inst.applied++;
      const bad = m.invariant(inst.state);
      if (bad !== undefined) {
        this.w.sched.fail(
          'service-invariant',
          `${m.name}: instance ${inst.id} after offset ${rec.offset}: ${bad}`,
        );
        return;
      }
      const bytes = m.snapshot(inst.state);
      const digest = this.w.core.xxhash32(bytes, 0);
      const seen = this.digests.get(rec.offset);
      if (seen === undefined) this.digests.set(rec.offset, digest);
      else if (seen !== digest) {
        this.w.sched.fail(
          'service-divergence',
          `${m.name}: instances hold different states after offset ${rec.offset}`,
        );
        return;
      }
      if (inst.applied % SNAPSHOT_EVERY_RECORDS === 0) inst.snap = { bytes, next: inst.next };
    }
    inst.next = Math.max(inst.next, r.nextOffset);
    inst.caughtUpAt = inst.next >= r.highWatermark ? r.highWatermark : -1;
  }

  private async propose(inst: Instance): Promise<void> {
    const w = this.w;
    const cmd = this.model.command(inst.state, () => w.rng.next());
    if (cmd === undefined) return;
    this.commands++;
    const conditional = this.model.conditional ?? true;
    const r = await w.rpc.call(
      OPERATOR,
      inst.node || w.randomMember(),
      (n) =>
        n.append({
          stream: this.stream,
          partition: 0,
          records: [
            { key: cmd.key === undefined ? null : enc.encode(cmd.key), value: enc.encode(cmd.value) },
          ],
          ...(conditional ? { expectedOffset: inst.caughtUpAt } : {}),
        }),
      w.options.workload.clientTimeoutMs,
    );
    if (r.kind === 'ok') this.accepted++;
    else if (r.kind === 'error') inst.node = hintedNode(r.error) || inst.node;
  }

  stats(): ServiceStats {
    return {
      commands: this.commands,
      accepted: this.accepted,
      applied: this.instances.reduce((n, i) => n + i.applied, 0),
      crashes: this.crashes,
    };
  }

  /** Liveness phase: every instance catches up with the end of the stream. */
  async finish(deadlineUs: number): Promise<void> {
    const w = this.w;
    for (const inst of this.instances) {
      while (w.sched.nowUs < deadlineUs && w.sched.stop === null) {
        if (this.created && (await this.poll(inst)) && inst.caughtUpAt >= 0) break;
        inst.node = 0;
        await w.sleep(w.options.tickMs * 5);
      }
    }
  }

  /** End of the run: the instances, caught up, hold the same state, and it is valid. */
  check(): void {
    const m = this.model;
    const first = this.instances[0];
    if (first === undefined) return;
    const digest = (s: unknown) => this.w.core.xxhash32(m.snapshot(s), 0);
    for (const inst of this.instances) {
      const bad = m.invariant(inst.state);
      if (bad !== undefined) {
        this.w.sched.fail('service-invariant', `${m.name}: instance ${inst.id} at the end: ${bad}`);
        return;
      }
      if (inst.next !== first.next || digest(inst.state) !== digest(first.state)) {
        this.w.sched.fail(
          'service-divergence',
          `${m.name}: instances ${first.id} and ${inst.id} differ at the end (read up to ${first.next} and ${inst.next})`,
        );
        return;
      }
    }
  }
}
