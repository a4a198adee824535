// Linearizable reads on real `cairn serve` processes under leader changes (issue 13): every
// linearizable read observes every append acknowledged before the read began. A node may
// answer one only after a quorum confirmed that it still leads (ReadIndex, thesis §6.4) and
// after applying through the read index.
//
// The stale leader that either shortcut would betray is made with SIGSTOP: the leader stops,
// the other two elect a new one, which acknowledges appends; linearizable reads are sent to
// the stopped node (the kernel queues them) and it is woken with SIGCONT. It then reads the
// queued requests and its peers' frames in one pass of its event loop, and its partition
// learns its new role only at the end of that turn, so the reads pass the "am I the leader"
// check of a node that was replaced. Then, by which socket is read first:
//   - the request first: its ReadIndex round runs at the old term, fails, and the read is
//     refused (NOT_LEADER) — answering without the round would return the old state;
//   - the new leader's frames first: Raft is already a follower and forwards the ReadIndex
//     to the new leader, whose index holds appends the woken node has not applied yet —
//     answering before applying through it would return the old state.
// Both orders occur. In the runs seen, the read queued while the node was stopped met the
// second in nearly every round; reads sent just after it woke often came after its turn and
// were refused as a follower's (NOT_LEADER), which proves nothing either way. The wait for
// applying shows nowhere else: a leader has applied every append it acknowledged, and a new
// leader had persisted every entry it was elected with, so it applies them in the turn they
// commit, before any read of its term is confirmed.
import { create } from '@bufbuild/protobuf';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CairnClient, CairnClientError } from '../../client/src/index.js';
import { ReadRequestSchema, StreamService } from '../../proto/gen/cairn/v1/cairn_pb.js';
import { callUnary } from '../src/api/grpc-service.js';
import { CairnError } from '../src/errors.js';
import { eventually, ProcessCluster, sleep } from './support/procs.js';
import { Producer } from './support/workload.js';

const STREAM = 'lin';
const PARTITION = 0;
/** NodeStatus's role of a leader. */
const LEADER = 4;
/** Refusals a linearizable read may meet during a leader change; the reader tries again. */
const RETRIED = ['NOT_LEADER', 'UNAVAILABLE', 'TIMEOUT'];
/** Appends the new leader acknowledges while the old one is stopped. */
const APPENDS_WHILE_STOPPED = 10;

const dec = new TextDecoder();

/** An acknowledged append. */
interface Acked {
  offset: number;
  value: string;
}

/**
 * The appends acknowledged so far. Offsets are ordered, so a read that observes the last one
 * (its offset below the high watermark, its value at its offset) observes all the earlier ones.
 */
class Acknowledged {
  last: Acked | undefined;
  count = 0;

  /** Appends the next record of `p` and notes it once acknowledged. */
  async append(p: Producer): Promise<void> {
    const offset = await p.next();
    this.count++;
    const value = `${p.tag}-${p.sent - 1}`;
    if (this.last === undefined || offset > this.last.offset) this.last = { offset, value };
  }
}

/**
 * What a linearizable read gave: a refusal (retried by the caller), or an answer with its
 * high watermark and, for a read of records at the awaited offset, the value found there.
 */
type Outcome =
  | { type: 'refused'; code: string; message: string }
  | { type: 'served'; highWatermark: number; valueAt?: string };

/** The outcome of a failed read: a refusal to retry, or (out of range) an answer that missed. */
function failedRead(err: unknown): Outcome {
  if (!(err instanceof CairnError || err instanceof CairnClientError)) throw err;
  // The read asked for an offset already acknowledged: "beyond the end" is a stale answer.
  if (err.code === 'OFFSET_OUT_OF_RANGE')
    return { type: 'served', highWatermark: err.facts.highWatermark ?? -1, valueAt: '(out of range)' };
  if (RETRIED.includes(err.code)) return { type: 'refused', code: err.code, message: err.message };
  throw err;
}

/** Fails unless a served read observed `need`, the last append acknowledged before it began. */
function observes(what: string, need: Acked, got: Outcome): void {
  if (got.type === 'refused') return;
  assert.ok(
    got.highWatermark > need.offset,
    `${what}: high watermark ${got.highWatermark}, but ${need.value} was acknowledged at offset ${need.offset} before the read began`,
  );
  if (got.valueAt !== undefined)
    assert.is(got.valueAt, need.value, `${what}: at offset ${need.offset}, acknowledged ${need.value}`);
}

/** A linearizable read of the record at `need.offset` sent to node `id` only (no redirect). */
async function readFrom(c: ProcessCluster, id: number, need: Acked, timeoutMs = 3000): Promise<Outcome> {
  const req = create(ReadRequestSchema, {
    stream: STREAM,
    partition: PARTITION,
    offset: BigInt(need.offset),
    maxRecords: 1,
    linearizable: true,
    decode: true,
  });
  try {
    const r = await c.call(
      c.api(id),
      (cl, deadline) => callUnary(cl, StreamService, 'read', req, { deadline }),
      timeoutMs,
    );
    const rec = r.records[0];
    const valueAt =
      rec === undefined
        ? '(no record)'
        : Number(rec.offset) !== need.offset
          ? `(offset ${rec.offset})`
          : dec.decode(rec.value ?? new Uint8Array(0));
    return { type: 'served', highWatermark: Number(r.highWatermark), valueAt };
  } catch (err) {
    return failedRead(err);
  }
}

/** The same read through the client, which goes to the leader it has cached and retries. */
async function readThrough(client: CairnClient, need: Acked): Promise<Outcome> {
  try {
    const r = await client.read(STREAM, PARTITION, {
      offset: need.offset,
      maxRecords: 1,
      linearizable: true,
    });
    const rec = r.records[0];
    const valueAt =
      rec === undefined
        ? '(no record)'
        : rec.offset !== need.offset
          ? `(offset ${rec.offset})`
          : dec.decode(rec.value ?? new Uint8Array(0));
    return { type: 'served', highWatermark: r.highWatermark, valueAt };
  } catch (err) {
    return failedRead(err);
  }
}

/** The client's high-watermark call (a linearizable read beyond the end). */
async function offsetsThrough(client: CairnClient): Promise<Outcome> {
  try {
    return { type: 'served', highWatermark: (await client.offsets(STREAM, PARTITION)).highWatermark };
  } catch (err) {
    return failedRead(err);
  }
}

/** The partition's leader among `ids` by their own status (the highest term, if two claim it). */
async function leaderAmong(c: ProcessCluster, ids: number[]): Promise<number> {
  let best: { id: number; term: bigint } | undefined;
  for (const id of ids) {
    const s = await c.nodeStatus(id).catch(() => undefined);
    const g = s?.groups.find((x) => x.stream === STREAM && x.partition === PARTITION && x.role === LEADER);
    if (g !== undefined && (best === undefined || g.term > best.term)) best = { id, term: g.term };
  }
  if (best === undefined) throw new Error(`no leader of ${STREAM}/${PARTITION} among ${ids}`);
  return best.id;
}

const leader = (c: ProcessCluster, ids = c.serving()) =>
  eventually(() => leaderAmong(c, ids), 15_000, `a leader of ${STREAM}/${PARTITION} among ${ids}`);

function newClient(c: ProcessCluster): CairnClient {
  return new CairnClient({
    servers: c.serving().map((id) => c.api(id)),
    requestTimeoutMs: 3000,
    retryTimeoutMs: 10_000,
    retryBackoffMaxMs: 200,
  });
}

/** How the reads sent to a stale leader went; `direct`: sent to it alone (not through the client). */
interface StaleRound {
  old: number;
  outcomes: { what: string; direct: boolean; got: Outcome }[];
}

/**
 * Stops the partition's leader, waits for the others to elect a new one and acknowledge
 * APPENDS_WHILE_STOPPED appends through `p`, sends linearizable reads to the stopped node
 * (directly, and through `client`, whose cached leader it is), wakes it, sends it more
 * direct reads at once, and checks every answer.
 */
async function staleLeaderRound(
  c: ProcessCluster,
  p: Producer,
  acked: Acknowledged,
  client: CairnClient,
): Promise<StaleRound> {
  const old = await leader(c);
  // The client's last linearizable read went to the leader: it has it cached.
  observes('a read before the stop', acked.last!, await readThrough(client, acked.last!));
  const pending: { what: string; direct: boolean; need: Acked; read: Promise<Outcome> }[] = [];
  c.pause(old);
  try {
    await leader(
      c,
      c.serving().filter((id) => id !== old),
    );
    for (let i = 0; i < APPENDS_WHILE_STOPPED; i++) await acked.append(p);
    const need = acked.last!;
    pending.push(
      { what: `a read sent to stopped leader ${old}`, direct: true, need, read: readFrom(c, old, need) },
      {
        what: `a client's read sent to stopped leader ${old}`,
        direct: false,
        need,
        read: readThrough(client, need),
      },
      {
        what: `a client's high watermark asked of stopped leader ${old}`,
        direct: false,
        need,
        read: offsetsThrough(client),
      },
    );
    // Long enough for the requests to be written to the sockets.
    await sleep(100);
  } finally {
    c.resume(old);
  }
  const need = acked.last!;
  for (let i = 0; i < 3; i++)
    pending.push({
      what: `read ${i + 1} sent to leader ${old} as it woke`,
      direct: true,
      need,
      read: readFrom(c, old, need),
    });
  // Every read settles before any is judged (none is left running after a failure).
  const got = await Promise.all(pending.map((r) => r.read));
  const outcomes = pending.map(({ what, direct, need }, k) => {
    observes(what, need, got[k]!);
    return { what, direct, got: got[k]! };
  });
  return { old, outcomes };
}

test('a leader stopped while the others elect a new one and acknowledge appends never answers a linearizable read from its old state when it wakes', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  let client: CairnClient | undefined;
  try {
    await c.startAll();
    await c.createStream(STREAM, 1);
    const acked = new Acknowledged();
    const p = new Producer(c, STREAM, PARTITION, 'w');
    await p.init();
    for (let i = 0; i < 20; i++) await acked.append(p);
    client = newClient(c);
    let answeredByStale = 0;
    for (let round = 0; round < 3; round++) {
      const r = await staleLeaderRound(c, p, acked, client);
      answeredByStale += r.outcomes.filter((o) => o.direct && o.got.type === 'served').length;
      // The woken node soon knows it was replaced.
      await eventually(
        async () => {
          const s = await c.nodeStatus(r.old);
          assert.not.ok(s.groups.some((g) => g.stream === STREAM && g.role === LEADER));
        },
        10_000,
        `node ${r.old} knows it no longer leads`,
      );
    }
    assert.is(acked.count, 20 + 3 * APPENDS_WHILE_STOPPED);
    // The woken node answered a read itself only if the read passed its leader check after
    // it was replaced: the window this test is for. Without one, the test proves less.
    assert.ok(
      answeredByStale > 0,
      'no read was answered by a woken stale leader (all refused): the scenario no longer reaches the window it tests',
    );
  } finally {
    await client?.close();
    await c.stopAll();
  }
});

test('linearizable reads from several clients see every acknowledged append across stops, kills, restarts and leadership transfers', async () => {
  const c = new ProcessCluster([1, 2, 3]);
  const clients: CairnClient[] = [];
  const loops: Promise<unknown>[] = [];
  let stopped = false;
  try {
    await c.startAll();
    await c.createStream(STREAM, 1);
    const acked = new Acknowledged();
    const writers = [new Producer(c, STREAM, PARTITION, 'a'), new Producer(c, STREAM, PARTITION, 'b')];
    // The stale-leader rounds' own appends (a producer is used by one loop at a time).
    const roundWriter = new Producer(c, STREAM, PARTITION, 's');
    for (const w of [...writers, roundWriter]) await w.init();
    await acked.append(writers[0]!);
    for (let i = 0; i < 3; i++) clients.push(newClient(c));
    const served = { direct: 0, read: 0, offsets: 0 };
    const refused = { direct: 0, read: 0, offsets: 0 };
    const count = (kind: keyof typeof served, got: Outcome) => {
      if (got.type === 'served') served[kind]++;
      else refused[kind]++;
    };

    const writing = writers.map(async (w) => {
      while (!stopped) {
        try {
          await acked.append(w);
        } catch (err) {
          // Not acknowledged (its outcome is unknown): nothing to observe.
          if (!(err instanceof CairnError)) throw err;
        }
      }
    });
    // Each reader takes what must be observed just before it calls.
    const reading = [
      (async () => {
        // Straight to each serving node in turn, the just-woken and the just-restarted too.
        for (let k = 0; !stopped; k++) {
          const ids = c.serving();
          const id = ids[k % ids.length]!;
          const need = acked.last!;
          const got = await readFrom(c, id, need);
          observes(`a read sent to node ${id}`, need, got);
          count('direct', got);
          if (got.type === 'refused') await sleep(10);
        }
      })(),
      ...clients.slice(0, 2).map(async (client, k) => {
        while (!stopped) {
          const need = acked.last!;
          const kind = k === 0 ? 'read' : 'offsets';
          const got = kind === 'read' ? await readThrough(client, need) : await offsetsThrough(client);
          observes(`a client's ${kind}`, need, got);
          count(kind, got);
        }
      }),
    ];

    // Two rounds of three leader changes; each step waits for appends to be acknowledged after it.
    const stale = clients[2]!;
    const steps = [
      () => staleLeaderRound(c, roundWriter, acked, stale),
      async () => {
        const killed = await leader(c);
        await c.kill(killed);
        await leader(c);
        const before = acked.count;
        await eventually(() => assert.ok(acked.count >= before + 10), 15_000, 'appends after the kill');
        await c.start(killed);
      },
      async () => {
        const from = await leader(c);
        const to = c.serving().find((id) => id !== from)!;
        await eventually(() => c.transferLeader(STREAM, PARTITION, to), 15_000, `a transfer to ${to}`);
        await eventually(
          async () => assert.is(await leaderAmong(c, c.serving()), to),
          15_000,
          `node ${to} leads`,
        );
        const before = acked.count;
        await eventually(() => assert.ok(acked.count >= before + 10), 15_000, 'appends after the transfer');
      },
    ];
    const faults = (async () => {
      for (let round = 0; round < 2; round++) {
        for (const step of steps) {
          if (stopped) return;
          await step();
        }
      }
    })();

    // The first failure ends every loop; the fault schedule ends them when it is done.
    loops.push(
      faults.finally(() => {
        stopped = true;
      }),
      ...[...writing, ...reading].map((l) =>
        l.catch((err) => {
          stopped = true;
          throw err;
        }),
      ),
    );
    await Promise.all(loops);
    for (const kind of ['direct', 'read', 'offsets'] as const)
      assert.ok(served[kind] >= 10, `${kind} reads served: ${served[kind]} (refused ${refused[kind]})`);
  } finally {
    stopped = true;
    // Loops still running after a failure end at their next call, against live nodes.
    await Promise.allSettled(loops);
    for (const client of clients) await client.close();
    await c.stopAll();
  }
});

test.run();
