import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { silentLogger } from '../src/ops/log.js';
import { encodeFrame, type GroupMessages, type MessageValidator } from '../src/peer/frame.js';
import { GrpcTransport } from '../src/peer/grpc-transport.js';
import { realClock } from '../src/seams/clock.js';
import { seededRandom } from '../src/seams/random.js';
import { rawPeer } from './support/raw-peer.js';

const rawPeerAt = (port: number) => rawPeer(`127.0.0.1:${port}`);

type Ping = { type: 'ping'; n: number; pad?: string };
const isPing: MessageValidator = (m) =>
  typeof m === 'object' && m !== null && (m as Ping).type === 'ping' && Number.isSafeInteger((m as Ping).n)
    ? null
    : 'not a ping';
const limits = { maxPeerFrameBytes: 64 * 1024, maxPeerQueueBytes: 256 * 1024 };

function start(nodeId: number, port = 0, clusterId = 'c') {
  return GrpcTransport.listen<Ping>({
    nodeId,
    clusterId,
    listenAddress: `127.0.0.1:${port}`,
    limits,
    validate: isPing,
    clock: realClock(),
    random: seededRandom(nodeId),
    log: silentLogger(),
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
  });
}

/** Resolves with the next `count` pings delivered to `t`, or rejects after `ms`. */
function receive(t: GrpcTransport<Ping>, count: number, ms = 5000): Promise<[number, Ping[]][]> {
  return new Promise((resolve, reject) => {
    const got: [number, Ping[]][] = [];
    const timer = setTimeout(() => reject(new Error(`received ${got.length} of ${count}`)), ms);
    t.onReceive((from, groups: GroupMessages<Ping>[]) => {
      for (const g of groups) got.push([from, g.messages]);
      if (got.length >= count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

/** Sends until one arrives (the connection comes up asynchronously). */
async function exchange(
  from: GrpcTransport<Ping>,
  fromId: number,
  to: GrpcTransport<Ping>,
  toId: number,
  n: number,
) {
  const got = receive(to, 1);
  const timer = setInterval(() => from.send(toId, [{ group: 1, messages: [{ type: 'ping', n }] }]), 25);
  try {
    const [[who, msgs]] = (await got) as [[number, Ping[]]];
    assert.is(who, fromId);
    assert.is(msgs[0]!.n, n);
  } finally {
    clearInterval(timer);
  }
}

test('two nodes exchange frames both ways over one stream, and reconnect after a restart', async () => {
  const a = await start(1);
  let b = await start(2);
  try {
    a.setPeers(new Map([[2, `127.0.0.1:${b.port}`]]));
    b.setPeers(new Map([[1, `127.0.0.1:${a.port}`]]));
    await exchange(a, 1, b, 2, 1);
    await exchange(b, 2, a, 1, 2); // the listener answers on the dialer's stream
    assert.ok(a.stats().get(2)!.connected);
    const port = b.port;
    await b.close();
    b = await start(2, port);
    b.setPeers(new Map([[1, `127.0.0.1:${a.port}`]]));
    await exchange(a, 1, b, 2, 3);
    await exchange(b, 2, a, 1, 4);
  } finally {
    await a.close();
    await b.close();
  }
});

test('garbage, oversized, mistyped and foreign-cluster frames are disconnected; the node keeps serving', async () => {
  const a = await start(1);
  const b = await start(2);
  try {
    a.setPeers(new Map([[2, `127.0.0.1:${b.port}`]]));
    b.setPeers(new Map([[1, `127.0.0.1:${a.port}`]]));
    await exchange(a, 1, b, 2, 1);

    const garbage = rawPeerAt(b.port);
    garbage.call.write(Buffer.from('this is not msgpack at all \xff\xfe'));
    assert.is(await garbage.closed, 'INVALID_ARGUMENT');
    garbage.client.close();

    const huge = rawPeerAt(b.port);
    huge.call.write(Buffer.alloc(limits.maxPeerFrameBytes + 4096, 7));
    assert.is(await huge.closed, 'RESOURCE_EXHAUSTED');
    huge.client.close();

    const foreign = rawPeerAt(b.port);
    foreign.call.write(Buffer.from(encodeFrame({ kind: 'hello', from: 1, clusterId: 'other', to: 2 })));
    assert.is(await foreign.closed, 'INVALID_ARGUMENT');
    foreign.client.close();

    // A proper handshake, then a frame whose message is not a valid message.
    const liar = rawPeerAt(b.port);
    liar.call.write(Buffer.from(encodeFrame({ kind: 'hello', from: 1, clusterId: 'c', to: 2 })));
    const packr = new Packr({ useRecords: false });
    liar.call.write(packr.pack([1, 1, 1, 'c', [[0, [{ type: 'ping', n: 'NaN' }]]]]));
    assert.ok(['ABORTED', 'CANCELLED', 'end'].includes(await liar.closed));
    liar.client.close();
    assert.ok(b.stats().get(1)!.badFrames >= 1);

    // Node 1's own connection was replaced by the liar and then dropped; it reconnects.
    await exchange(a, 1, b, 2, 5);
    await exchange(b, 2, a, 1, 6);
  } finally {
    await a.close();
    await b.close();
  }
});

test('frames for an unreachable peer stay within the queue bound, oldest dropped first', async () => {
  const a = await start(1);
  try {
    a.setPeers(new Map([[2, '127.0.0.1:1']])); // nothing listens on port 1
    const payload = { type: 'ping' as const, n: 0, pad: 'x'.repeat(10_000) };
    for (let i = 0; i < 100; i++) a.send(2, [{ group: 1, messages: [payload] }]);
    const s = a.stats().get(2)!;
    assert.ok(s.queueBytes <= limits.maxPeerQueueBytes, `queue ${s.queueBytes}`);
    assert.ok(s.framesDropped >= 70, `dropped ${s.framesDropped}`);
    // A frame over the frame limit is never queued.
    a.send(2, [{ group: 1, messages: [{ ...payload, pad: 'y'.repeat(limits.maxPeerFrameBytes) }] }]);
    assert.ok(a.stats().get(2)!.queueBytes <= limits.maxPeerQueueBytes);
  } finally {
    await a.close();
  }
});

test.run();
