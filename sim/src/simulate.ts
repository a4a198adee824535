// One simulation run, in four phases:
//
//   setup    start the initial nodes, create the streams
//   faults   clients run their workload while the nemesis strikes (options.timeMs)
//   heal     every fault ends; within options.quietMs every client operation must finish,
//            every idempotent batch must be settled, every partition must accept an
//            append, and every replica must catch up with its leader (liveness)
//   check    the final logs are read from every replica and the commit-log checks run
//
// Raft safety is checked after every event throughout. The first violation stops the run.
import { createCore } from '../../core-wasm/src/index.js';
import type { CairnNode } from '../../node/src/cairn-node.js';
import type { ReadResult } from '../../node/src/node-api.js';
import { type Anomaly, checkCommitLog, type FinalPartition, type ReplicaLog } from './checkers/commit-log.js';
import type { NodeEvent } from './cluster.js';
import type { SimEvent } from './event-queue.js';
import type { History } from './history.js';
import { Nemesis, OPERATOR, strikeFirstStart } from './nemesis.js';
import type { NetworkStats } from './network.js';
import { describeOptions, resolveOptions, type SimOptions, type SimOptionsInput } from './options.js';
import { realNow, Sandbox } from './sandbox.js';
import { type ServiceModel, ServiceRun } from './service.js';
import type { Timeline } from './timeline.js';
import { EventKind } from './trace.js';
import { Client, hintedNode, outcomeUnknown } from './workload.js';
import { World } from './world.js';

export interface SimulateInput extends SimOptionsInput {
  /** A state machine of the user's, fed from a stream, with its invariant (service.ts). */
  service?: ServiceModel<unknown>;
  /** Progress lines (the options at the start, the phases); default: none. */
  onLine?: (line: string) => void;
  /** Keep the history and timeline in the result (for a report); default false. */
  keepDetails?: boolean;
}

export interface Violation {
  property: string;
  message: string;
  /** Virtual time it was found, µs. */
  atUs: number;
  /** The events before it, oldest first. */
  lastEvents: string[];
}

export interface SimStats {
  simulatedMs: number;
  wallMs: number;
  events: number;
  eventsPerWallSecond: number;
  simulatedSecondsPerWallSecond: number;
  operations: Record<string, number>;
  network: NetworkStats;
  leadersSeen: number;
  entriesApplied: number;
  faultsStruck: number;
  processStarts: number;
  fatals: number;
  startFailures: number;
  diskSyncs: number;
  /** The user's service, when one ran: commands proposed and accepted, records applied, instance crashes. */
  service?: { commands: number; accepted: number; applied: number; crashes: number };
}

export interface SimResult {
  seed: number;
  options: SimOptions;
  passed: boolean;
  violation: Violation | undefined;
  /** Every commit-log anomaly found (the first is the violation). */
  anomalies: Anomaly[];
  traceHash: string;
  stats: SimStats;
  /** Things short of a violation worth a look (INTERNAL errors clients saw, fatal storage errors). */
  warnings: string[];
  details?: { history: History; timeline: Timeline; nodeEvents: NodeEvent[]; nodes: number[] };
}

/** Runs one simulation. Deterministic: the same input gives the same result and trace hash. */
export async function simulate(input: SimulateInput): Promise<SimResult> {
  const options = resolveOptions(input);
  for (const line of describeOptions(options)) input.onLine?.(line);
  // Built before the guard goes up: loading the wasm reads a file.
  const core = createCore();
  const w = new World(options, core);
  const sandbox = new Sandbox();
  const onRejection = (reason: unknown) =>
    w.sched.fail(
      'unhandled-rejection',
      `a promise rejection nobody handled: ${(reason as Error)?.stack ?? String(reason)}`,
    );
  const anomalies: Anomaly[] = [];
  const wallStart = realNow();
  process.on('unhandledRejection', onRejection);
  sandbox.enter();
  try {
    await run(w, sandbox, input, anomalies);
  } finally {
    sandbox.exit();
    process.off('unhandledRejection', onRejection);
  }
  const wallMs = realNow() - wallStart;
  const s = w.sched;
  const stop = s.stop;
  const violation: Violation | undefined =
    stop === null ? undefined : { ...stop, atUs: s.nowUs, lastEvents: s.trace.last(40) };
  const warnings = [
    ...w.internalErrors.slice(0, 10).map((e) => `INTERNAL error: ${e}`),
    ...w.readFailures.slice(0, 5),
  ];
  for (const l of w.logs.lines)
    if (l.level !== 'warn')
      warnings.push(
        `node ${l.node} ${l.level} at ${(l.atUs / 1e6).toFixed(3)}s: ${l.msg}${l.err ? `: ${l.err}` : ''}`,
      );
  for (const e of w.cluster.events)
    if (e.what === 'fatal' || e.what === 'start-failed')
      warnings.push(`node ${e.node} ${e.what} at ${(e.atUs / 1e6).toFixed(3)}s: ${e.detail}`);
  const simulatedMs = s.nowUs / 1000;
  const result: SimResult = {
    seed: options.seed,
    options,
    passed: violation === undefined,
    violation,
    anomalies,
    traceHash: s.trace.hash(),
    stats: {
      simulatedMs,
      wallMs,
      events: s.eventsRun,
      eventsPerWallSecond: s.eventsRun / Math.max(wallMs / 1000, 1e-9),
      simulatedSecondsPerWallSecond: simulatedMs / Math.max(wallMs, 1e-9),
      operations: w.history.counts(),
      network: { ...w.net.stats },
      leadersSeen: w.checker.leadersSeen,
      entriesApplied: w.checker.entriesApplied,
      faultsStruck: w.nemesisStrikes,
      processStarts: [...w.cluster.nodes.values()].reduce((n, x) => n + x.generation, 0),
      fatals: w.cluster.fatals,
      startFailures: w.cluster.startFailures,
      diskSyncs: [...w.cluster.nodes.values()].reduce((n, x) => n + x.disk.syncs, 0),
      ...(w.service === undefined ? {} : { service: w.service.stats() }),
    },
    warnings: warnings.slice(0, 20),
  };
  if (input.keepDetails)
    result.details = {
      history: w.history,
      timeline: w.timeline,
      nodeEvents: w.cluster.events,
      nodes: [...w.cluster.nodes.keys()],
    };
  return result;
}

async function run(w: World, sandbox: Sandbox, input: SimulateInput, anomalies: Anomaly[]): Promise<void> {
  const s = w.sched;
  const o = w.options;
  let nodeEventsSeen = 0;
  const afterEvent = (ev: SimEvent) => {
    w.cluster.sample(ev.owner === null ? 0 : ev.owner.nodeId);
    w.cluster.checkElectability();
    // A process that stops itself (storage failed) or cannot start, with no corruption
    // injected into its disk, is a bug: nothing in a run fails an I/O operation otherwise.
    const events = w.cluster.events;
    for (; nodeEventsSeen < events.length; nodeEventsSeen++) {
      const e = events[nodeEventsSeen]!;
      if ((e.what === 'fatal' || e.what === 'start-failed') && !w.corrupted.has(e.node))
        s.fail(
          'node-fatal',
          `node ${e.node} ${e.what === 'fatal' ? 'stopped itself' : 'could not start'}: ${e.detail}`,
        );
    }
    if (sandbox.offences.length > 0) s.fail('determinism', sandbox.offences[0]!);
  };
  /** Runs `fn` as the world's task and the simulation until it finishes or `deadlineUs`. */
  const task = async <T>(fn: () => Promise<T>, deadlineUs: number): Promise<{ done: boolean; value?: T }> => {
    let done = false;
    let value: T | undefined;
    s.after(
      0,
      () => {
        fn().then(
          (v) => {
            value = v;
            done = true;
          },
          (err: unknown) => {
            done = true;
            s.fail('simulator', `the simulator's own task failed: ${(err as Error)?.stack ?? err}`);
          },
        );
      },
      null,
      EventKind.phase,
    );
    await s.run(deadlineUs, afterEvent, () => done);
    return { done, value };
  };

  // --- setup ----------------------------------------------------------------------------
  s.phase('setup');
  input.onLine?.('phase: setup');
  for (const id of w.cluster.initial) w.cluster.start(id);
  if (o.faults.includes('power-loss-fresh') && w.rng.chance(0.5)) strikeFirstStart(w);
  const setupMs = Math.max(o.quietMs, 30_000);
  const setup = await task(() => createStreams(w), s.nowUs + setupMs * 1000);
  if (s.stop !== null) return;
  if (!setup.done) {
    s.fail('liveness', `the streams could not be created within ${setupMs} ms of starting the cluster`);
    return;
  }
  const service = input.service === undefined ? undefined : new ServiceRun(w, input.service);
  w.service = service;

  // --- faults ---------------------------------------------------------------------------
  w.phase = 'faults';
  s.phase('faults');
  input.onLine?.('phase: faults');
  const nemesis = new Nemesis(w);
  w.nemesis = nemesis;
  const clients = Array.from({ length: o.workload.clients }, (_, i) => new Client(i + 1, w));
  const runs: Promise<void>[] = [];
  s.after(
    0,
    () => {
      for (const c of clients) runs.push(c.run());
      if (service !== undefined) runs.push(service.run());
      void nemesis.run();
    },
    null,
    EventKind.phase,
  );
  await s.run(s.nowUs + o.timeMs * 1000, afterEvent);
  if (s.stop !== null) return;

  // --- heal: liveness ---------------------------------------------------------------------
  w.phase = 'heal';
  s.phase('heal');
  input.onLine?.('phase: heal');
  const deadline = s.nowUs + o.quietMs * 1000;
  let stage = 'waiting for the clients\u2019 last operations';
  s.after(0, () => nemesis.healAll(), null, EventKind.fault);
  const healed = await task(async () => {
    await Promise.all(runs);
    stage = 'settling idempotent batches of unknown outcome';
    await Promise.all(clients.map((c) => c.settle(deadline)));
    stage = 'appending a probe to every partition';
    await probe(w, deadline);
    if (service !== undefined) {
      stage = 'the service catching up';
      await service.finish(deadline);
    }
    stage = 'every replica catching up with its leader';
    await converge(w);
  }, deadline);
  if (s.stop !== null) return;
  if (!healed.done) {
    const lags = lagging(w);
    const why = [
      ...clients.flatMap((c) => c.unsettledProducers()),
      ...w.history.pending().map((op) => `${op.kind} op ${op.id} of client ${op.client} on node ${op.node}`),
      ...lags.map((l) => l.text),
    ];
    // Only nodes whose disks were corrupted lag behind: they did not recover from it
    // (DESIGN §6 wants them repaired from the leader). A finding of its own kind.
    const onlyCorrupted =
      why.length === lags.length &&
      lags.length > 0 &&
      lags.every((l) => l.node !== 0 && w.corrupted.has(l.node));
    s.fail(
      onlyCorrupted ? 'corruption-recovery' : 'liveness',
      `${o.quietMs} ms after healing, still ${stage}: ${why.slice(0, 6).join('; ') || 'no progress'}`,
    );
    return;
  }

  // --- check ------------------------------------------------------------------------------
  w.phase = 'check';
  s.phase('check');
  input.onLine?.('phase: check');
  const finals = await task(() => readFinalLogs(w), s.nowUs + o.quietMs * 1000);
  if (s.stop !== null) return;
  if (!finals.done) {
    s.fail('liveness', 'the final logs could not be read');
    return;
  }
  anomalies.push(...checkCommitLog(w.history.ops, finals.value!, o.streams));
  if (anomalies.length > 0) {
    s.fail(anomalies[0]!.property, anomalies[0]!.message);
    return;
  }
  if (service !== undefined) service.check();
  w.phase = 'done';
}

/** Creates every stream through the metadata leader, retrying until each exists. */
async function createStreams(w: World): Promise<void> {
  for (const spec of w.options.streams) {
    let node = 0;
    for (;;) {
      node ||= w.randomMember();
      const r = await w.rpc.call(
        OPERATOR,
        node,
        (n) =>
          n.createStream(spec.name, {
            partitions: spec.partitions,
            replicationFactor: spec.replicationFactor,
            compacted: spec.compacted,
            retentionBytes: spec.retentionBytes,
            segmentBytes: spec.segmentBytes,
          }),
        w.options.workload.clientTimeoutMs,
      );
      if (r.kind === 'ok' || (r.kind === 'error' && r.error.code === 'STREAM_EXISTS')) break;
      node = r.kind === 'error' ? hintedNode(r.error) : 0;
      await w.sleep(w.options.tickMs * 5);
    }
  }
}

/**
 * Appends each partition must take (and commands group 0 must take) after healing. More
 * than one: the traffic of a live cluster is what makes a leader notice a follower that
 * lost its log while the leader thought it up to date (see the report).
 */
const PROBES = 3;

/** Liveness: each partition takes appends, and group 0 commands, before the deadline. */
async function probe(w: World, deadlineUs: number): Promise<void> {
  const tasks: Promise<void>[] = [];
  for (const spec of w.options.streams) {
    for (let p = 0; p < spec.partitions; p++) {
      tasks.push(
        (async () => {
          let node = 0;
          let done = 0;
          for (let attempt = 0; done < PROBES && w.sched.nowUs < deadlineUs; attempt++) {
            node ||= w.randomMember();
            const value = `probe.${spec.name}.${p}.${attempt}`;
            const op = w.history.invoke({
              client: OPERATOR,
              kind: 'probe',
              stream: spec.name,
              partition: p,
              invokeUs: w.sched.nowUs,
              values: [value],
              keys: [spec.compacted ? 'probe' : null],
              node,
            });
            const enc = new TextEncoder();
            const r = await w.rpc.call(
              OPERATOR,
              node,
              (n) =>
                n.append({
                  stream: spec.name,
                  partition: p,
                  records: [{ key: spec.compacted ? enc.encode('probe') : null, value: enc.encode(value) }],
                }),
              w.options.workload.clientTimeoutMs,
            );
            op.completeUs = w.sched.nowUs;
            if (r.kind === 'ok') {
              op.outcome = 'ok';
              op.offset = r.value.baseOffset;
              w.timeline.op(op);
              done++;
              continue;
            }
            op.outcome = outcomeUnknown(r) ? 'unknown' : 'fail';
            op.error = r.kind === 'timeout' ? 'client timeout' : `${r.error.code}: ${r.error.message}`;
            w.timeline.op(op);
            node = r.kind === 'error' ? hintedNode(r.error) : 0;
            await w.sleep(w.options.tickMs * 5);
          }
        })(),
      );
    }
  }
  tasks.push(
    (async () => {
      let node = 0;
      let done = 0;
      while (done < PROBES && w.sched.nowUs < deadlineUs) {
        node ||= w.randomMember();
        const r = await w.rpc.call(
          OPERATOR,
          node,
          (n) => n.initProducer(),
          w.options.workload.clientTimeoutMs,
        );
        if (r.kind === 'ok') {
          done++;
          continue;
        }
        node = r.kind === 'error' ? hintedNode(r.error) : 0;
        await w.sleep(w.options.tickMs * 5);
      }
    })(),
  );
  await Promise.all(tasks);
}

interface GroupView {
  group: number;
  leader: { node: CairnNode; id: number } | undefined;
}

/** Each group's current leader among the up nodes (highest term). */
function leaders(w: World): GroupView[] {
  const groups = new Map<number, GroupView & { term: number }>();
  for (const n of w.cluster.upNodes()) {
    for (const g of n.stores.keys()) {
      const rg = n.node!.groupForTest(g);
      if (rg === undefined || rg.isStopped) continue;
      let v = groups.get(g);
      if (v === undefined) groups.set(g, (v = { group: g, leader: undefined, term: -1 }));
      if (rg.isLeader && rg.core.currentTerm > v.term) {
        v.leader = { node: n.node!, id: n.id };
        v.term = rg.core.currentTerm;
      }
    }
  }
  return [...groups.values()].sort((a, b) => a.group - b.group);
}

/** What keeps the cluster from having converged ([] when it has). */
interface Lag {
  /** The node that lags, or 0 when the whole group is stuck (no leader). */
  node: number;
  text: string;
}

function lagging(w: World): Lag[] {
  const out: Lag[] = [];
  const views = leaders(w);
  for (const v of views) {
    if (v.leader === undefined) {
      const who: string[] = [];
      for (const n of w.cluster.upNodes()) {
        const rg = n.node!.groupForTest(v.group);
        if (rg === undefined) continue;
        const st = rg.core.status();
        who.push(
          `node ${n.id} ${st.role} term ${st.term} vote ${st.vote} log ${st.lastIndex}@${rg.store.term(st.lastIndex)} commit ${st.commit} voters [${st.conf.voters}]${st.conf.learners.length ? ` learners [${st.conf.learners}]` : ''}${st.recoveringUntil ? ` repairing until ${st.recoveringUntil}` : ''}`,
        );
      }
      out.push({ node: 0, text: `group ${v.group} has no leader (${who.join(', ')})` });
      continue;
    }
    const lg = v.leader.node.groupForTest(v.group)!;
    const commit = lg.core.commitIndex;
    const conf = lg.conf();
    for (const id of [...conf.voters, ...conf.learners]) {
      const n = w.cluster.nodes.get(id);
      const rg = n?.node?.groupForTest(v.group);
      if (rg === undefined) {
        const n = w.cluster.nodes.get(id);
        out.push({
          node: id,
          text: `node ${id} does not run group ${v.group} (node ${n?.state ?? 'unknown'})`,
        });
      } else if (rg.applied >= commit) {
        // Liveness: a voter that has caught up must count in elections again (DESIGN §6):
        // it knows itself as a voter and has finished any repair of lost entries.
        if (!conf.voters.includes(id)) continue;
        const st = rg.core.status();
        if (st.conf.voters.includes(id) && st.recoveringUntil === 0) continue;
        out.push({
          node: id,
          text: `node ${id} caught up group ${v.group} but does not vote in it (its voters [${st.conf.voters}]${st.recoveringUntil ? `, repairing until ${st.recoveringUntil}` : ''}, log ${st.firstIndex}..${st.lastIndex} commit ${st.commit}; leader ${v.leader.id} log ..${lg.core.lastIndex} commit ${commit})`,
        });
      } else {
        const st = rg.core.status();
        const pr = lg.core.status().progress.find((x) => x.id === id);
        out.push({
          node: id,
          text: `node ${id} applied group ${v.group} to ${rg.applied} of ${commit} (${(rg as unknown as { blocked: boolean }).blocked ? 'installing a snapshot, ' : ''}${st.role} term ${st.term} commit ${st.commit} log ${st.firstIndex}..${st.lastIndex}${st.recoveringUntil ? ` repairing until ${st.recoveringUntil}` : ''}; leader ${v.leader.id} term ${lg.core.currentTerm} log ${lg.core.status().firstIndex}..${lg.core.lastIndex} sees match ${pr?.match} next ${pr?.next} ${pr?.state})`,
        });
      }
    }
  }
  out.push(...misplaced(views));
  return out;
}

/**
 * Placement has converged: every replica the catalog lists for a group is a voter of it
 * (and so, by the checks above, runs it, caught up), no other node votes in it, and every
 * member the catalog keeps votes in group 0 — the metadata leader's catalog against each
 * group leader's configuration. Members on their way out (leaving) are not held either way.
 */
function misplaced(views: GroupView[]): Lag[] {
  const meta = views.find((v) => v.group === 0)?.leader;
  if (meta === undefined) return []; // group 0 without a leader is reported above
  const members = meta.node.catalogMembers();
  const leaving = new Set(members.filter((m) => m.state === 'leaving').map((m) => m.id));
  const wanted = [
    { groupId: 0, replicas: members.filter((m) => !leaving.has(m.id)).map((m) => m.id) },
    ...meta.node.placement(),
  ];
  const out: Lag[] = [];
  for (const { groupId, replicas } of wanted) {
    const leader = views.find((v) => v.group === groupId)?.leader;
    if (leader === undefined) {
      if (!views.some((v) => v.group === groupId))
        out.push({ node: 0, text: `no node runs group ${groupId} (the catalog places it on [${replicas}])` });
      continue;
    }
    const conf = leader.node.groupForTest(groupId)!.conf();
    for (const id of replicas)
      if (!conf.voters.includes(id))
        out.push({
          node: id,
          text: `node ${id} is a replica of group ${groupId} in the catalog but does not vote in it (voters [${conf.voters}]${conf.learners.length ? `, learners [${conf.learners}]` : ''}, leader ${leader.id})`,
        });
    for (const id of conf.voters)
      if (!replicas.includes(id) && !leaving.has(id))
        out.push({
          node: id,
          text: `node ${id} votes in group ${groupId}, which the catalog places on [${replicas}] (leader ${leader.id})`,
        });
  }
  return out;
}

/** Waits until every replica caught up (the run's deadline ends the wait if they never do). */
async function converge(w: World): Promise<void> {
  while (lagging(w).length > 0) await w.sleep(w.options.tickMs);
}

const dec = new TextDecoder();

/** Reads every partition from each of its replicas (their own committed view), and checks the Raft logs. */
async function readFinalLogs(w: World): Promise<FinalPartition[]> {
  const views = leaders(w);
  for (const v of views) {
    const lg = v.leader!.node.groupForTest(v.group)!;
    const conf = lg.conf();
    for (const id of [...conf.voters, ...conf.learners]) {
      const rg = w.cluster.nodes.get(id)?.node?.groupForTest(v.group);
      if (rg !== undefined) w.checker.checkFinal(id, v.group, rg.store, rg.core.commitIndex);
    }
  }
  const out: FinalPartition[] = [];
  for (const spec of w.options.streams) {
    for (let p = 0; p < spec.partitions; p++) {
      const leaderNode = await leaderOfPartition(w, spec.name, p);
      const info = (await leaderNode.describeStream(spec.name)).partitions[p]!;
      const replicas: ReplicaLog[] = [];
      const failures: string[] = [];
      for (const id of info.replicas) {
        const node = w.cluster.nodes.get(id)?.node;
        if (node == null) continue;
        try {
          replicas.push(await readReplica(node, id, spec.name, p));
        } catch (err) {
          // A replica whose disk was corrupted may refuse to serve what it cannot read back.
          failures.push(`node ${id}: ${(err as Error)?.message ?? err}`);
        }
      }
      if (failures.length > 0)
        w.readFailures.push(...failures.map((f) => `final read of ${spec.name}/${p} from ${f}`));
      if (replicas.length === 0) {
        w.sched.fail('unreadable', `no replica of ${spec.name}/${p} could be read: ${failures.join('; ')}`);
        return out;
      }
      out.push({ stream: spec.name, partition: p, replicas });
    }
  }
  return out;
}

async function leaderOfPartition(w: World, stream: string, partition: number): Promise<CairnNode> {
  for (const n of w.cluster.upNodes()) {
    const info = await n.node!.describeStream(stream).catch(() => undefined);
    const leader = info?.partitions[partition]?.leader ?? 0;
    const ln = leader === 0 ? undefined : w.cluster.nodes.get(leader)?.node;
    if (ln != null) return ln;
  }
  throw new Error(`no leader known for ${stream}/${partition}`);
}

async function readReplica(
  node: CairnNode,
  id: number,
  stream: string,
  partition: number,
): Promise<ReplicaLog> {
  const read = (offset: number): Promise<ReadResult> =>
    node.read({
      stream,
      partition,
      offset,
      maxBytes: 0,
      maxRecords: 0,
      maxWaitMs: 0,
      linearizable: false,
      decode: true,
    });
  let first: ReadResult;
  try {
    first = await read(0);
  } catch (err) {
    const start = (err as { facts?: { logStartOffset?: number } }).facts?.logStartOffset;
    if (start === undefined) throw err;
    first = await read(start);
  }
  const log: ReplicaLog = {
    node: id,
    logStartOffset: first.logStartOffset,
    highWatermark: first.highWatermark,
    records: [],
  };
  let r = first;
  for (;;) {
    for (const rec of r.records)
      log.records.push({
        offset: rec.offset,
        value: rec.value === null ? '' : dec.decode(rec.value),
        key: rec.key === null ? null : dec.decode(rec.key),
      });
    if (r.nextOffset >= r.highWatermark) break;
    const at = r.nextOffset;
    r = await read(at);
    if (r.nextOffset <= at)
      throw new Error(`reading ${stream}/${partition} from node ${id} made no progress at ${at}`);
  }
  return log;
}
